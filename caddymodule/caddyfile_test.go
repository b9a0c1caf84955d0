package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
)

var update = flag.Bool("update", false, "rewrite the JSON half of testdata/adapt/*.txt from the current adapter output")

// networkKeySecret stands in for a real network key. The Caddyfiles name
// the key by a runtime placeholder, so it must never reach adapted JSON.
const networkKeySecret = "sekr1t-network-key-3f9a1c"

// dsnSecret stands in for a PostgreSQL connection string written where a
// placeholder belongs; neither it nor its password may reach JSON or errors.
const (
	dsnPassword = "pw-7c1e9b"
	dsnSecret   = "postgres://caddy:" + dsnPassword + "@db.internal:5432/livefyre"
)

// adapt runs the Caddyfile adapter on src with LIVEFYRE_NETWORK_KEY and
// LIVEFYRE_DATABASE_URL set, and fails the test if a secret shows up in the
// output.
func adapt(t testing.TB, src string) ([]byte, error) {
	t.Helper()
	t.Setenv("LIVEFYRE_NETWORK_KEY", networkKeySecret)
	if _, set := os.LookupEnv("LIVEFYRE_DATABASE_URL"); !set { // a fleet test's real one stays
		t.Setenv("LIVEFYRE_DATABASE_URL", dsnSecret)
	}
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
	if bytes.Contains(out, []byte(networkKeySecret)) {
		t.Fatalf("the network key leaked into the adapted JSON:\n%s", out)
	}
	if bytes.Contains(out, []byte(dsnPassword)) {
		t.Fatalf("the database URL leaked into the adapted JSON:\n%s", out)
	}
	return out, err
}

// TestAdaptGolden adapts each testdata/adapt/*.txt Caddyfile and compares
// the result with the JSON below its "----------" line.
func TestAdaptGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "adapt", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			caddyfile, want, ok := strings.Cut(string(data), "----------\n")
			if !ok {
				t.Fatalf("%s has no ---------- line", file)
			}
			out, err := adapt(t, caddyfile)
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, out, "", "\t"); err != nil {
				t.Fatal(err)
			}
			got := pretty.String() + "\n"
			if strings.Contains(caddyfile, "{env.LIVEFYRE_NETWORK_KEY}") &&
				!strings.Contains(got, `"key": "{env.LIVEFYRE_NETWORK_KEY}"`) {
				t.Errorf("the key placeholder did not stay literal:\n%s", got)
			}
			if *update {
				if err := os.WriteFile(file, []byte(caddyfile+"----------\n"+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("adapted JSON differs from %s (run go test -run TestAdaptGolden -update to accept):\n%s", file, lineDiff(want, got))
			}
		})
	}
}

// lineDiff shows the first differing line of two texts, with context.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			from := max(i-3, 0)
			return "line " + strconv.Itoa(i+1) + ":\n  context: " + strings.Join(g[from:i], "\n  context: ") +
				"\n  want:    " + wl + "\n  got:     " + gl
		}
	}
	return "(no line differs)"
}

