# dbplane. The two commands the README promises:
#   make render   render an example Database through the real crossplane CLI
#   make test     every test: unit, schema/CEL, golden renders, validation,
#                 real PostgreSQL/MariaDB, and e2e on a local control plane
SHELL := /usr/bin/env bash -o pipefail

EXAMPLE ?= examples/databases/postgresql-production.yaml
CACHE   ?= $(HOME)/.cache/dbplane
OUT     := _output
export DBPLANE_CACHE := $(CACHE)

# The local control plane the e2e suites start (test/e2e), besides crossplane-core.
E2E_TOOLS := etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok

.PHONY: all tools build generate check-generate render test e2e bench bench-e2e xpkg clean

all: build test

tools: ## Build the pinned crossplane CLI, core and control plane binaries into $(CACHE), once.
	@for t in crossplane-cli crossplane-core $(E2E_TOOLS); do test/tools/build.sh $$t >/dev/null; done

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
	go vet -tags e2e ./test/...
	DBPLANE_CROSSPLANE=$$(test/tools/build.sh crossplane-cli) \
	DBPLANE_CROSSPLANE_CORE=$$(test/tools/build.sh crossplane-core) \
	go test -count=1 ./...
	$(MAKE) --no-print-directory e2e

e2e: tools ## End to end on a local control plane: etcd, kube-apiserver, kwok, Crossplane core, our function.
	go test -tags e2e -count=1 -timeout 45m -v ./test/e2e/ 2>&1 | grep -v '^=== \(RUN\|PAUSE\|CONT\)'

bench: ## RunFunction against no-op and echo floors; the provider's steady-state Observe on real servers.
	go test ./fn/ -run '^$$' -bench . -benchtime=3s -count=3
	go test ./test/integration/ -run '^$$' -bench BenchmarkProviderObserve -benchtime=2s

bench-e2e: tools ## N = 10, 100, 300 Databases applied at once on the local control plane (DBPLANE_E2E_SCALE=10,100 to choose).
	go test -tags e2e -count=1 -timeout 60m -run '^$$' -bench Scale -benchtime=1x ./test/e2e/

xpkg: tools build ## Build the function and configuration packages offline into _output/xpkg.
	@test/xpkg.sh

clean:
	rm -rf $(OUT)
