#!/usr/bin/env bash
# What the livefyre sidecar costs the app behind it, side by side with plain
# reverse_proxy in the same run (BENCHMARKS.md, "Sidecar overhead").
#
#   bench/run.sh            full run: 5 rounds × 10 s per variant (about 10 minutes)
#   bench/run.sh --quick    2 rounds × 3 s, to check the harness (about 3 minutes)
#   bench/run.sh -h         every option (rounds, duration, wrk threads and
#                           connections, scenarios, -slices, -pprof <dir>, -keep)
#   bench/run.sh -scenarios 7
#                           fleet mode: the Badger and the PostgreSQL queue in
#                           the same run (about 6 minutes; opt-in, not in the
#                           default 1-6). Needs PostgreSQL (apt-get install
#                           postgresql): a private server in a temporary
#                           directory, on a unix socket, stopped at the end.
#                           -pg-fsync=false runs it with fsync off.
#
# Installs wrk if missing (apt-get; run as root), builds bin/caddy from
# ./cmd/caddy and bin/overhead from ./bench/overhead, then runs the scenarios
# on 127.0.0.1 ports 18100-18199. Results go to stdout and to
# bench/results/<date>.md. Every load run stops by itself; an interrupted run
# takes its child processes with it.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
	echo "installing wrk" >&2
	apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi

go build -o bin/caddy ./cmd/caddy
go build -o bin/overhead ./bench/overhead

out="bench/results/$(date +%Y-%m-%d-%H%M).md"
bin/overhead -caddy bin/caddy -out "$out" "$@"
echo "results written to $out" >&2
