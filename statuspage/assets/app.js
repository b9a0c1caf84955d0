// The status page's script. It reads the page's JSON every few seconds and
// fills the tables; data only ever reaches the page through textContent.
// Every URL is relative to the page, which may sit under any prefix.
"use strict";
(function () {
  const REFRESH_MS = 3000;
  const MAX_BACKOFF_MS = 15000;
  const CHARTS_EVERY = 5; // refreshes; the charts' buckets are a minute wide

  const $ = (id) => document.getElementById(id);
  let readOnly = false;
  let userFilter = "";
  let deadCursors = [""]; // the "after" of each dead-letter page seen, for paging back to the first
  let deadNext = "";
  let deadTotal = 0;
  let updates = 0;
  let failures = 0;
  let timer = 0;
  let pendingConfirm = null;

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function cell(tr, text, field, cls) {
    const td = el("td", text, cls);
    if (field) td.dataset.field = field;
    tr.appendChild(td);
    return td;
  }

  function duration(seconds) {
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 120) return Math.round(seconds) + " s";
    if (seconds < 7200) return Math.round(seconds / 60) + " min";
    if (seconds < 172800) return (seconds / 3600).toFixed(1) + " h";
    return Math.round(seconds / 86400) + " days";
  }

  // clock shows a time of today as a time, an older one with its date.
  function clock(iso) {
    const d = new Date(iso);
    return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
  }

  function when(iso) {
    if (!iso) return "never";
    const d = new Date(iso);
    const age = (Date.now() - d.getTime()) / 1000;
    const text = clock(iso);
    return age >= 1 ? text + " (" + duration(age) + " ago)" : text;
  }

  async function getJSON(path) {
    const r = await fetch(path, { cache: "no-store", credentials: "same-origin" });
    if (!r.ok) {
      const data = await r.json().catch(() => ({}));
      throw new Error(path.split("?")[0] + " answered HTTP " + r.status + (data.error ? ": " + data.error : ""));
    }
    return r.json();
  }

  async function post(path, body) {
    const r = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(data.error || "HTTP " + r.status);
    return data;
  }

  // replaceRows swaps a table's rows and keeps keyboard focus on the
  // control that had it, so that a refresh does not lose a keyboard user's
  // place.
  function replaceRows(tbody, rows) {
    const active = document.activeElement;
    const key = active && tbody.contains(active) ? active.dataset.focusKey : "";
    tbody.replaceChildren(...rows);
    if (key) {
      const again = Array.from(tbody.querySelectorAll("[data-focus-key]")).find((e) => e.dataset.focusKey === key);
      if (again) again.focus();
    }
  }

  // renderNetworks fills the networks' table; while the queue cannot be
  // read (counted false) its counts are shown as unknown, not as zeros.
  function renderNetworks(networks, counted) {
    const count = (v) => (counted ? v : "unknown");
    const rows = networks.map((n) => {
      const tr = el("tr");
      tr.dataset.network = n.name;
      const th = el("th", n.name + (n.configured ? "" : " (not configured)"));
      th.scope = "row";
      tr.appendChild(th);
      cell(tr, count(n.pending), "pending", "num");
      cell(tr, count(n.in_flight), "in_flight", "num");
      cell(tr, count(n.retrying), "retrying", "num");
      cell(tr, count(n.dead), "dead", counted && n.dead > 0 ? "num bad" : "num");
      cell(tr, count(n.awaiting), "awaiting", "num");
      if (n.held) {
        cell(tr, "Held until " + clock(n.held.until) + ": " + n.held.reason, "held", "warn");
      } else {
        cell(tr, "no", "held");
      }
      cell(tr, !counted ? "unknown" : n.oldest_pending_seconds > 0 ? duration(n.oldest_pending_seconds) : "none owed", "oldest_pending", "num");
      cell(tr, when(n.last_success), "last_success");
      if (n.last_error) {
        const e = n.last_error;
        const status = e.status ? "HTTP " + e.status : "no answer";
        cell(tr, status + ", " + when(e.time) + ": " + (e.reason || e.outcome), "last_error", "reason");
      } else {
        cell(tr, "none", "last_error");
      }
      return tr;
    });
    replaceRows($("networks").tBodies[0], rows);
    $("networks-empty").hidden = networks.length > 0;
  }

  function plural(n, one, many) {
    return n === 1 ? "1 " + one : n + " " + many;
  }

  // renderQueue says which queue the table counts and, in fleet mode, what
  // this replica holds of it.
  function renderQueue(q) {
    const backend = $("queue-backend");
    const replica = $("queue-replica");
    replica.className = "";
    backend.className = "";
    backend.dataset.unreachable = String(Boolean(q && q.unreachable));
    if (!q) {
      backend.textContent = "";
      replica.textContent = "";
      return;
    }
    backend.dataset.backend = q.backend;
    if (q.backend !== "postgres") {
      backend.textContent = "Queue: embedded (Badger), this replica's own.";
      replica.textContent = "";
      return;
    }
    let text = "This replica: " + plural(q.replica_in_flight, "ping", "pings") + " in flight, " +
      plural(q.spool_jobs, "ping", "pings") + " in its spool.";
    if (q.unreachable) {
      backend.textContent = "Queue: PostgreSQL, schema " + q.schema + ", shared by the fleet, is not answering this replica: " +
        q.backend_error + ". The counts below are unknown until it answers.";
      backend.className = "bad";
      text += " Updates are kept in its spool and forwarded when PostgreSQL answers.";
    } else {
      backend.textContent = "Queue: PostgreSQL, schema " + q.schema + " (version " + q.schema_version + "), shared by the fleet: the table counts every replica's pings.";
    }
    if (q.degraded && !q.unreachable) text += " PostgreSQL failed its last write: updates go to the spool until it answers again.";
    if (q.error) text += " Not all of it could be read: " + q.error;
    replica.textContent = text;
    replica.dataset.inFlight = String(q.replica_in_flight);
    replica.dataset.spool = String(q.spool_jobs);
    if (q.unreachable || q.degraded || q.spool_jobs > 0 || q.error) replica.className = "warn";
  }

  function renderAttempts(attempts) {
    const rows = attempts.map((a) => {
      const tr = el("tr");
      tr.dataset.kind = a.kind;
      cell(tr, clock(a.time), "time");
      cell(tr, a.kind, "kind");
      cell(tr, a.network, "network");
      cell(tr, a.user_id || "(none)", "user_id");
      cell(tr, a.status ? a.status : "no answer", "status", "num");
      cell(tr, a.outcome, "outcome", a.outcome === "done" || a.outcome === "served" ? "" : "warn");
      cell(tr, a.reason || "", "reason", "reason");
      return tr;
    });
    replaceRows($("attempts").tBodies[0], rows);
    const empty = $("attempts-empty");
    empty.hidden = attempts.length > 0;
    empty.textContent = userFilter ? "No recent pings or pulls for user " + userFilter + "." : "No pings or pulls since Caddy started.";
  }

  function actionButton(label, verb, letter) {
    const b = el("button", label);
    b.type = "button";
    b.dataset.focusKey = verb + " " + letter.network + " " + letter.user_id;
    b.setAttribute("aria-label", label + " the ping of user " + letter.user_id + " on " + letter.network);
    b.addEventListener("click", () => act(verb, { network: letter.network, user_ids: [letter.user_id] }));
    return b;
  }

  function renderDead(page) {
    const rows = page.letters.map((d) => {
      const tr = el("tr");
      tr.dataset.user = d.user_id;
      tr.dataset.network = d.network;
      cell(tr, d.network, "network");
      cell(tr, d.user_id, "user_id");
      cell(tr, d.attempts, "attempts", "num");
      cell(tr, when(d.dead_at), "dead_at");
      cell(tr, d.reason, "reason", "reason");
      const td = cell(tr, null, "actions");
      td.dataset.action = "";
      if (!readOnly) {
        td.appendChild(actionButton("Retry", "retry", d));
        td.appendChild(actionButton("Purge", "purge", d));
      }
      return tr;
    });
    replaceRows($("dead").tBodies[0], rows);
    $("dead-empty").hidden = page.letters.length > 0;
    deadNext = page.next || "";
    $("dead-next").disabled = !deadNext;
    $("dead-first").disabled = deadCursors.length <= 1;
  }

  function setConnection(state, text) {
    const c = $("connection");
    c.dataset.state = state;
    c.textContent = text;
  }

  function reloadCharts() {
    const t = Date.now();
    for (const name of ["pings", "latency", "pulls"]) {
      $("chart-" + name).src = "_lf/chart/" + name + ".svg?t=" + t;
    }
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const q = userFilter ? "?user=" + encodeURIComponent(userFilter) : "";
      const after = deadCursors[deadCursors.length - 1];
      // The dead letters live in the queue; while it cannot be read the
      // rest of the page still shows what this replica knows.
      const [state, dead] = await Promise.all([
        getJSON("_lf/state.json" + q),
        getJSON("_lf/dead.json" + (after ? "?after=" + encodeURIComponent(after) : "")).catch((err) => ({ error: err.message })),
      ]);
      readOnly = state.read_only;
      document.body.dataset.readOnly = String(readOnly);
      renderQueue(state.queue);
      renderNetworks(state.networks, !(state.queue && state.queue.unreachable));
      renderAttempts(state.attempts);
      const deadError = $("dead-error");
      deadError.hidden = !dead.error;
      deadError.textContent = dead.error ? "The dead letters cannot be read now (" + dead.error + "); the list below may be out of date." : "";
      if (!dead.error) {
        if (dead.letters.length === 0 && deadCursors.length > 1) {
          deadCursors = [""]; // the page emptied under us: back to the first
        }
        renderDead(dead);
      }
      deadTotal = state.networks.reduce((sum, n) => sum + n.dead, 0);
      if (failures > 0 || updates % CHARTS_EVERY === 0) reloadCharts();
      failures = 0;
      updates++;
      document.body.dataset.updates = String(updates);
      setConnection("ok", "Updated " + new Date(state.time).toLocaleTimeString());
    } catch (err) {
      failures++;
      setConnection("reconnecting", "Reconnecting… the last update failed (" + err.message + "); trying again");
    }
    // An action's refresh can overlap the timer's: whichever ends last
    // leaves the one timer, so that the loops do not multiply.
    const delay = failures ? Math.min(REFRESH_MS * 2 ** (failures - 1), MAX_BACKOFF_MS) : REFRESH_MS;
    clearTimeout(timer);
    timer = setTimeout(refresh, delay);
  }

  async function act(verb, body) {
    const out = $("action-result");
    try {
      const r = await post("_lf/" + verb, body);
      const what = r.count === 1 ? "1 dead letter" : r.count + " dead letters";
      out.textContent = (verb === "retry" ? "Queued again: " : "Purged: ") + what + ".";
    } catch (err) {
      out.textContent = (verb === "retry" ? "Retry" : "Purge") + " failed: " + err.message;
    }
    refresh();
  }

  function confirmAll(verb, opener) {
    const n = deadTotal;
    pendingConfirm = { verb: verb, opener: opener };
    $("confirm-text").textContent = verb === "retry"
      ? "Retry all " + n + " dead letters of every network? Each is queued again and sent to Livefyre."
      : "Purge all " + n + " dead letters of every network? They are deleted for good.";
    $("confirm-yes").textContent = verb === "retry" ? "Yes, retry all" : "Yes, purge all";
    $("confirm").hidden = false;
    $("confirm-yes").focus();
  }

  function closeConfirm() {
    const p = pendingConfirm;
    pendingConfirm = null;
    $("confirm").hidden = true;
    if (p && p.opener) p.opener.focus();
  }

  async function runDoctor() {
    const button = $("doctor-run");
    const summary = $("doctor-summary");
    button.disabled = true;
    summary.textContent = "Running the checks…";
    try {
      const r = await post("_lf/doctor", {});
      const items = r.checks.map((c) => {
        const li = el("li");
        li.dataset.status = c.status;
        li.appendChild(el("span", c.status, "check-status"));
        li.appendChild(el("strong", (c.network ? c.network + ": " : "") + c.name));
        li.appendChild(document.createTextNode(" — " + c.detail));
        if (c.fix) li.appendChild(el("span", "Fix: " + c.fix, "fix"));
        return li;
      });
      $("doctor-checks").replaceChildren(...items);
      const failed = r.checks.filter((c) => c.status === "fail").length;
      summary.textContent = r.ok ? "All " + r.checks.length + " checks passed or only warn." : failed + " of " + r.checks.length + " checks failed.";
    } catch (err) {
      summary.textContent = "The doctor could not run: " + err.message;
    } finally {
      button.disabled = false;
    }
  }

  function start() {
    $("filter").addEventListener("submit", (ev) => {
      ev.preventDefault();
      userFilter = $("user-filter").value.trim();
      refresh();
    });
    $("retry-all").addEventListener("click", (ev) => confirmAll("retry", ev.currentTarget));
    $("purge-all").addEventListener("click", (ev) => confirmAll("purge", ev.currentTarget));
    $("confirm-yes").addEventListener("click", () => {
      const verb = pendingConfirm && pendingConfirm.verb;
      closeConfirm();
      if (verb) act(verb, { all: true });
    });
    $("confirm-no").addEventListener("click", closeConfirm);
    $("confirm").addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") closeConfirm();
    });
    $("dead-next").addEventListener("click", () => {
      if (deadNext) deadCursors.push(deadNext);
      refresh();
    });
    $("dead-first").addEventListener("click", () => {
      deadCursors = [""];
      refresh();
    });
    $("doctor-run").addEventListener("click", runDoctor);
    window.addEventListener("online", refresh);
    refresh();
  }

  start();
})();
