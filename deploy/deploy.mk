# Container targets, included by the Makefile. docs/deployment.md says what each does and what was measured.
#   make images [ENGINE=podman|docker] [PYTHON_IMAGE=...] [TORCH_INDEX=] [TAG=latest] [BUILD_FLAGS=...]
#   make base-image      # Python 3.11 base image from Debian's packages, for a machine without an image registry
#   make deploy-up       # compose up, index the demo into the shared volume if it is empty, wait for a search
#   make deploy-down     # stop it, keep the volume
#   make deploy-test     # the end-to-end container test (tests/deploy/), builds the images first (cached layers)
#   make kube-play       # podman kube play of the exported encoder and indexer Deployments, each answers jina ping
# PYTHON_IMAGE and TORCH_INDEX are passed as build arguments only when given, so the Dockerfiles' defaults (the
# official slim image, the CPU torch index) hold otherwise; `TORCH_INDEX=` (empty) means pip's default index.

.PHONY: images base-image deploy-up deploy-down deploy-test compose-tool kube-play

# docker when its daemon answers, else podman when installed (a docker CLI without a daemon does not count).
ENGINE ?= $(shell if docker info >/dev/null 2>&1; then echo docker; elif command -v podman >/dev/null; then echo podman; else echo docker; fi)
TAG ?= latest
BASE_IMAGE ?= localhost/python:3.11-bookworm
BUILD_FLAGS ?=
PODMAN_COMPOSE_VERSION := 1.6.0
COMPOSE ?= $(if $(filter docker,$(ENGINE)),docker compose,$(BIN)/podman-compose)

BUILD_ARGS := $(if $(filter-out undefined,$(origin PYTHON_IMAGE)),--build-arg PYTHON_IMAGE=$(PYTHON_IMAGE)) \
	$(if $(filter-out undefined,$(origin TORCH_INDEX)),--build-arg TORCH_INDEX=$(TORCH_INDEX))
BUILD := $(ENGINE) build $(BUILD_FLAGS) $(BUILD_ARGS)

# Encoders first: the index job's image is built FROM the image encoder's.
images:
	$(BUILD) -f deploy/Dockerfile.encoder --build-arg TOWER=image -t crossmodal-img-emb:$(TAG) .
	$(BUILD) -f deploy/Dockerfile.encoder --build-arg TOWER=text -t crossmodal-txt-emb:$(TAG) .
	$(BUILD) -f deploy/Dockerfile.pods --target gateway -t crossmodal-gateway:$(TAG) .
	$(BUILD) -f deploy/Dockerfile.pods --target indexer -t crossmodal-indexer:$(TAG) .
	$(BUILD) -f deploy/Dockerfile.pods --target index --build-arg ENCODER_IMAGE=crossmodal-img-emb:$(TAG) \
		-t crossmodal-index:$(TAG) .

base-image:
	ENGINE=$(ENGINE) deploy/base-image.sh $(BASE_IMAGE)

# podman-compose, pinned (the version the container test ran with), into the venv; --no-deps: its two
# dependencies (PyYAML, python-dotenv) are already there at the product's pins.
$(BIN)/podman-compose: | $(VENV)/.installed
	$(BIN)/pip install --quiet --no-deps podman-compose==$(PODMAN_COMPOSE_VERSION)

compose-tool: $(if $(filter docker,$(ENGINE)),,$(BIN)/podman-compose)

deploy-up: compose-tool setup
	$(BIN)/python deploy/compose.py --engine $(ENGINE) --compose "$(COMPOSE)" --port $(PORT) up

deploy-down: compose-tool setup
	$(BIN)/python deploy/compose.py --engine $(ENGINE) --compose "$(COMPOSE)" --port $(PORT) down

deploy-test: images compose-tool setup
	DEPLOY_ENGINE=$(ENGINE) DEPLOY_COMPOSE="$(COMPOSE)" DEPLOY_PORT=$(PORT) $(BIN)/python -m pytest -q -p no:cacheprovider \
		-o testpaths=tests/deploy --durations=0 tests/deploy

# Needs the images and an indexed crossmodal-workspace volume (make deploy-up); podman only (docs/deployment.md).
kube-play: setup
	$(BIN)/python deploy/kube_play.py --engine $(ENGINE)
