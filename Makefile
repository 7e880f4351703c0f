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
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-8s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

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
		--grpc-addr $(GRPC_ADDR) --http-addr $(HTTP_ADDR)

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

.PHONY: test
test: lint test-policy ## everything: lint, policy tests, Go tests with -race
	$(GO) test -race -count=1 ./...

.PHONY: bench
bench: ## Go benchmarks of the decision path
	$(GO) test -run '^$$' -bench . -benchmem ./internal/...

.PHONY: bundle
bundle: ## (issue 3) build a signed OPA bundle of policies and data
	@echo "not yet"; exit 1

.PHONY: clean
clean: ## remove build output and the development secret
	rm -rf bin $(DEV)
