# Two commands do all set-up on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export MAGSEV_DATA_DIR ?= $(CURDIR)/data
# The demo and its UI load all three groups unless MAGSEV_TICKERS says otherwise (the project's default is mag7).
DEMO_TICKERS := mag7,benchmarks,crypto

.PHONY: install lock upgrade lint format docs docs-serve reference dagster-home postgres iam-simulator browser trino sandbox demo test test-fast test-slow test-e2e dg-check snapshots ui dashboards provision bench clean

# The environment is the committed lock (uv.lock, every extra), installed frozen: a fresh clone gets
# exactly the versions the suite was last green with. uv installs it (~29 s vs pip's ~68 s on 2 cores);
# where uv cannot be had, pip installs the same pins, hashes checked, from requirements.lock.txt (the
# lock exported; test_lock.py keeps the two equal). That file is the whole closure, hence --no-deps
# (pip's hash mode otherwise refuses a dependency's extras such as gql[requests]). Bytecode is
# compiled at install, as pip does: otherwise the suite's first processes each compile dagster...
UV_VERSION := $(shell sed -n '/^name = "uv"$$/{n;s/^version = "\(.*\)"$$/\1/p}' uv.lock)
UV := $(BIN)/uv
$(STAMP): pyproject.toml uv.lock requirements.lock.txt
	$(PYTHON) -m venv $(VENV)
	if $(BIN)/pip install --quiet "uv==$(UV_VERSION)"; then \
	  UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --quiet --frozen --all-extras --compile-bytecode; \
	else \
	  $(BIN)/pip install --quiet --no-deps --require-hashes -r requirements.lock.txt && $(BIN)/pip install --quiet --no-deps -e .; \
	fi
	touch $(STAMP)

install: $(STAMP)

# After an edit of pyproject.toml's dependencies: the lock re-resolved with as few changes as possible.
lock: $(STAMP)
	$(UV) lock
	$(UV) export --quiet --frozen --all-extras --no-emit-project -o requirements.lock.txt

# Every dependency moved to its newest release the ranges allow, installed, and the whole suite run.
# Commit the lock on its own if green; if a release breaks the suite, hold it back in pyproject.toml
# with the reason (release, symptom, upstream issue) and the README's "Held back" table, then re-run.
upgrade: $(STAMP)
	$(UV) lock --upgrade
	$(UV) export --quiet --frozen --all-extras --no-emit-project -o requirements.lock.txt
	$(MAKE) test
	@git --no-pager diff --stat -- uv.lock requirements.lock.txt

# The instance config (run queue, pools) is committed: copied when missing, empty or older than the
# template (an edited copy that differs is kept as dagster.yaml.bak).
# The pools' limits are then written into the instance (magsev_dagster/pools.py says why).
INSTANCE_YAML := $(DAGSTER_HOME)/dagster.yaml
dagster-home: $(STAMP)
	@mkdir -p $(DAGSTER_HOME)
	@if [ ! -s $(INSTANCE_YAML) ] || [ deploy/dagster.local.yaml -nt $(INSTANCE_YAML) ]; then \
	  if [ -s $(INSTANCE_YAML) ] && ! cmp -s $(INSTANCE_YAML) deploy/dagster.local.yaml; then \
	    cp $(INSTANCE_YAML) $(INSTANCE_YAML).bak && echo "saved your $(INSTANCE_YAML) as dagster.yaml.bak"; fi; \
	  cp deploy/dagster.local.yaml $(INSTANCE_YAML); fi
	@$(BIN)/python -m magsev_dagster.pools

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian's PostgreSQL server for the Postgres-backed instance tests; without it they skip, saying why
# (with CI set they fail: a skip must not read as a pass there).
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
	  ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q postgresql) || \
	  echo "postgresql not installable here: the Postgres tests will be skipped"

# npm's @cloud-copilot/iam-simulate, which the IAM policy tests evaluate the recorded AWS calls with
# (Debian's nodejs + npm when node is missing); without it those tests skip, saying why (fail with CI set).
IAM_SIMULATOR := magsev_dagster_tests/iam/node_modules/.package-lock.json
$(IAM_SIMULATOR): magsev_dagster_tests/iam/package-lock.json
	@command -v npm >/dev/null || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q nodejs npm) || \
	  echo "nodejs/npm not installable here: the IAM policy tests will be skipped"
	@command -v npm >/dev/null && cd magsev_dagster_tests/iam && npm ci --no-audit --no-fund --silent || \
	  echo "npm ci failed: the IAM policy tests will be skipped"

iam-simulator: $(IAM_SIMULATOR)

