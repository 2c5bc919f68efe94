# The few commands a newcomer needs. `make demo` and `make test` set everything up on a fresh
# machine (virtualenv, Python packages, Kafka jars, FerretDB binary) and leave nothing running.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# The hash-locked dependencies (`make lock` writes them from pyproject.toml): dev.txt is what
# `make install` installs (the project, its harness and train extras, the dev and build groups);
# runtime.txt is the services' own, for the container image (deploy/Dockerfile).
LOCK   := requirements/dev.txt
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)
SUITES := tests/unit tests/service tests/project tests/integration tests/e2e tests/faults

.PHONY: help install demo demo-serve test test-fast test-faults stack-up stack-down stack-status docs lint lock clean

help:
	@echo "make demo          run the whole system on the article's five cases"
	@echo "make demo-serve    the same, then keep it running to click through the workbench (Ctrl-C)"
	@echo "make test          make lint, then all suites (unit, service, project, integration, e2e,"
	@echo "                   the fault drill's short form) on the real stack"
	@echo "make test-fast     unit, service and project suites only (no Kafka, no store)"
	@echo "make test-faults   the fault drill's long form: 1,000 appeals, every fault twice (~15 min)"
	@echo "make stack-up      start the local Kafka and FerretDB (stack-down, stack-status)"
	@echo "make docs          regenerate docs/asyncapi/*.json from the apps"
	@echo "make lint          ruff (lint and format) and mypy; make test runs it first"
	@echo "make lock          after changing pyproject.toml's dependencies: the hash-locked"
	@echo "                   requirements/*.txt again, then install them"

# Every package comes from the lock, checked against its hashes; then fengqiao itself, built with
# the locked setuptools (no build isolation, so nothing unhashed is fetched) and without deps.
$(STAMP): pyproject.toml $(LOCK)
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required: install python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/fengqiao demo

demo-serve: install
	$(BIN)/fengqiao demo --serve

test: install lint
	$(BIN)/python -m pytest $(SUITES)

test-fast: install
	$(BIN)/python -m pytest tests/unit tests/service tests/project

# kill -9 of each service, the broker down 20 s, the store down 30 s, a service started while the
# broker is down, each twice under 1,000 signed Weibo pushes; a table of the figures at the end.
test-faults: install
	$(BIN)/python -m pytest tests/faults --faults long

stack-up: install
	$(BIN)/fengqiao stack up

stack-down: install
	$(BIN)/fengqiao stack down

stack-status: install
	$(BIN)/fengqiao stack status

docs: install
	@for s in intake router tracker notifier; do \
	  env -u FENGQIAO_KAFKA_BOOTSTRAP -u FENGQIAO_MONGO_URI \
	    $(BIN)/faststream docs gen --factory fengqiao.services.$$s.app:create_asyncapi -o docs/asyncapi/$$s.json; \
	done

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# After changing pyproject.toml's dependencies (or to take upgrades: `make lock UPGRADE=--upgrade`):
# resolve them again into the hash-locked requirements/*.txt, keeping every version the locks
# already pin unless something new needs another, then install the result. For every platform
# (--universal) and Python >= 3.11. Commit pyproject.toml and both locks together.
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --quiet --custom-compile-command "make lock" $(UPGRADE)

lock: install
	$(UV_COMPILE) --extra harness --extra train --group dev --group build -o requirements/dev.txt
	$(UV_COMPILE) --group build -c requirements/dev.txt -o requirements/runtime.txt
	$(MAKE) install

clean:
	-$(BIN)/fengqiao stack down
	rm -rf $(VENV) .cache
