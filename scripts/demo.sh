#!/usr/bin/env bash
# Runs the local demo: the sample profile app on 127.0.0.1:3000, the Livefyre
# emulator on 127.0.0.1:8099 and Caddy with the livefyre plugin, configured by
# Caddyfile.example, on 127.0.0.1:8080. Their logs go to .demo/*.log, and the
# lines that show the flow (Caddy's livefyre lines, each ping and pull the
# emulator sees, each request the app answers) are echoed here. Ctrl-C or
# SIGTERM stops all three and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
state=.demo
mkdir -p "$state"

# Keep Caddy's data (and the queue) inside the checkout, and give the demo a key.
export XDG_DATA_HOME="$PWD/$state/data" XDG_CONFIG_HOME="$PWD/$state/config"
export LIVEFYRE_NETWORK_KEY=${LIVEFYRE_NETWORK_KEY:-demo-network-key}
export APP_API_TOKEN=${APP_API_TOKEN:-demo-app-token}

pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	wait "${pids[@]}" 2>/dev/null || true
}
# Stopping is the normal way out: exit 0, so that make reports no error.
stop() {
	trap - EXIT
	cleanup
	echo "demo stopped" >&2
	exit 0
}
trap cleanup EXIT
trap stop INT TERM

"$BIN/profileapp" --listen 127.0.0.1:3000 >"$state/profileapp.log" 2>&1 &
pids+=($!)
"$BIN/caddy" livefyre emulator --listen 127.0.0.1:8099 --network example.fyre.co \
	--template 'http://127.0.0.1:8080/livefyre/pull/{id}' >"$state/emulator.log" 2>&1 &
pids+=($!)
"$BIN/caddy" run --config Caddyfile.example --adapter caddyfile >"$state/caddy.log" 2>&1 &
pids+=($!)

for _ in $(seq 50); do
	curl -fsS -o /dev/null http://127.0.0.1:8080/ 2>/dev/null && break
	sleep 0.2
done

cat <<'MSG'

caddy-livefyre demo is running (full logs in .demo/*.log). In another terminal:

  # change a profile through the sidecar
  curl -X PATCH -H 'Content-Type: application/json' \
       -d '{"name":"Ursula Renamed"}' http://127.0.0.1:8080/api/users/u1

  # Livefyre's copy followed (the emulator's state)
  curl http://127.0.0.1:8099/_emulator/profiles/u1
  curl http://127.0.0.1:8099/_emulator/pulls

The flow shows below: [app] PATCH, [caddy] "ping delivered", [emulator]
ping, [caddy] the pull served, [app] GET, [emulator] pull. Ctrl-C stops the demo.

MSG

# follow echoes the lines of `tail -F` that show the flow, each marked with
# its source: Caddy's livefyre lines, the emulator's own, all of the app's.
follow() {
	local src="" line livefyre='"logger":"[^"]*livefyre' emulator='"logger":"livefyre\.emulator"'
	while IFS= read -r line; do
		case $line in
		"==> "*" <==")
			src=${line#==> }
			src=${src% <==}
			src=${src##*/}
			src=${src%.log}
			continue
			;;
		"") continue ;;
		esac
		case $src in
		caddy) [[ $line =~ $livefyre ]] || continue ;;
		emulator) [[ $line != "{"* || $line =~ $emulator ]] || continue ;;
		esac
		printf '[%s] %s\n' "${src/profileapp/app}" "$line"
	done
}
# tail is a job of this script, so cleanup stops it, and follow ends with it.
tail -n +1 -F "$state/caddy.log" "$state/emulator.log" "$state/profileapp.log" 2>/dev/null > >(follow) &
pids+=($!)

wait -n "${pids[@]}"
echo "a demo process exited; see .demo/*.log" >&2
exit 1