// TestCaddyfileExampleValidates adapts the shipped example and loads the
// JSON the way `caddy validate` does: every module is provisioned (the key
// placeholder resolved), but the Badger queue is not opened.
func TestCaddyfileExampleValidates(t *testing.T) {
	t.Setenv("XDG_DATA_HOME", t.TempDir())
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("APP_API_TOKEN", "example-app-token") // the example's header_up
	src, err := os.ReadFile(filepath.Join("..", "Caddyfile.example"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := adapt(t, string(src))
	if err != nil {
		t.Fatalf("adapt Caddyfile.example: %v", err)
	}
	if !bytes.Contains(out, []byte(`"key":"{env.LIVEFYRE_NETWORK_KEY}"`)) {
		t.Errorf("the key placeholder did not stay literal:\n%s", out)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("unmarshal adapted JSON: %v", err)
	}
	if err := caddy.Validate(&cfg); err != nil {
		t.Fatalf("caddy.Validate: %v", err)
	}
	queueDir := filepath.Join(caddy.AppDataDir(), "livefyre")
	if _, err := os.Stat(queueDir); !os.IsNotExist(err) {
		t.Errorf("validate touched the queue directory %s (stat: %v); only Start may open it", queueDir, err)
	}
}

func TestAdaptErrors(t *testing.T) {
	// site wraps a livefyre block body in a site; the block's lines start
	// at line 3.
	site := func(body string) string {
		return "example.com {\n\tlivefyre {\n" + body + "\t}\n}\n"
	}
	const netKey = "\t\tnetwork example.fyre.co\n\t\tkey {env.LIVEFYRE_NETWORK_KEY}\n" // lines 3-4
	pull := func(url, body string) string {
		return site(netKey + "\t\tpull " + url + " {\n" + body + "\t\t}\n") // pull on line 5
	}
	const upstream = "\t\t\tupstream http://127.0.0.1:3000/api/users/{id}\n" // line 6 under pull
	global := func(body string) string {
		return "{\n\tlivefyre {\n" + body + "\t}\n}\n\n" + site(netKey+"\t\twatch PUT /u/{id}\n")
	}
	tests := []struct {
		name      string
		caddyfile string
		line      int    // the line the error must name
		want      string // a piece of the error
	}{
		{"missing network", site("\t\tkey {env.LIVEFYRE_NETWORK_KEY}\n\t\twatch PUT /u/{id}\n"), 2, "network is required"},
		{"missing key", site("\t\tnetwork example.fyre.co\n\t\twatch PUT /u/{id}\n"), 2, "key is required"},
		{"network not fyre.co", site("\t\tnetwork example.com\n"), 3, "must end in fyre.co"},
		{"network without a prefix", site("\t\tnetwork .fyre.co\n"), 3, "empty prefix"},
		{"network twice the args", site("\t\tnetwork a.fyre.co b.fyre.co\n"), 3, "network takes one value"},
		{"directive args", "example.com {\n\tlivefyre foo bar {\n\t}\n}\n", 2, "wrong argument count"},
		{"unknown subdirective", site(netKey + "\t\tpong PUT /u/{id}\n"), 5, `unrecognized livefyre subdirective "pong"`},

		{"pull URL without {id}", pull("https://x.example/livefyre/pull", upstream), 5, "must contain {id}"},
		{"pull {id} in the host", pull("https://{id}.x.example/pull", upstream), 5, "not in its host"},
		{"pull {id} part of a segment", pull("https://x.example/pull/user-{id}", upstream), 5, "must be a whole segment"},
		{"pull {id} part of a query value", pull("https://x.example/pull?id=u{id}", upstream), 5, "whole path segment or a whole query value"},
		{"pull {id} twice in the query", pull("https://x.example/pull?a={id}&b={id}", upstream), 5, "only once"},
		{"pull {id} twice in the path", pull("https://x.example/pull/{id}/{id}", upstream), 5, "only once"},
		{"pull no fixed prefix", pull("https://x.example/{id}", upstream), 5, "needs a fixed path"},
		{"pull query on the root", pull("https://x.example/?id={id}", upstream), 5, "needs a fixed path"},
		{"pull relative URL", pull("/livefyre/pull/{id}", upstream), 5, "absolute http(s) URL"},
		{"pull without upstream", pull("https://x.example/pull/{id}", "\t\t\tmap display_name /name\n"), 7, "upstream is required"},
		{"upstream without {id}", pull("https://x.example/pull/{id}", "\t\t\tupstream http://127.0.0.1:3000/api/users\n"), 6, "upstream must contain {id}"},
		{"upstream {id} in the host", pull("https://x.example/pull/{id}", "\t\t\tupstream http://{id}.internal/api\n"), 6, "not in the host"},
		{"upstream not http", pull("https://x.example/pull/{id}", "\t\t\tupstream 127.0.0.1:3000/api/users/{id}\n"), 6, "absolute http(s) URL"},
		{"header_up Cookie", pull("https://x.example/pull/{id}", upstream+"\t\t\theader_up Cookie session=abc\n"), 7, "header_up cannot set Cookie"},
		{"header_up lower-case connection", pull("https://x.example/pull/{id}", upstream+"\t\t\theader_up connection close\n"), 7, "header_up cannot set connection"},
		{"header_up Host", pull("https://x.example/pull/{id}", upstream+"\t\t\theader_up Host app.internal\n"), 7, "header_up cannot set Host"},
		{"header_up one arg", pull("https://x.example/pull/{id}", upstream+"\t\t\theader_up X-A\n"), 7, "needs a field and a value"},
		{"map bad pointer", pull("https://x.example/pull/{id}", upstream+"\t\t\tmap display_name /a~2\n"), 7, "JSON pointer"},
		{"map unknown field", pull("https://x.example/pull/{id}", upstream+"\t\t\tmap nickname /nick\n"), 7, `"nickname" is not a documented`},
		{"map id", pull("https://x.example/pull/{id}", upstream+"\t\t\tmap id /x\n"), 7, `"id" cannot be mapped`},
		{"map field twice", pull("https://x.example/pull/{id}", upstream+"\t\t\tmap email /a\n\t\t\tmap email /b\n"), 8, "mapped twice"},
		{"map one arg", pull("https://x.example/pull/{id}", upstream+"\t\t\tmap display_name\n"), 7, "map needs a Livefyre field and a source"},
		{"unknown pull option", pull("https://x.example/pull/{id}", upstream+"\t\t\tupstreams x\n"), 7, `unrecognized pull option "upstreams"`},
		{"pull timeout not a duration", pull("https://x.example/pull/{id}", upstream+"\t\t\ttimeout soon\n"), 7, "is not a duration"},
		{"pull negative timeout", pull("https://x.example/pull/{id}", upstream+"\t\t\ttimeout -1s\n"), 7, "is not a duration"},
		{"pull max_response zero", pull("https://x.example/pull/{id}", upstream+"\t\t\tmax_response 0\n"), 7, "is not a size"},
		{"two pulls", site(netKey + "\t\tpull https://x.example/a/{id} {\n" + upstream + "\t\t}\n\t\tpull https://x.example/b/{id} {\n" + upstream + "\t\t}\n"), 8, "only one pull endpoint"},

		{"watch without a path", site(netKey + "\t\twatch PATCH\n"), 5, "one or more HTTP methods and a path"},
		{"watch methods only", site(netKey + "\t\twatch PATCH PUT\n"), 5, `"PUT" must start with /`},
		{"watch lower-case method", site(netKey + "\t\twatch patch /api/users/{id}\n"), 5, `"patch" is not an HTTP method`},
		{"watch path before the method", site(netKey + "\t\twatch /api/users/{id} PUT\n"), 5, "is not an HTTP method"},
		{"watch without any id source", site(netKey + "\t\twatch PUT /api/users/me\n"), 5, "no way to find the user id"},
		{"watch {id} part of a segment", site(netKey + "\t\twatch PUT /api/users/u{id}\n"), 5, "must be a whole segment"},
		{"watch {id} twice", site(netKey + "\t\twatch PUT /api/{id}/users/{id}\n"), 5, "only once"},
		{"watch user_id and user_id_json", site(netKey + "\t\twatch POST /api/me {\n\t\t\tuser_id {http.request.header.X-User-Id}\n\t\t\tuser_id_json /user/id\n\t\t}\n"), 8, "cannot both be set"},
		{"watch bad user_id_json", site(netKey + "\t\twatch POST /api/me {\n\t\t\tuser_id_json user/id\n\t\t}\n"), 6, "must start with '/'"},
		{"watch user_id_json bad escape", site(netKey + "\t\twatch POST /api/me {\n\t\t\tuser_id_json /user~2id\n\t\t}\n"), 6, "'~' must be followed by '0' or '1'"},
		{"watch empty user_id_json", site(netKey + "\t\twatch POST /api/me {\n\t\t\tuser_id_json \"\"\n\t\t}\n"), 7, "no way to find the user id"},
		{"watch unknown option", site(netKey + "\t\twatch POST /api/me {\n\t\t\tuser /id\n\t\t}\n"), 6, `unrecognized watch option "user"`},
		{"watch max_body not a size", site(netKey + "\t\twatch POST /api/users/{id} {\n\t\t\tmax_body lots\n\t\t}\n"), 6, "is not a size"},
		{"token_ttl negative", site(netKey + "\t\ttoken_ttl -1h\n"), 5, "is not a duration"},
		{"token_ttl under a minute", site(netKey + "\t\ttoken_ttl 30s\n\t\twatch PUT /u/{id}\n"), 5, "token_ttl: 30s is out of bounds: a system token must live from 1m to 24h"},
		{"token_ttl over a day", site(netKey + "\t\ttoken_ttl 25h\n\t\twatch PUT /u/{id}\n"), 5, "token_ttl: 25h0m0s is out of bounds"},

		// The key: the error never quotes it (the loop checks), and says what to write instead.
		{"literal key", site("\t\tnetwork example.fyre.co\n\t\tkey " + networkKeySecret + "\n\t\twatch PUT /u/{id}\n"), 4, "must be a runtime placeholder, e.g. key {env.LIVEFYRE_NETWORK_KEY}"},
		{"adapt-time {$VAR} key", site("\t\tnetwork example.fyre.co\n\t\tkey {$LIVEFYRE_NETWORK_KEY}\n\t\twatch PUT /u/{id}\n"), 4, "literally or as {$VAR}"},
		{"key with a literal part", site("\t\tnetwork example.fyre.co\n\t\tkey k-{env.LIVEFYRE_NETWORK_KEY}\n\t\twatch PUT /u/{id}\n"), 4, "must be a runtime placeholder"},
		{"key from an unset {$VAR}", site("\t\tnetwork example.fyre.co\n\t\tkey {$LF_TEST_UNSET_VAR}\n\t\twatch PUT /u/{id}\n"), 4, "key needs a value: a runtime placeholder such as {env.LIVEFYRE_NETWORK_KEY}"},
		{"key from a request", site("\t\tnetwork example.fyre.co\n\t\tkey {http.request.header.X-Key}\n\t\twatch PUT /u/{id}\n"), 4, "{http.request.header.X-Key} is not filled in at start-up; use {env.NAME}"},

		{"confirm within under a second", site(netKey + "\t\tconfirm {\n\t\t\twithin 500ms\n\t\t}\n"), 6, "within 500ms: must be at least 1s"},
		{"confirm within not a duration", site(netKey + "\t\tconfirm {\n\t\t\twithin soon\n\t\t}\n"), 6, "is not a duration"},
		{"confirm negative attempts", site(netKey + "\t\tconfirm {\n\t\t\tattempts -1\n\t\t}\n"), 6, "must be a whole number, 0 or more"},
		{"confirm unknown option", site(netKey + "\t\tconfirm {\n\t\t\ttries 2\n\t\t}\n"), 6, `unrecognized confirm option "tries"`},
		{"confirm on", site(netKey + "\t\tconfirm on\n"), 5, "confirm takes `off` or a block"},
		{"confirm twice", site(netKey + "\t\tconfirm off\n\t\tconfirm off\n"), 6, "only once"},

		// Checks that once waited for start-up.
		{"empty block", site(netKey), 2, "nothing to do: add a watch line or a pull block"},
		{"quill not a URL", site(netKey + "\t\tquill 127.0.0.1:8099\n\t\twatch PUT /u/{id}\n"), 5, "quill: \"127.0.0.1:8099\" must be an absolute http(s) URL"},
		{"watch under the pull path", site(netKey + "\t\tpull https://x.example/api/users/{id} {\n" + upstream + "\t\t}\n\t\twatch PATCH /api/users/{id}\n"), 8, "move the pull URL"},
		{"watch under the pull path, watch first", site(netKey + "\t\twatch PATCH /api/users/{id}\n\t\tpull https://x.example/api/{id} {\n" + upstream + "\t\t}\n"), 5, "is under the pull URL's path /api"},

		// Cleartext off loopback, unless insecure_http says so.
		{"http quill", site(netKey + "\t\tquill http://quill.example.com\n\t\twatch PUT /u/{id}\n"), 5, "quill http://quill.example.com is cleartext http to quill.example.com, which is not loopback"},
		{"http pull URL", pull("http://www.example.com/livefyre/pull/{id}", upstream), 5, "use https, or add insecure_http to the livefyre block"},
		{"http pull URL on a private address", pull("http://10.0.0.5/livefyre/pull/{id}", upstream), 5, "10.0.0.5, which is not loopback"},
		{"insecure_http with a value", site(netKey + "\t\tinsecure_http yes\n"), 5, "wrong argument count"},

		{"global bad rate", global("\t\trate fast\n"), 3, `rate "fast"`},
		{"global bad rate unit", global("\t\trate 20/d\n"), 3, "unit must be s, m or h"},
		{"global bad burst", global("\t\trate 20/s 0\n"), 3, "burst"},
		{"global bad durability", global("\t\tdurability disk\n"), 3, `durability must be "process" or "power"`},
		{"global workers 0", global("\t\tworkers 0\n"), 3, "workers \"0\" must be a positive integer"},
		{"global retry_for not a duration", global("\t\tretry_for forever\n"), 3, "is not a duration"},
		{"global unknown retry option", global("\t\tretry {\n\t\t\tmax 1h\n\t\t}\n"), 4, `unrecognized retry option "max"`},
		{"global unknown option", global("\t\tspool /tmp\n"), 3, `unrecognized livefyre global option "spool"`},

		// Fleet mode. The DSN is never quoted (the loop checks), whichever way it was misplaced.
		{"queue without a backend", global("\t\tqueue\n"), 3, "queue needs a backend and its database URL: queue postgres {env.LIVEFYRE_DATABASE_URL}"},
		{"queue a directory", global("\t\tqueue /tmp\n"), 3, "queue needs a backend"},
		{"queue unknown backend", global("\t\tqueue redis {env.LIVEFYRE_DATABASE_URL}\n"), 3, "queue needs a backend"},
		{"queue the DSN first", global("\t\tqueue " + dsnSecret + "\n"), 3, "queue needs a backend"},
		{"queue postgres without a DSN", global("\t\tqueue postgres\n"), 3, "needs the database URL as a runtime placeholder"},
		{"queue postgres from an unset {$VAR}", global("\t\tqueue postgres {$LF_TEST_UNSET_VAR}\n"), 3, "needs the database URL as a runtime placeholder"},
		{"queue postgres literal DSN", global("\t\tqueue postgres " + dsnSecret + "\n"), 3, "the database URL must be a runtime placeholder, e.g. queue postgres {env.LIVEFYRE_DATABASE_URL}"},
		{"queue postgres adapt-time {$VAR} DSN", global("\t\tqueue postgres {$LF_TEST_DSN}\n"), 3, "literally or as {$VAR}"},
		{"queue postgres DSN with a literal part", global("\t\tqueue postgres postgres://caddy:{env.PGPASSWORD}@db/livefyre\n"), 3, "must be a runtime placeholder"},
		{"queue postgres DSN from a request", global("\t\tqueue postgres {http.request.header.X-DSN}\n"), 3, "must be a runtime placeholder"},
		{"queue postgres two DSNs", global("\t\tqueue postgres {env.A} {env.B}\n"), 3, "takes one value"},
		{"queue max_conns 0", global("\t\tqueue postgres {env.LIVEFYRE_DATABASE_URL} {\n\t\t\tmax_conns 0\n\t\t}\n"), 4, `max_conns "0" must be a whole number from 1 to 1000`},
		{"queue max_conns negative", global("\t\tqueue postgres {env.LIVEFYRE_DATABASE_URL} {\n\t\t\tmax_conns -2\n\t\t}\n"), 4, "max_conns"},
		{"queue max_conns not a number", global("\t\tqueue postgres {env.LIVEFYRE_DATABASE_URL} {\n\t\t\tmax_conns many\n\t\t}\n"), 4, `max_conns "many"`},
		{"queue max_conns too many", global("\t\tqueue postgres {env.LIVEFYRE_DATABASE_URL} {\n\t\t\tmax_conns 5000\n\t\t}\n"), 4, "from 1 to 1000"},
		{"queue max_conns without a value", global("\t\tqueue postgres {env.LIVEFYRE_DATABASE_URL} {\n\t\t\tmax_conns\n\t\t}\n"), 4, "max_conns needs a value"},
		{"queue schema upper case", global("\t\tqueue postgres {env.LIVEFYRE_DATABASE_URL} {\n\t\t\tschema LiveFyre\n\t\t}\n"), 4, `schema: schema name "LiveFyre": want lower-case letters`},
		{"queue schema pg_", global("\t\tqueue postgres {env.LIVEFYRE_DATABASE_URL} {\n\t\t\tschema pg_livefyre\n\t\t}\n"), 4, "the pg_ prefix is PostgreSQL's"},
		{"queue schema too long", global("\t\tqueue postgres {env.LIVEFYRE_DATABASE_URL} {\n\t\t\tschema " + strings.Repeat("s", 49) + "\n\t\t}\n"), 4, "1 to 48 characters"},
		{"queue unknown option", global("\t\tqueue postgres {env.LIVEFYRE_DATABASE_URL} {\n\t\t\tpool 4\n\t\t}\n"), 4, `unrecognized queue option "pool"`},
		{"queue twice", global("\t\tqueue postgres {env.A}\n\t\tqueue postgres {env.B}\n"), 4, "queue may appear only once"},
		// The long form: line 1 is "example.com {", the directive line 2.
		{"livefyre_pull with a matcher", "example.com {\n\tlivefyre_pull /livefyre/* https://x.example/livefyre/pull/{id} {\n\t\tnetwork example.fyre.co\n" + upstream + "\t}\n}\n", 2, "livefyre_pull takes no matcher"},
		{"livefyre_pull without a network", "example.com {\n\tlivefyre_pull https://x.example/livefyre/pull/{id} {\n" + upstream + "\t}\n}\n", 2, "livefyre_pull: network is required"},
		{"livefyre_pull network in the wrong place", site(netKey + "\t\tpull https://x.example/livefyre/pull/{id} {\n\t\t\tnetwork a.fyre.co\n\t\t}\n"), 6, "network belongs to the livefyre block"},
		{"livefyre_watch without a network", "example.com {\n\tlivefyre_watch {\n\t\tuser_id {http.request.header.X-User}\n\t}\n}\n", 2, "livefyre_watch: network is required"},
		{"livefyre_watch without an id", "example.com {\n\tlivefyre_watch {\n\t\tnetwork example.fyre.co\n\t}\n}\n", 2, "no way to find the user id"},
		{"livefyre_watch bad path", "example.com {\n\tlivefyre_watch {\n\t\tnetwork example.fyre.co\n\t\tpath /u/x{id}\n\t}\n}\n", 4, "whole segment"},
		{"livefyre_watch unknown option", "example.com {\n\tlivefyre_watch {\n\t\tnetwork example.fyre.co\n\t\tpull https://x.example/p/{id}\n\t}\n}\n", 4, `unrecognized livefyre_watch option "pull"`},
		{"global network without a key", global("\t\tnetwork a.fyre.co {\n\t\t\tquill https://q.example\n\t\t}\n"), 3, "network a.fyre.co: key is required"},
		{"global network literal key", global("\t\tnetwork a.fyre.co {\n\t\t\tkey " + networkKeySecret + "\n\t\t}\n"), 4, "runtime placeholder"},
		{"global network http quill", global("\t\tnetwork a.fyre.co {\n\t\t\tkey {env.LIVEFYRE_NETWORK_KEY}\n\t\t\tquill http://quill.example\n\t\t}\n"), 5, "insecure_http"},
		{"global network unknown option", global("\t\tnetwork a.fyre.co {\n\t\t\twatch PUT /u/{id}\n\t\t}\n"), 4, `unrecognized network option "watch"`},
		{"global network twice", global("\t\tnetwork a.fyre.co {\n\t\t\tkey {env.K}\n\t\t}\n\t\tnetwork a.fyre.co {\n\t\t\tkey {env.K}\n\t\t}\n"), 6, "defined twice"},
		{"global network bad name", global("\t\tnetwork example.com {\n\t\t\tkey {env.K}\n\t\t}\n"), 3, "must end in fyre.co"},
		{"global block twice", "{\n\tlivefyre {\n\t\trate 1/s\n\t}\n\tlivefyre {\n\t\tworkers 2\n\t}\n}\n\n" + site(netKey+"\t\twatch PUT /u/{id}\n"), 5, "may appear only once"},
	}
	t.Setenv("LF_TEST_DSN", dsnSecret)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := adapt(t, tt.caddyfile)
			if err == nil {
				t.Fatalf("adapt succeeded, want an error containing %q; Caddyfile:\n%s\nJSON: %s", tt.want, tt.caddyfile, out)
			}
			msg := err.Error()
			if strings.Contains(msg, networkKeySecret) {
				t.Errorf("the error quotes the network key: %q", msg)
			}
			if strings.Contains(msg, dsnSecret) || strings.Contains(msg, dsnPassword) {
				t.Errorf("the error quotes the database URL: %q", msg)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q\nwant it to contain %q", msg, tt.want)
			}
			if at := "Caddyfile:" + strconv.Itoa(tt.line); !strings.Contains(msg, at+",") && !strings.HasSuffix(msg, at) {
				t.Errorf("error %q\nwant it to name %s; Caddyfile:\n%s", msg, at, numbered(tt.caddyfile))
			}
		})
	}
}

// numbered prefixes each line of s with its line number.
func numbered(s string) string {
	var b strings.Builder
	for i, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		b.WriteString(strconv.Itoa(i+1) + "\t" + l + "\n")
	}
	return b.String()
}
