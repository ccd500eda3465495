# hanota: make targets for developers, test engineers and CI.
# Every target that needs Python sets up .venv/ first (pinned requirements.txt).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HANOTA := $(BIN)/hanota
STAMP  := $(VENV)/.hanota-setup
BOARD  ?= sim-ppmid
PORT   ?=
FIRMWARE ?=
PYTEST_ARGS ?=
FUZZ_SECONDS ?= 60
SWEEP_ARGS ?=
FAULTS_ARGS ?=
LAB_BOARDS ?= 4
LAB_EXPORTERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help setup demo test test-quick lint bench sweep faults fuzz lab flash deploy sim monitor lock clean

help: ## list the targets
	@echo "hanota make targets:"
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  \1|\2/' | awk -F'|' '{printf "  %-12s %s\n", $$1, $$2}'
	@echo "variables: BOARD=$(BOARD) PORT=<serial port> FIRMWARE=<micropython .bin> PYTEST_ARGS=..."

setup: $(STAMP) ## create .venv/ with pinned dependencies and the hanota command

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements.txt
	@# pyserial and labgrid's fork pyserial-labgrid both install `serial/`: the fork's files last
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps --force-reinstall pyserial-labgrid==3.5.0.2
	$(BIN)/python -m pip install --disable-pip-version-check -q --no-deps -e .
	@touch $(STAMP)
	@echo "setup: $(HANOTA) ready"

demo: $(STAMP) ## the whole update end to end on two simulated boards
	$(HANOTA) demo

test: $(STAMP) ## run the test suite (unit, MicroPython, sim-board end to end)
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check host_tools firmware tests
	$(BIN)/ruff format --check host_tools firmware tests

bench: $(STAMP) ## measure speed, memory and fleet figures; writes docs/benchmarks.md
	$(HANOTA) bench --out docs/benchmarks.md

sweep: $(STAMP) ## power-cut sweep: cut at every flash op of fragmented updates (SWEEP_ARGS=...)
	$(BIN)/python -m hanota.sweep $(SWEEP_ARGS)

faults: $(STAMP) ## link fault campaign on sim boards (FAULTS_ARGS=--quick for 25 s)
	$(BIN)/python -m hanota.faults $(FAULTS_ARGS)

fuzz: $(STAMP) ## run each fuzz target for FUZZ_SECONDS (installs atheris)
	$(BIN)/python -m pip install --disable-pip-version-check -q -r requirements-fuzz.txt
	$(BIN)/python -m hanota.fuzz --seconds $(FUZZ_SECONDS)

lab: $(STAMP) ## local labgrid lab: coordinator, LAB_EXPORTERS hosts, LAB_BOARDS sim boards, a place each
	$(HANOTA) lab up --boards $(LAB_BOARDS) --exporters $(LAB_EXPORTERS) --dir build/lab

flash: $(STAMP) ## BOARD=... [PORT=... FIRMWARE=...]: write MicroPython, provision, deploy
	$(HANOTA) board flash --board $(BOARD) $(if $(PORT),--port $(PORT)) $(if $(FIRMWARE),--firmware $(FIRMWARE))

deploy: $(STAMP) ## BOARD=... PORT=...: redeploy the agent only (mpremote)
	$(HANOTA) board deploy --board $(BOARD) $(if $(PORT),--port $(PORT))

sim: $(STAMP) ## BOARD=sim-...: run a simulated board in the foreground
	$(HANOTA) sim run build/sim/$(BOARD) --board $(BOARD) --create

monitor: $(STAMP) ## PORT=...: show a board's console
	$(HANOTA) board monitor $(if $(PORT),--port $(PORT),--board $(BOARD))

lock: ## regenerate requirements.txt from requirements.in
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements.in
	(echo "# Full pinned set for a fresh machine; generated from requirements.in by 'make lock'."; \
	 $(BIN)/python -m pip freeze --exclude-editable) > requirements.txt

clean: ## remove build outputs (keeps .venv)
	rm -rf build .pytest_cache
