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
#> make run: the gRPC ext_authz address
GRPC_ADDR ?= 127.0.0.1:9191
#> make run: the HTTP mode and admin address
HTTP_ADDR ?= 127.0.0.1:8181
.PHONY: help
help: ## list the targets and the variables they read
	@echo "Targets:"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo; echo "Variables (make VAR=value target):"
	@awk '/^#> / {doc = substr($$0, 4); next} doc != "" && /^[A-Z_]+ *[?]=/ {n = $$1; sub(/^[A-Z_]+ *[?]= */, ""); printf "  %-14s %s (default: %s)\n", n, doc, $$0} {doc = ""}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/tenantgate
	$(GO) build -trimpath -buildvcs=auto -o $(BIN) ./cmd/tenantgate

$(SECRET):
	@mkdir -p $(DEV)
	@head -c 32 /dev/urandom | base64 > $(SECRET)
	@echo "made a development HS256 secret in $(SECRET)"

# The first build downloads the Go modules and compiles OPA: say so, so a
# newcomer does not think make run hangs.
.PHONY: announce-build
announce-build:
	@if [ ! -x $(BIN) ]; then echo "building $(BIN): the first build downloads Go modules and compiles for a minute or two"; fi

.PHONY: run
run: announce-build build $(SECRET) ## serve the demo data (data/, policies/) with a development secret
	@echo "mint a token: $(BIN) token --jwt-hs256-secret-file $(SECRET) --user alice@contoso.example"
	$(BIN) serve --data data --policies policies --jwt-hs256-secret-file $(SECRET) \
		--grpc-addr $(GRPC_ADDR) --http-addr $(HTTP_ADDR) --grpc-reflection

.PHONY: deps
deps: ## download Go modules and tools (the Go module proxy)
	$(GO) mod download

.PHONY: lint
lint: deps ## gofmt, go vet, opa fmt, opa check --strict, tenant data validation, no built binaries in git
	@out=$$(gofmt -l cmd internal); if [ -n "$$out" ]; then echo "gofmt would change: $$out"; exit 1; fi
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
		big=$$(git ls-files -z | xargs -0 -r stat -c '%s %n' 2>/dev/null | awk '$$1 > 1048576 {print $$2}'); \
		if [ -n "$$big" ]; then echo "tracked files over 1 MiB (a built binary? add it to .gitignore): $$big"; exit 1; fi; fi
	$(GO) vet ./...
	$(OPA) fmt --fail --list policies/
	$(OPA) check --strict policies/
	$(GO) run ./cmd/tenantgate validate --data data --policies policies

.PHONY: test-policy
test-policy: deps ## opa test, with coverage of at least 90%
	$(OPA) test --coverage --threshold 90 policies/ > /dev/null
	$(OPA) test -v policies/ | tail -n 3

# The proxy end-to-end tests (internal/e2e) run Debian's nginx and caddy;
# the bundle-distribution tests (internal/distribution) run nginx as a bundle
# file server and docker-registry as the OCI registry.
# Their services are not started on install (a temporary policy-rc.d): the
# tests run their own instances on loopback ports.
.PHONY: test-deps
test-deps: ## install nginx, caddy and docker-registry for the end-to-end and bundle tests, where missing (apt-get)
	@export PATH="$$PATH:/usr/sbin:/sbin"; \
	if command -v nginx >/dev/null && command -v caddy >/dev/null && command -v docker-registry >/dev/null; then exit 0; fi; \
	sudo=; if [ "$$(id -u)" != 0 ]; then sudo=sudo; fi; \
	echo "installing nginx, caddy and docker-registry (apt-get) for the proxy and bundle-distribution tests"; \
	norc=; if [ ! -e /usr/sbin/policy-rc.d ]; then norc=1; \
		printf '#!/bin/sh\nexit 101\n' | $$sudo tee /usr/sbin/policy-rc.d >/dev/null; \
		$$sudo chmod 755 /usr/sbin/policy-rc.d; fi; \
	trap 'if [ -n "$$norc" ]; then $$sudo rm -f /usr/sbin/policy-rc.d; fi' EXIT; \
	$$sudo apt-get update -qq; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx caddy docker-registry

