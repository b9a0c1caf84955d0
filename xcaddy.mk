# Build, demo and test caddy-livefyre.
#
#   make -f xcaddy.mk demo     build Caddy with the plugin and run the local demo
#   make -f xcaddy.mk test     run the test suite (what CI runs)
#   make -f xcaddy.mk build    build bin/caddy from ./cmd/caddy (standard modules + livefyre)
#   make -f xcaddy.mk xcaddy   build bin/caddy-xcaddy with xcaddy, the way users add plugins
#   make -f xcaddy.mk screenshot  write docs/status.png: the status page in headless Chromium

CADDY_VERSION  ?= v2.11.9
XCADDY_VERSION ?= v0.4.5
BIN            ?= bin
MODULE         := github.com/caddy-livefyre/caddy-livefyre

.PHONY: build xcaddy demo test screenshot clean

build:
	go build -o $(BIN)/caddy ./cmd/caddy
	go build -o $(BIN)/profileapp ./cmd/profileapp

# The plugin comes from this checkout, so nothing should look it up online.
# A proxy list joined with "|off" falls back to "off" on any error (such as a
# proxy refusing an unpublished module), and "off" makes the go command take
# the local replacement as is.
XCADDY_GOPROXY ?= $(shell go env GOPROXY | sed 's/,direct$$//')|off

xcaddy:
	GOBIN=$(abspath $(BIN)) go install github.com/caddyserver/xcaddy/cmd/xcaddy@$(XCADDY_VERSION)
	GOPROXY='$(XCADDY_GOPROXY)' $(BIN)/xcaddy build $(CADDY_VERSION) --with $(MODULE)=./ --output $(BIN)/caddy-xcaddy

# exec: a SIGTERM that make passes on reaches the demo, which stops its
# processes and exits 0, rather than a shell that would leave them running.
demo: build
	BIN=$(BIN) exec ./scripts/demo.sh

test:
	./scripts/test.sh

# Real Caddy, the emulator and some traffic, as in the integration tests;
# needs Chromium, as they do.
screenshot:
	mkdir -p docs
	STATUS_SCREENSHOT=$(abspath docs/status.png) go test -count=1 ./integration/ -run '^TestStatusPageScreenshot$$' -v

clean:
	rm -rf $(BIN) .demo
