# Two commands matter: `make run` (set up, index the demo photos, serve on :45678) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 45678
HOST ?= 127.0.0.1
export JINA_OPTOUT_TELEMETRY := 1

.PHONY: setup run library index serve test test-slow test-numerics lint evaluate clean export-deploy

setup: $(VENV)/.installed

# The pinned dependencies, then the project itself, editable (no dependency resolution of its own: the pins rule).
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

run: index serve

# Your own photos in one step: DIR indexed into a workspace of its own (workspace-<folder name>), then served.
LIBRARY_WORKSPACE = workspace-$(notdir $(abspath $(DIR)))
library: setup
	@test -n "$(DIR)" || { echo "usage: make library DIR=/path/to/photos [PORT=$(PORT)]" >&2; exit 2; }
	$(BIN)/python app.py -t index -d folder --data-dir "$(DIR)" --workspace "$(LIBRARY_WORKSPACE)"
	$(BIN)/python app.py -t query-restful --host $(HOST) --port $(PORT) --workspace "$(LIBRARY_WORKSPACE)"

index: setup
	$(BIN)/python app.py -t index -d demo

serve: setup
	$(BIN)/python app.py -t query-restful --host $(HOST) --port $(PORT)

# The suite in two parts, each in pytest processes side by side (tests/run-lanes says how they are split):
# `make test` every test not marked slow (pytest.ini), `make test-slow` the rest; CI runs both.
test: setup
	tests/run-lanes fast

test-slow: setup
	tests/run-lanes slow

# The unit lane under four numeric setups (OpenBLAS kernels, ONNX Runtime graph optimisations, 1 and 2 threads):
# docs/numerics.md says what it covers. About 4 x 7 minutes on 2 cores; not part of make test.
test-numerics: setup
	tests/numerics/run

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

# Container targets (images, deploy-up, deploy-down, deploy-test, base-image): deploy/deploy.mk.
-include deploy/deploy.mk