.PHONY: test
# The Go tests run twice: every package with the default evaluator (ir,
# OPA's compiled plan run by internal/ireval) under -race, then every package
# whose tests decide through the engine with OPA's own evaluator
# (TENANTGATE_EVALUATOR=rego), so both evaluators pass the whole contract.
# The second pass runs without -race: the races it could find are the first
# pass's (the evaluator is the only difference), at a fifth of the time.
# internal/ireval's differential corpora are thinned under -race; the second
# pass runs them whole.
REGO_PASS := ./cmd/... ./internal/engine/... ./internal/server/... ./internal/extauthz/... \
	./internal/httpauthz/... ./internal/e2e/... ./internal/bundle/... ./internal/devtools/soak/... \
	./internal/ireval/... ./internal/analysis/...

test: test-deps lint test-policy ## everything: lint, policy tests, Go tests with -race (with each evaluator)
	$(GO) test -race -count=1 ./...
	TENANTGATE_EVALUATOR=rego $(GO) test -count=1 $(REGO_PASS)

# `go test ./...` above already runs a 5 s soak (internal/devtools/soak's default);
# `make soak` runs it for SOAK, without -race so it measures throughput
# (SOAKFLAGS=-race to add it). Each fuzz target runs FUZZTIME in turn: every
# `func Fuzz...` in a test file is found, so a new target needs no edit here.
# A short minimize time keeps the run fuzzing instead of minimizing each new
# input for a minute; a crasher is still saved under testdata/fuzz/.
#> make soak: how long the soak runs
SOAK      ?= 60s
#> make soak: extra go test flags (e.g. -race)
SOAKFLAGS ?=
#> make fuzz: time per fuzz target
FUZZTIME  ?= 30s
.PHONY: soak
soak: ## gRPC load while the tenant data flips, SOAK long (60s; e.g. SOAK=10m)
	$(GO) test $(SOAKFLAGS) -count=1 -timeout 0 -run '^TestSoak$$' -v ./internal/devtools/soak -soak=$(SOAK)

# `go test ./...` above already runs the fleet test with 20 sidecars;
# `make fleet` runs it with FLEET_SIDECARS and prints the figures.
#> make fleet: tenantgate processes in the fleet
FLEET_SIDECARS ?= 20
#> make fleet: max_delay_seconds of the plainly polling half
FLEET_POLL_MAX ?= 3
.PHONY: fleet
fleet: ## fleet test: FLEET_SIDECARS tenantgate processes, one bundle server; prints convergence, failures, bad revisions
	$(GO) test -count=1 -timeout 10m -run '^TestFleet$$' -v ./internal/devtools/fleet \
		-fleet.sidecars=$(FLEET_SIDECARS) -fleet.poll-max=$(FLEET_POLL_MAX) -fleet.timing | grep -v '^=== '

