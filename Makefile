# The few commands a newcomer needs. `make demo` and `make test` set everything up on a fresh
# machine (virtualenv, Python packages, Kafka jars, FerretDB binary) and leave nothing running.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
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

$(STAMP): pyproject.toml constraints.txt
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is required: install python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
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

# Record the exact versions in use (after changing pyproject.toml's dependencies).
lock: install
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	-$(BIN)/fengqiao stack down
	rm -rf $(VENV) .cache
