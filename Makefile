# convergenode build and test targets. Everything here runs on a fresh machine
# with only Go installed: tools come through the Go module proxy.

GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME    ?= 20s
BENCHTIME   ?= 1x
PKGS        := ./...

.PHONY: all build run test race bench fuzz lint verify sim chaos chaos-node clean

all: build test

build:
	$(GO) build $(PKGS)
	$(GO) build -o bin/convergenode ./cmd/convergenode

# run starts a node with the embedded default configuration in a temporary
# directory.
run:
	$(GO) run ./cmd/convergenode run --dev

test:
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 20m $(PKGS)

race:
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m $(PKGS)

# fuzz runs every fuzz target for FUZZTIME each.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

lint:
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

verify: lint
	@test -z "$$(gofmt -l .)" || (gofmt -l .; echo "gofmt needed"; exit 1)
	$(GO) mod tidy -diff

# sim runs the simulator's chaos suite over many seeds (every invariant, fault
# and Byzantine mix); make test runs a 200-seed slice of it.
SIMSEEDS ?= 5000
sim:
	$(GO) test -count=1 -timeout 2h ./sim -run 'TestChaos$$' -sim.seeds=$(SIMSEEDS)

# chaos runs the long suites: the simulator over many seeds, then real nodes
# (libp2p on a mocknet) under faults and every Byzantine behaviour.
chaos: sim chaos-node

chaos-node:
	CONVERGENODE_CHAOS_LONG=1 $(GO) test -count=1 -timeout 30m -v ./chaos

clean:
	rm -rf bin
