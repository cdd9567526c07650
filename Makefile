# dbplane. The two commands the README promises:
#   make render   render an example Database through the real crossplane CLI
#   make test     every test: unit, schema/CEL, golden renders, validation,
#                 real PostgreSQL/MariaDB, and e2e on a local control plane
SHELL := /usr/bin/env bash -o pipefail

EXAMPLE  ?= examples/databases/postgresql-production.yaml
# make render's command: composition render | render | beta render (Crossplane 1.16's CLI).
RENDER_COMMAND ?= composition render
FUZZTIME ?= 20s
CACHE   ?= $(HOME)/.cache/dbplane
OUT     := _output
export DBPLANE_CACHE := $(CACHE)

# The local control plane the e2e suites start (test/e2e), besides crossplane-core,
# and the loopback registry test/e2e/install pushes dbplane's packages to.
E2E_TOOLS := etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok registry

# The tiers make test runs, in order; each is also a target of its own. A new
# step goes in this list to be part of make test and so of CI.
TEST_STEPS := check-generate vet lint unit fuzz integration golden-test e2e

# What runs with no database server, no control plane and no pinned CLI: every
# package outside test/, and test/tools' check of build.sh (which builds nothing).
UNIT_PKGS := ./apis/... ./cmd/... ./fn/... ./internal/... ./test/tools/

# Prefix of a command that needs the pinned crossplane CLI and core, and the
# Crossplane 1.16 CLI for `beta render` (the tests in test/): builds them once,
# and fails rather than run without them.
with-crossplane = cli=$$(test/tools/build.sh crossplane-cli) && core=$$(test/tools/build.sh crossplane-core) && \
	promtool=$$(test/tools/build.sh promtool) && crank=$$(test/tools/build.sh crank) && \
	DBPLANE_CROSSPLANE=$$cli DBPLANE_CROSSPLANE_CORE=$$core DBPLANE_PROMTOOL=$$promtool DBPLANE_CROSSPLANE_1=$$crank

.PHONY: all tools build generate check-generate render test lint fuzz vet unit integration golden-test golden e2e e2e-crossplane1 bench bench-e2e bench-replication bench-failover bench-tls bench-backup xpkg clean

all: build test

tools: ## Build the pinned crossplane CLIs (v2.5, and 1.16 for beta render), core, promtool, exporters and control plane binaries into $(CACHE), once.
	@for t in crossplane-cli crossplane-core crank promtool postgres-exporter mysqld-exporter $(E2E_TOOLS); do test/tools/build.sh $$t >/dev/null; done

build:
	go build ./...
	CGO_ENABLED=0 go build -trimpath -o $(OUT)/bin/function ./cmd/function

generate: ## Regenerate deepcopy and the XRD from apis/.
	cd apis && go generate ./...

check-generate: generate ## Fail when generated files differ from git or are new and untracked.
	@git diff --exit-code -- apis package || { echo "generated files are stale: run make generate and commit"; exit 1; }
	@untracked=$$(git status --porcelain --untracked-files=all -- apis package | grep '^??' || true); \
	if [[ -n "$$untracked" ]]; then echo "$$untracked"; echo "generated files are untracked: git add them (or delete strays) and commit"; exit 1; fi

render: ## Render EXAMPLE (default: production PostgreSQL) through the real CLI (RENDER_COMMAND="beta render" for 1.16's).
	@RENDER_COMMAND="$(RENDER_COMMAND)" test/render.sh $(EXAMPLE) $(RENDER_FLAGS)

test: tools ## Every test, the TEST_STEPS in order: what CI runs (.ci/run).
	@for step in $(TEST_STEPS); do $(MAKE) --no-print-directory $$step UNIT_FLAGS=-count=1 || exit 1; done

lint: ## golangci-lint (pinned, built once into $(CACHE)) with .golangci.yml, e2e tag included.
	$$(test/tools/build.sh golangci-lint) run ./...

