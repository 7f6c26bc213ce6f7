# Two commands matter: `make run` (set up, index the demo photos, serve on :45678) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 45678
HOST ?= 127.0.0.1
export JINA_OPTOUT_TELEMETRY := 1

.PHONY: setup run index serve test lint evaluate clean export-deploy

setup: $(VENV)/.installed

# The pinned dependencies, then the project itself, editable (no dependency resolution of its own: the pins rule).
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

run: index serve

index: setup
	$(BIN)/python app.py -t index -d demo

serve: setup
	$(BIN)/python app.py -t query-restful --host $(HOST) --port $(PORT)

# Each end-to-end and integration module runs in a pytest process of its own: a process that has run an OpenMP
# computation (torch, FAISS) hangs the Jina executors it forks afterwards, so one module must not poison the next.
TEST_MODULES = $(sort $(wildcard tests/e2e/test_*.py)) $(sort $(wildcard tests/integration/test_*.py))

test: setup
	@status=0; \
	for module in $(TEST_MODULES); do $(BIN)/python -m pytest -q $$module || status=1; done; \
	$(BIN)/python -m pytest -q tests/unit || status=1; \
	exit $$status

# ruff (pyflakes, pycodestyle, import order, bugbear, pyupgrade) and mypy over the product code.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

evaluate: setup
	$(BIN)/python app.py -t evaluate -d demo --output results/demo-offline.json

clean:
	rm -rf workspace

export-deploy: setup
	$(BIN)/python deploy/export.py