# Trino 476 (Athena engine 3's engine) for the AWS mode's tests: trino-server-core + the Hive plugin from
# Maven Central, SHA-1 checked, into $${XDG_CACHE_HOME:-~/.cache}/magsev/trino (~30 s once); Debian's
# maven when mvn is missing. It needs Java 24+ (a JDK under JAVA_HOME or Debian's /usr/lib/jvm); without
# either the Trino tests skip, saying why (fail with CI set).
trino: $(STAMP)
	@command -v mvn >/dev/null || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q maven) || \
	  echo "maven not installable here: Trino cannot be fetched"
	@$(BIN)/python -m magsev_dagster_tests.fakes.trino fetch || [ -z "$$CI" ]

demo: dagster-home  ## materialize the last trading days on the embedded default
	MAGSEV_TICKERS=$${MAGSEV_TICKERS:-$(DEMO_TICKERS)} $(BIN)/python -m magsev_dagster.demo

# Debian's chromium + chromium-driver (no browser download); without them the browser tests skip, saying
# why (fail with CI set).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium chromium-driver) || \
	  echo "chromium/chromium-driver not installable here: the browser tests will be skipped"

# PYTHONDONTWRITEBYTECODE (set in some environments) makes every test process re-compile the whole
# dagster/pandas/boto import tree: the suite's workers import it several times over.
unexport PYTHONDONTWRITEBYTECODE
TEST_WORKERS ?= 2
# One Trino serves every worker: started beside pytest (its ~8 s start overlaps collection), stopped after.
WITH_TRINO := $(BIN)/python -m magsev_dagster_tests.fakes.trino run --
PYTEST := $(WITH_TRINO) $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadscope -rs

test: $(STAMP) postgres iam-simulator browser trino lint docs  ## lint, the docs' strict build, then the default suite with the browser flow (CI runs exactly this)
	$(PYTEST) -m "not slow"

lint: $(STAMP)  ## ruff (lint and format) and mypy over the package, as configured in pyproject.toml
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)  ## ruff's formatter and its safe fixes over the tree (make lint checks both)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs: $(STAMP)  ## the docs site into site/, strictly: a broken link or anchor fails
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict  # not --quiet: mkdocs 1.6 then stops counting warnings, so strict passes

reference: $(STAMP)  ## rewrite docs/reference/ from the code after an intended change (the drift tests compare them); commit the diff
	$(BIN)/python docs/gen_reference.py

docs-serve: $(STAMP)  ## the docs site on http://127.0.0.1:8000, rebuilt on every change
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

test-fast: $(STAMP) postgres iam-simulator trino  ## day-to-day: the default suite without the browser
	$(PYTEST) -m "not slow and not e2e"

test-slow: $(STAMP) postgres iam-simulator trino
	$(WITH_TRINO) $(BIN)/python -m pytest -m slow

test-e2e: $(STAMP) browser  ## the Dagster UI in headless Chromium only; screenshots in test-output/e2e/
	$(BIN)/python -m pytest -m e2e -rs

snapshots: $(STAMP)  ## rewrite the definitions' public shape (magsev_dagster_tests/snapshots/) after an intended change; review and commit the diff
	MAGSEV_UPDATE_SNAPSHOTS=1 $(BIN)/python -m pytest -q magsev_dagster_tests/test_contract.py -k snapshot

dg-check: $(STAMP)  ## dg's own check of the definitions, for MAGSEV_ENV=local and aws
	$(BIN)/dg check defs
	MAGSEV_ENV=aws $(BIN)/dg check defs

bench: $(STAMP) trino  ## scale, scan and cost benchmarks, ~10 min (BENCH_ARGS=--quick: ~3 min); see benchmarks/README.md
	$(BIN)/python -W ignore -m benchmarks $(BENCH_ARGS)

sandbox: dagster-home trino  ## the AWS mode with no account: a moto server (Athena on Trino) + `dagster dev` on :3000 (docs/how-to/sandbox.md)
	MAGSEV_TICKERS=$${MAGSEV_TICKERS:-$(DEMO_TICKERS)} $(BIN)/python -m magsev_dagster_tests.fakes.sandbox

ui: dagster-home  ## the Dagster UI on http://127.0.0.1:3000
	MAGSEV_TICKERS=$${MAGSEV_TICKERS:-$(DEMO_TICKERS)} $(BIN)/dagster dev -w workspace.yaml

dashboards: $(STAMP)  ## regenerate grafana/dashboards/*.json from magsev_dagster/grafana (commit the result)
	$(BIN)/python -m magsev_dagster.grafana.dashboard

provision: $(STAMP)  ## AWS: bucket, Glue database + crawler role + crawler, Athena workgroup, results expiry (idempotent); PROVISION_ARGS="--print-policy" prints the runs' IAM policy
	$(BIN)/python -m magsev_dagster.provision $(PROVISION_ARGS)

clean:
	rm -rf $(VENV) .dagster_home data
