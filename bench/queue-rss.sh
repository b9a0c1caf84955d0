#!/usr/bin/env bash
# Resident memory of the whole Caddy process holding 100,000 pending pings.
#
#   bench/queue-rss.sh [jobs]     (default 100000)
#
# Builds ./cmd/caddy, runs it on 127.0.0.1:18080 (admin 127.0.0.1:18019)
# with a Livefyre that is down (quill 127.0.0.1:18099, nothing listening), so
# every ping stays queued, queues the pings through the admin API's resync,
# and prints VmRSS and VmHWM (peak) from /proc. Linux only. Stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${1:-100000}
work=$(mktemp -d)
caddy_pid=
cleanup() {
	if [ -n "$caddy_pid" ]; then kill "$caddy_pid" 2>/dev/null || true; wait "$caddy_pid" 2>/dev/null || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/caddy" ./cmd/caddy

cat >"$work/Caddyfile" <<CADDYFILE
{
	admin 127.0.0.1:18019
	storage file_system $work/data
	livefyre {
		storage $work/queue
	}
}

http://127.0.0.1:18080 {
	bind 127.0.0.1
	livefyre {
		network bench.fyre.co
		key {env.LIVEFYRE_NETWORK_KEY}
		quill http://127.0.0.1:18099
		watch PATCH /api/users/{id}
		pull http://127.0.0.1:18080/livefyre/pull/{id} {
			upstream http://127.0.0.1:18300/api/users/{id}
		}
	}
	respond 200
}
CADDYFILE

LIVEFYRE_NETWORK_KEY=bench-key "$work/caddy" run --config "$work/Caddyfile" --adapter caddyfile >"$work/caddy.log" 2>&1 &
caddy_pid=$!
for _ in $(seq 100); do
	curl -fsS -o /dev/null http://127.0.0.1:18019/config/ 2>/dev/null && break
	sleep 0.1
done

rss() { awk -v k="$1:" '$1 == k { printf "%.0f MB", $2 / 1024 }' "/proc/$caddy_pid/status"; }
memory() { echo "VmRSS $(rss VmRSS) (anonymous $(rss RssAnon), mapped files $(rss RssFile)), peak VmHWM $(rss VmHWM)"; }
echo "caddy started: $(memory)"

seq 1 "$JOBS" | sed 's/^/user-/' >"$work/ids"
start=$(date +%s.%N)
curl -fsS -X POST --data-binary @"$work/ids" -H 'Content-Type: text/plain' \
	"http://127.0.0.1:18019/livefyre/resync?network=bench.fyre.co" >"$work/resync.json"
end=$(date +%s.%N)
echo "resync of $JOBS ids: $(head -c 200 "$work/resync.json") in $(echo "$end - $start" | bc) s"
curl -fsS http://127.0.0.1:18019/livefyre/status 2>/dev/null | head -c 400 || true
echo
echo "after enqueueing $JOBS: $(memory)"
sleep 10
echo "10 s later (dispatcher retrying against a down Livefyre): $(memory)"
echo "queue directory: $(du -sh "$work/queue" | cut -f1) on disk (apparent size $(du -sh --apparent-size "$work/queue" | cut -f1))"
