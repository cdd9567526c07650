# dbplane. The two commands the README promises:
#   make render   render an example Database through the real crossplane CLI
#   make test     every test: unit, schema/CEL, golden renders, validation
SHELL := /usr/bin/env bash -o pipefail

EXAMPLE ?= examples/databases/postgresql-production.yaml
CACHE   ?= $(HOME)/.cache/dbplane
OUT     := _output
export DBPLANE_CACHE := $(CACHE)

.PHONY: all tools build generate check-generate render test unit golden bench xpkg image clean

all: build test

tools: ## Build the pinned crossplane CLI and core binaries into $(CACHE), once.
	@test/tools/build.sh crossplane-cli >/dev/null
	@test/tools/build.sh crossplane-core >/dev/null

build:
	go build ./...
	CGO_ENABLED=0 go build -trimpath -o $(OUT)/bin/function ./cmd/function

generate: ## Regenerate deepcopy and the XRD from apis/.
	cd apis && go generate ./...

check-generate: generate ## Fail when generated files differ from git.
	@git diff --exit-code -- apis package || { echo "generated files are stale: run make generate and commit"; exit 1; }

render: ## Render EXAMPLE (default: production PostgreSQL) through the real CLI.
	@test/render.sh $(EXAMPLE) $(RENDER_FLAGS)

test: tools check-generate ## Every test.
	test/servers/install.sh
	go vet ./...
	DBPLANE_CROSSPLANE=$$(test/tools/build.sh crossplane-cli) \
	DBPLANE_CROSSPLANE_CORE=$$(test/tools/build.sh crossplane-core) \
	go test -count=1 ./...

bench: ## RunFunction against no-op and echo floors; the provider's steady-state Observe on real servers.
	go test ./fn/ -run '^$$' -bench . -benchtime=3s -count=3
	go test ./test/integration/ -run '^$$' -bench BenchmarkProviderObserve -benchtime=2s

xpkg: tools build ## Build the function and configuration packages offline into _output/xpkg.
	@test/xpkg.sh

clean:
	rm -rf $(OUT)
