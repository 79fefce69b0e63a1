# Two commands on a fresh machine: `make demo` runs Bastion's demo, `make test` passes the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NPM_SERVERS := tests/e2e/npm/node_modules/.package-lock.json
CONFORMANCE := tools/conformance/node_modules/.package-lock.json

.PHONY: demo test lint typecheck unit clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The official MCP servers from npm that the end-to-end tests run behind Bastion (pinned by the lock file).
$(NPM_SERVERS): tests/e2e/npm/package-lock.json
	npm ci --prefix tests/e2e/npm --no-audit --no-fund

# The official MCP conformance suite and the Node 22 it runs on (pinned by the lock file).
$(CONFORMANCE): tools/conformance/package-lock.json
	npm ci --prefix tools/conformance --no-audit --no-fund

demo: $(STAMP)
	$(BIN)/bastion demo

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/pyright src tests

unit: $(STAMP) $(NPM_SERVERS) $(CONFORMANCE)
	$(BIN)/pytest -q

test: lint typecheck unit

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
