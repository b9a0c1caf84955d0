#!/usr/bin/env bash
# The project's test command (README): formatting, vet, staticcheck, and the
# whole suite with the race detector, then a short run of each fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.8.2
FUZZTIME=${FUZZTIME:-10s}

# Real parts the tests need, from Debian's packages: Chromium for the status
# page's browser tests (integration/status_test.go), PostgreSQL for the fleet
# queue's tests (internal/pgtest starts its own server). Without them those
# tests fail rather than skip, so install them here when we can (root with
# apt-get), and otherwise say what to install.
missing=()
if [ -z "${CHROMIUM:-}" ] && ! command -v chromium >/dev/null; then
	missing+=(chromium)
fi
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
	missing+=(postgresql)
fi
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"
	else
		echo "The tests need: ${missing[*]}. Install them (Debian/Ubuntu: sudo apt-get install -y --no-install-recommends ${missing[*]}) and run this again. CHROMIUM may name another Chromium or Chrome binary." >&2
		exit 1
	fi
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION ./...

echo "== go test -race"
go test -race -count=1 -timeout 20m ./...

# fuzz runs one target. Go 1.26's fuzzing coordinator can fail a target
# with a bare "context deadline exceeded" as -fuzztime runs out, having
# found nothing (go.dev/issue/75804, fixed in Go 1.27); such a run is tried
# again, twice at most. A real finding always writes its input to
# testdata/fuzz and says so, and fails at once.
fuzz() {
	local pkg=$1 target=$2 out
	for attempt in 1 2 3; do
		if out=$(go test -run='^$' -fuzz="^${target}\$" -fuzztime="$FUZZTIME" "$pkg" 2>&1); then
			echo "$out"
			return 0
		fi
		echo "$out"
		if ! grep -q 'context deadline exceeded' <<<"$out" || grep -q 'Failing input written to' <<<"$out"; then
			return 1
		fi
		echo "(the Go fuzzing coordinator's deadline race, not a finding; attempt $attempt of 3)"
	done
	return 1
}

echo "== fuzz ($FUZZTIME each)"
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
		echo "-- $pkg $target"
		fuzz "$pkg" "$target"
	done
done