fuzz: ## FuzzRunFunction for FUZZTIME (20s in make test; make fuzz FUZZTIME=10m for longer).
	go test ./fn/ -run '^$$' -fuzz '^FuzzRunFunction$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 1x

vet: ## go vet every package, the e2e suite's included.
	go vet ./...
	go vet -tags e2e ./test/...

unit: ## Fast feedback, no servers, control plane or pinned CLI: fn, apis (schema and CEL), internal, cmd.
	go test $(UNIT_FLAGS) $(UNIT_PKGS)

integration: ## Backup, restore and the SQL provider against real PostgreSQL and MariaDB (installed by test/servers/install.sh).
	test/servers/install.sh
	go test -count=1 -timeout 30m ./test/integration/

golden-test: ## Every example through the pinned crossplane CLI: renders against the goldens, validation, packages.
	$(with-crossplane) go test -count=1 ./test/

golden: ## Rewrite the golden renders in test/testdata from the pinned crossplane CLI, after an intended change.
	$(with-crossplane) go test -count=1 ./test/ -update

e2e: tools ## End to end on a local control plane: etcd, kube-apiserver, kwok, Crossplane core, our function and SQL provider (PostgreSQL from test/servers/install.sh behind one Database's pod); then a fresh one installed from a loopback registry by the README's install steps.
	test/servers/install.sh
	go test -tags e2e -count=1 -p 1 -timeout 45m -v ./test/e2e/ ./test/e2e/install/ 2>&1 | grep -v '^=== \(RUN\|PAUSE\|CONT\)'

e2e-crossplane1: tools ## A DatabaseClaim on a local control plane running Crossplane 1.20's core (test/tools/crossplane-core-v1): refused, see README "Claims". Not in make test.
	test/tools/build.sh crossplane-core-v1 >/dev/null
	go test -tags e2e -count=1 -p 1 -timeout 15m -v ./test/e2e/crossplane1/ 2>&1 | grep -v '^=== \(RUN\|PAUSE\|CONT\)'

bench-replication: ## PostgreSQL on loopback: a new standby of a 1 GB database streaming, lag under pgbench, synchronous commit cost.
	bash test/servers/install.sh
	go test ./test/integration/ -run '^$$' -bench 'StandbyCopy|ReplicationLag|SynchronousCommit' -benchtime=1x -count=1 -timeout 30m

bench-failover: ## PostgreSQL on loopback: lose the primary 10 times, killed and cut off (failover time p50/p99, acknowledged commits lost); 3 switchovers (write unavailability).
	bash test/servers/install.sh
	go test ./test/integration/ -run '^$$' -bench 'Failover|Switchover' -benchtime=1x -count=1 -timeout 45m

bench-tls: ## PostgreSQL and MariaDB on loopback: new connections per second (login included) without TLS and with verify-full TLS.
	bash test/servers/install.sh
	go test ./test/integration/ -run '^$$' -bench 'Connect' -benchtime=3s -count=3 -timeout 15m

bench-backup: ## PostgreSQL and MariaDB on loopback, 1.1 GB: the composed backup and restore scripts (volume, versitygw, encrypted) against dump > file and client < file.
	go test ./test/integration/ -run '^$$' -bench 'BenchmarkBackup' -benchtime=1x -count=1 -timeout 60m

bench: ## RunFunction against no-op and echo floors; the provider's steady-state Observe on real servers.
	go test ./fn/ -run '^$$' -bench . -benchtime=3s -count=3
	go test ./test/integration/ -run '^$$' -bench BenchmarkProviderObserve -benchtime=2s

bench-e2e: tools ## N = 10, 100, 300 Databases applied at once on the local control plane (DBPLANE_E2E_SCALE=10,100 to choose).
	go test -tags e2e -count=1 -timeout 60m -run '^$$' -bench Scale -benchtime=1x ./test/e2e/

xpkg: tools build ## Build the function and configuration packages offline into _output/xpkg.
	@test/xpkg.sh

clean:
	rm -rf $(OUT)
