#!/usr/bin/env bash
# Runs the local demo: the sample profile app on 127.0.0.1:3000, the Livefyre
# emulator on 127.0.0.1:8099 and Caddy with the livefyre plugin, configured by
# Caddyfile.example, on 127.0.0.1:8080. Ctrl-C stops all three.
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
	wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

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

caddy-livefyre demo is running (logs in .demo/). In another terminal:

  # change a profile through the sidecar
  curl -X PATCH -H 'Content-Type: application/json' \
       -d '{"name":"Ursula Renamed"}' http://127.0.0.1:8080/api/users/u1

  # Livefyre's copy followed (the emulator's state)
  curl http://127.0.0.1:8099/_emulator/profiles/u1
  curl http://127.0.0.1:8099/_emulator/pulls

Ctrl-C stops the demo.
MSG
wait -n "${pids[@]}"
echo "a demo process exited; see .demo/*.log" >&2
