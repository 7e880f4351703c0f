# tenantgate. `make help` lists the targets; `make run` and `make test` are
# the two commands that do all the set-up on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO       ?= go
OPA      := $(GO) tool opa
BIN      := bin/tenantgate
DEV      := .dev
SECRET   := $(DEV)/hs256.secret
GRPC_ADDR ?= 127.0.0.1:9191
HTTP_ADDR ?= 127.0.0.1:8181

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/tenantgate
	$(GO) build -trimpath -o $(BIN) ./cmd/tenantgate

$(SECRET):
	@mkdir -p $(DEV)
	@head -c 32 /dev/urandom | base64 > $(SECRET)
	@echo "made a development HS256 secret in $(SECRET)"

.PHONY: run
run: build $(SECRET) ## serve the demo data (data/, policies/) with a development secret
	@echo "mint a token: $(BIN) token --jwt-hs256-secret-file $(SECRET) --user alice@contoso.example"
	$(BIN) serve --data data --policies policies --jwt-hs256-secret-file $(SECRET) \
		--grpc-addr $(GRPC_ADDR) --http-addr $(HTTP_ADDR) --grpc-reflection

.PHONY: deps
deps: ## download Go modules and tools (the Go module proxy)
	$(GO) mod download

.PHONY: lint
lint: deps ## gofmt, go vet, opa fmt, opa check --strict, tenant data validation
	@out=$$(gofmt -l cmd internal); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	$(GO) vet ./...
	$(OPA) fmt --fail --list policies/
	$(OPA) check --strict policies/
	$(GO) run ./cmd/tenantgate validate --data data --policies policies

.PHONY: test-policy
test-policy: deps ## opa test, with coverage of at least 90%
	$(OPA) test --coverage --threshold 90 policies/ > /dev/null
	$(OPA) test -v policies/ | tail -n 3

# The proxy end-to-end tests (internal/e2e) run Debian's nginx and caddy.
# Their services are not started on install (a temporary policy-rc.d): the
# tests run their own instances on loopback ports.
.PHONY: test-deps
test-deps: ## install nginx and caddy for the proxy end-to-end tests, where missing (apt-get)
	@export PATH="$$PATH:/usr/sbin:/sbin"; \
	if command -v nginx >/dev/null && command -v caddy >/dev/null; then exit 0; fi; \
	sudo=; if [ "$$(id -u)" != 0 ]; then sudo=sudo; fi; \
	echo "installing nginx and caddy (apt-get) for the proxy end-to-end tests"; \
	norc=; if [ ! -e /usr/sbin/policy-rc.d ]; then norc=1; \
		printf '#!/bin/sh\nexit 101\n' | $$sudo tee /usr/sbin/policy-rc.d >/dev/null; \
		$$sudo chmod 755 /usr/sbin/policy-rc.d; fi; \
	trap 'if [ -n "$$norc" ]; then $$sudo rm -f /usr/sbin/policy-rc.d; fi' EXIT; \
	$$sudo apt-get update -qq; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx caddy

.PHONY: test
test: test-deps lint test-policy ## everything: lint, policy tests, Go tests with -race
	$(GO) test -race -count=1 ./...

# `go test ./...` above already runs a 5 s soak (internal/soak's default);
# `make soak` runs it for SOAK, without -race so it measures throughput
# (SOAKFLAGS=-race to add it). Each fuzz target runs FUZZTIME in turn: every
# `func Fuzz...` in a test file is found, so a new target needs no edit here.
# A short minimize time keeps the run fuzzing instead of minimizing each new
# input for a minute; a crasher is still saved under testdata/fuzz/.
SOAK      ?= 60s
SOAKFLAGS ?=
FUZZTIME  ?= 30s

.PHONY: soak
soak: ## gRPC load while the tenant data flips, SOAK long (60s; e.g. SOAK=10m)
	$(GO) test $(SOAKFLAGS) -count=1 -timeout 0 -run '^TestSoak$$' -v ./internal/soak -soak=$(SOAK)

