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

# Three pytest processes (lanes) side by side; any non-zero exit of any of them fails the target, 5 (no tests
# collected) included. No flow is ever forked from a pytest process: every flow is a subprocess (fork + exec,
# tests/servers.py), because a process that has run an OpenMP computation (torch, FAISS) hangs the Jina executors it
# forks afterwards (libgomp is not fork-safe); so the split below is only there to balance the lanes (flow starts
# leave a core idle now and then: three lanes keep both cores busy).
# Lane 1: tests/e2e + tests/integration, less LANE2_MODULES and LANE3_MODULES: one demo index (`app.py -t index`) and
#   one query server (`app.py -t query-restful`) serve the whole lane (tests/conftest.py).
# Lane 2: tests/unit (torch in-process, no flows) with two CLI modules that share nothing with lane 1, and the crash
#   tests that need no demo index (CRASH_STOP_TESTS).
# Lane 3: the model-backend modules (model weights written once, one workspace indexed per model) and the other
#   crash tests (which build a demo index of their own here).
# Lanes 2 and 3 print their output once lane 1 has finished. TEST_PORT_LANE gives each lane its own blocks of ports
# for the flows it starts: their gateways and the ports Jina picks inside them (tests/servers.py).
LANE2_MODULES = tests/e2e/test_hostile_dataset.py tests/e2e/test_cli_evaluate_flickr.py
LANE3_MODULES = tests/e2e/test_cli_models.py tests/integration/test_model_backends_flow.py \
	tests/e2e/test_crash_resume.py
CRASH_STOP_TESTS = tests/e2e/test_crash_resume.py::test_a_stop_signal_ends_every_process_of_an_index_run_and_the_run_resumes
PYTEST = $(BIN)/python -m pytest -q

test: setup
	@lanes=$$(mktemp -d); \
	( TEST_PORT_LANE=2 $(PYTEST) tests/unit $(LANE2_MODULES) $(CRASH_STOP_TESTS) > $$lanes/2 2>&1; \
	  echo $$? > $$lanes/2.status ) & \
	( TEST_PORT_LANE=3 $(PYTEST) --durations=5 $(LANE3_MODULES) --deselect $(CRASH_STOP_TESTS) > $$lanes/3 2>&1; \
	  echo $$? > $$lanes/3.status ) & \
	status=0; \
	TEST_PORT_LANE=1 $(PYTEST) --durations=15 tests/e2e tests/integration $(addprefix --ignore=,$(LANE2_MODULES) $(LANE3_MODULES)) \
	  || status=1; \
	wait; \
	echo "--- lane 2: tests/unit $(LANE2_MODULES) $(CRASH_STOP_TESTS) ---"; cat $$lanes/2; \
	echo "--- lane 3: $(LANE3_MODULES) less $(CRASH_STOP_TESTS) ---"; cat $$lanes/3; \
	for lane in 2 3; do [ "$$(cat $$lanes/$$lane.status 2>/dev/null)" = 0 ] || status=1; done; \
	rm -rf $$lanes; \
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

# Container targets (images, deploy-up, deploy-down, deploy-test, base-image): deploy/deploy.mk.
-include deploy/deploy.mk
