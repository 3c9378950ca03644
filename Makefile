# Bedside. `make run` starts a single-node hub; `make test` runs every test.
GO        ?= go
WASM_EXEC ?= $(shell $(GO) env GOROOT)/lib/wasm/go_js_wasm_exec
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)

.PHONY: all build run test test-go test-wasm test-crosscheck deps lint fuzz bench bench-turn clean

all: build

build: ## build bin/bedside and bin/bedsidectl
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/bedside ./cmd/bedside
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/bedsidectl ./cmd/bedsidectl

run: build ## start a single-node hub on 127.0.0.1:8080 with its data in ./data
	./bin/bedside serve

test: deps ## every test: vet, go test -race, the WebAssembly tests on Node, the e2ee cross-check
	$(GO) vet ./...
	$(MAKE) test-go test-wasm test-crosscheck

test-go:
	$(GO) test -race -timeout 15m ./...

test-wasm: ## the client packages compiled to WebAssembly, run on Node
	GOOS=js GOARCH=wasm $(GO) vet ./e2ee/ ./clientsdk/ ./hub/wire/
	GOOS=js GOARCH=wasm $(GO) test -exec="$(WASM_EXEC)" ./e2ee/ ./clientsdk/ ./hub/wire/

test-crosscheck: ## open the golden e2ee v1 envelopes in Node, written from docs/e2ee.md alone
	npm ci --no-audit --no-fund --loglevel=error --prefix scripts/e2ee-crosscheck
	node scripts/e2ee-crosscheck/open-golden.mjs e2ee/testdata/golden/v1.json docs/e2ee.md

deps: ## find or install what the tests need (Node for WebAssembly, npm for the cross-check)
	./scripts/test-deps.sh

lint: ## go vet, plus staticcheck and govulncheck when installed
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null; then staticcheck ./...; else echo "staticcheck not installed"; fi
	@if command -v govulncheck >/dev/null; then govulncheck ./...; else echo "govulncheck not installed"; fi

fuzz: ## run each fuzz target for FUZZTIME (default 20s)
	./scripts/fuzz.sh $(or $(FUZZTIME),20s)

bench: ## benchmarks behind docs/benchmarks.md
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 2s ./storage/boltstore/ ./hub/ ./e2ee/
	$(GO) test -run '^$$' -bench Forward -benchtime 3s ./relay/sfu/

clean:
	rm -rf bin

bench-turn: ## TURN relayed messages/s with turnutils_uclient: this relay against coturn (docs/benchmarks.md)
	$(GO) test -run '^$$' -bench 'TURNUclient' -benchtime 1x -timeout 30m ./relay/