.PHONY: fuzz
fuzz: ## run every Go fuzz target in turn, FUZZTIME each (30s)
	@grep -Ho '^func Fuzz[A-Za-z0-9_]*' $$(find cmd internal -name '*_test.go' | sort) | \
	while IFS=: read -r file fn; do \
		name=$${fn#func }; pkg=./$$(dirname "$$file"); \
		echo "== $$name ($$pkg, $(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 1s "$$pkg" || exit 1; \
	done

# `make bench`: the Go benchmarks (Check, Build, Reload at three
# generated sizes; Check with the cache on, and off with each evaluator),
# then ghz over gRPC against a no-op ext_authz server and tenantgate with
# each evaluator (ir, rego): as served, on the fresh-id mix (BENCH_FRESH of
# the requests carry a new item id, so they miss the decision cache) and with
# the cache off; servers on CPU 0 and ghz on CPU 1. ghz is pinned in its own
# module (internal/devtools/loadbench/ghz/go.mod: it needs an older grpc).
# BENCH_TIME is one ghz run: each size runs BENCH_ROUNDS x 7 targets at full
# speed, then as many at a fixed rate. GO_BENCHTIME and GO_BENCHCOUNT are go
# test's -benchtime and -count (the table shows the median of the counts).
# The report ends with which performance targets this run meets.
#> make bench: one ghz run
BENCH_TIME    ?= 3s
#> make bench: rounds per size
BENCH_ROUNDS  ?= 3
#> make bench: generated tree sizes (small, medium, large; xl is opt-in: 1,000,000 users, ~1 GiB and minutes)
BENCH_SIZES   ?= small,medium,large
#> make bench: data layouts of the start/memory/reload figures (two files, split per root customer, bundle)
BENCH_LAYOUTS ?= two,split,bundle
#> make bench: share of the fresh-id mix's requests with a new item id
BENCH_FRESH   ?= 0.3
#> make bench: go test -benchtime
GO_BENCHTIME  ?= 1s
#> make bench: go test -count
GO_BENCHCOUNT ?= 1
#> make bench: where the tables go
BENCH_OUT     ?= bin/bench
.PHONY: bench
bench: ## benchmarks: Go (Check, Build, Reload) and ghz load vs a no-op server (both evaluators, cache off, fresh ids); targets; tables in bin/bench/
	@mkdir -p $(BENCH_OUT)
	$(GO) build -trimpath -buildvcs=auto -o $(BIN) ./cmd/tenantgate
	$(GO) build -trimpath -o bin/tenantgate-noop ./internal/devtools/loadbench/noop
	$(GO) build -trimpath -o bin/loadbench ./internal/devtools/loadbench
	$(GO) -C internal/devtools/loadbench/ghz build -trimpath -o $(CURDIR)/bin/ghz github.com/bojand/ghz/cmd/ghz
	TENANTGATE_BENCH_SIZES=$(BENCH_SIZES) $(GO) test -run '^$$' -bench '^Benchmark(Check|Build|Reload)$$' -benchmem \
		-benchtime $(GO_BENCHTIME) -count $(GO_BENCHCOUNT) ./internal/engine ./internal/extauthz | tee $(BENCH_OUT)/go.txt
	bin/loadbench run -tenantgate $(BIN) -noop bin/tenantgate-noop -ghz bin/ghz -policies policies \
		-sizes $(BENCH_SIZES) -duration $(BENCH_TIME) -rounds $(BENCH_ROUNDS) -fresh-share $(BENCH_FRESH) \
		-gobench $(BENCH_OUT)/go.txt -out $(BENCH_OUT)/load.md > /dev/null
	bin/loadbench load -tenantgate $(BIN) -policies policies -sizes $(BENCH_SIZES) -layouts $(BENCH_LAYOUTS) \
		-cpus 0 -out $(BENCH_OUT)/start.md > /dev/null
	@echo; echo "### Go benchmarks (-benchtime $(GO_BENCHTIME), -count $(GO_BENCHCOUNT))"; echo
	@bin/loadbench benchfmt < $(BENCH_OUT)/go.txt | tee $(BENCH_OUT)/go.md
	@echo; cat $(BENCH_OUT)/load.md
	@echo; cat $(BENCH_OUT)/start.md

# The bundle: `tenantgate bundle build` validates data/ and policies/, packs
# them and signs them with the development key (made once by
# internal/devtools/keygen); the result is checked with the public key, then
# moved into place by rename so a server watching it hot-reloads. The
# revision is a hash of the content unless BUNDLE_REV names one.
#> make bundle: the bundle file
BUNDLE     ?= bundles/tenantgate.tar.gz
#> make bundle: the signing key (made once)
BUNDLE_KEY ?= $(DEV)/bundle-signing.pem
#> make bundle: its public key
BUNDLE_PUB ?= $(DEV)/bundle-verification.pem
#> make bundle: the revision (empty: a hash of the content)
BUNDLE_REV ?=

$(BUNDLE_KEY):
	$(GO) run ./internal/devtools/keygen -private $(BUNDLE_KEY) -public $(BUNDLE_PUB)

$(BUNDLE_PUB): | $(BUNDLE_KEY)
	$(GO) run ./internal/devtools/keygen -private $(BUNDLE_KEY) -public $(BUNDLE_PUB)

.PHONY: bundle
bundle: build $(BUNDLE_PUB) ## build bundles/tenantgate.tar.gz: data and policies, signed with the key in .dev/ (BUNDLE_REV=: the revision)
	@out='$(abspath $(BUNDLE))'; tmp="$$out.tmp.tar.gz"; \
	trap 'rm -f "$$tmp"' EXIT; \
	$(BIN) bundle build --data data --policies policies --signing-key '$(BUNDLE_KEY)' --signing-alg RS256 \
		$(if $(BUNDLE_REV),--revision '$(BUNDLE_REV)') -o "$$tmp"; \
	$(BIN) validate --bundle "$$tmp" --bundle-verification-key '$(BUNDLE_PUB)'; \
	mv "$$tmp" "$$out"; \
	echo "built $(BUNDLE); serve it with:"; \
	echo "  $(BIN) serve --bundle $(BUNDLE) --bundle-verification-key $(BUNDLE_PUB) --jwt-hs256-secret-file $(SECRET)"

.PHONY: clean
clean: ## remove build output (bin/, bundles/*.tar.gz) and the development secret and keys (.dev/)
	rm -rf bin $(DEV) bundles/*.tar.gz
