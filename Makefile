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

# Four pytest processes in two lanes that run side by side (2 cores: flow starts are mostly one busy core each).
# Any non-zero exit of any of them fails the target, 5 (no tests collected) included.
# Lane 1: tests/e2e + tests/integration in ONE process. No flow is forked from it: every flow is a subprocess
#   (fork + exec, tests/servers.py), because a process that has run an OpenMP computation (torch, FAISS) hangs the
#   Jina executors it forks afterwards (libgomp is not fork-safe). One demo index (`app.py -t index`) and one query
#   server (`app.py -t query-restful`) serve the whole run (tests/conftest.py).
# Lane 2, one after the other: the two model-backend modules, which fork flows in-process after running torch (one
#   process each), then tests/unit (torch in-process, no flows) together with two CLI modules that share nothing
#   with lane 1 and only start subprocesses (LANE2_MODULES, moved there to balance the lanes). Its output is
#   printed once lane 1 has finished.
OWN_PROCESS_MODULES = tests/e2e/test_cli_models.py tests/integration/test_model_backends_flow.py
LANE2_MODULES = tests/e2e/test_hostile_dataset.py tests/e2e/test_cli_evaluate_flickr.py
PYTEST = $(BIN)/python -m pytest -q

test: setup
	@lane=$$(mktemp -d); \
	( status=0; \
	  for module in $(OWN_PROCESS_MODULES); do $(PYTEST) $$module || status=1; done; \
	  $(PYTEST) tests/unit $(LANE2_MODULES) || status=1; \
	  echo $$status > $$lane/status ) > $$lane/output 2>&1 & \
	status=0; \
	$(PYTEST) --durations=15 tests/e2e tests/integration $(addprefix --ignore=,$(OWN_PROCESS_MODULES) $(LANE2_MODULES)) \
	  || status=1; \
	wait; \
	echo "--- lane 2: $(OWN_PROCESS_MODULES) tests/unit $(LANE2_MODULES) ---"; cat $$lane/output; \
	[ "$$(cat $$lane/status 2>/dev/null)" = 0 ] || status=1; \
	rm -rf $$lane; \
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