.PHONY: fuzz
fuzz: ## run every Go fuzz target in turn, FUZZTIME each (30s)
	@grep -Ho '^func Fuzz[A-Za-z0-9_]*' $$(find cmd internal -name '*_test.go' | sort) | \
	while IFS=: read -r file fn; do \
		name=$${fn#func }; pkg=./$$(dirname "$$file"); \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s "$$pkg" || exit 1; \
	done

# `make bench`: the Go benchmarks of issue 4 (Check, Build, Reload at three
# generated sizes), then ghz over gRPC against tenantgate and a no-op
# ext_authz server, servers on CPU 0 and ghz on CPU 1. ghz is pinned in its
# own module (internal/loadbench/ghz/go.mod: it needs an older grpc).
# BENCH_TIME is one ghz run: each size runs BENCH_ROUNDS x 3 targets at full
# speed, then as many at a fixed rate. GO_BENCHTIME and GO_BENCHCOUNT are go
# test's -benchtime and -count (the table shows the median of the counts).
BENCH_TIME    ?= 5s
BENCH_ROUNDS  ?= 3
BENCH_SIZES   ?= small,medium,large
GO_BENCHTIME  ?= 1s
GO_BENCHCOUNT ?= 1
BENCH_OUT     ?= bin/bench

.PHONY: bench
bench: ## benchmarks: Go (Check, Build, Reload) and ghz load vs a no-op server; tables in bin/bench/
	@mkdir -p $(BENCH_OUT)
	$(GO) build -trimpath -o $(BIN) ./cmd/tenantgate
	$(GO) build -trimpath -o bin/tenantgate-noop ./internal/loadbench/noop
	$(GO) build -trimpath -o bin/loadbench ./internal/loadbench
	$(GO) -C internal/loadbench/ghz build -trimpath -o $(CURDIR)/bin/ghz github.com/bojand/ghz/cmd/ghz
	$(GO) test -run '^$$' -bench '^Benchmark(Check|Build|Reload)$$' -benchmem \
		-benchtime $(GO_BENCHTIME) -count $(GO_BENCHCOUNT) ./internal/engine ./internal/extauthz | tee $(BENCH_OUT)/go.txt
	bin/loadbench run -tenantgate $(BIN) -noop bin/tenantgate-noop -ghz bin/ghz -policies policies \
		-sizes $(BENCH_SIZES) -duration $(BENCH_TIME) -rounds $(BENCH_ROUNDS) -out $(BENCH_OUT)/load.md > /dev/null
	@echo; echo "### Go benchmarks (-benchtime $(GO_BENCHTIME), -count $(GO_BENCHCOUNT))"; echo
	@bin/loadbench benchfmt < $(BENCH_OUT)/go.txt | tee $(BENCH_OUT)/go.md
	@echo; cat $(BENCH_OUT)/load.md

# The bundle: data/ and policies/ staged by internal/bundle (which reads the
# YAML as tenantgate does), packed and signed by opa build, checked with the
# public key, then moved into place by rename so a server watching it
# hot-reloads. opa build runs inside the staging dir so that the module paths
# in the bundle are /policies/<file>. The development key pair is made once.
BUNDLE     ?= bundles/tenantgate.tar.gz
BUNDLE_KEY ?= $(DEV)/bundle-signing.pem
BUNDLE_PUB ?= $(DEV)/bundle-verification.pem
BUNDLE_REV ?= $(shell git describe --always --dirty 2>/dev/null || date -u +%Y%m%dT%H%M%SZ)

$(BUNDLE_KEY):
	$(GO) run ./internal/bundle/cmd/keygen -private $(BUNDLE_KEY) -public $(BUNDLE_PUB)

$(BUNDLE_PUB): | $(BUNDLE_KEY)
	$(GO) run ./internal/bundle/cmd/keygen -private $(BUNDLE_KEY) -public $(BUNDLE_PUB)

.PHONY: bundle
bundle: $(BUNDLE_PUB) ## build bundles/tenantgate.tar.gz: data and policies, signed with the key in .dev/
	$(GO) run ./cmd/tenantgate validate --data data --policies policies
	@stage=$$(mktemp -d); out='$(abspath $(BUNDLE))'; tmp="$$out.tmp.tar.gz"; \
	trap 'rm -rf "$$stage" "$$tmp"' EXIT; \
	rev='$(BUNDLE_REV)'; opa=$$($(GO) tool -n opa); \
	$(GO) run ./internal/bundle/cmd/stage -data data -policies policies -revision "$$rev" -out "$$stage"; \
	mkdir -p "$$(dirname "$$out")"; \
	(cd "$$stage" && "$$opa" build -b . --revision "$$rev" \
		--signing-key '$(abspath $(BUNDLE_KEY))' --signing-alg RS256 -o "$$tmp"); \
	$(GO) run ./cmd/tenantgate validate --bundle "$$tmp" --bundle-verification-key $(BUNDLE_PUB); \
	mv "$$tmp" "$$out"; \
	echo "built $(BUNDLE), revision $$rev; serve it with:"; \
	echo "  $(BIN) serve --bundle $(BUNDLE) --bundle-verification-key $(BUNDLE_PUB) --jwt-hs256-secret-file $(SECRET)"

.PHONY: clean
clean: ## remove build output (bin/, bundles/*.tar.gz) and the development secret and keys (.dev/)
	rm -rf bin $(DEV) bundles/*.tar.gz
