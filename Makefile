# agentrail developer loop. Two commands matter (see README):
#   make demo   set everything up, synthesize the app, run it locally and take the scripted tour
#   make test   set everything up and run the whole test suite
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# jsii needs a supported Node; package.json brings Node 24 (end of life 2028-04-30) into node_modules/.bin.
export PATH := $(CURDIR)/node_modules/.bin:$(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export SAM_CLI_TELEMETRY := 0
PATTERNS ?=
PORT ?= 3000
PYTEST_ARGS ?=
# Extra options of make test-evals, e.g. EVAL_ARGS="--json evals-report.json --junit evals-junit.xml".
EVAL_ARGS ?=
# How far ahead test-time-travel moves the clock (more than a year, so yearly expiries show), and what it runs.
TRAVEL_DAYS ?= 400
TRAVEL_TIERS ?= tests/unit tests/integration
# The dependencies layer: requirements.in (top-level pins) -> requirements.lock (every package, with hashes),
# resolved for the functions' Lambda runtime. LOCK_ARGS=--upgrade moves every version to the newest that fits.
LAYER_DEPENDENCIES := layers/agentrail_layers/dependencies
# The optional ASGI layer (mangum, FastAPI): resolved against the dependencies layer's versions, and locked without
# the packages that layer ships already (each package is in exactly one layer).
LAYER_ASGI := layers/agentrail_layers/asgi
LAMBDA_PYTHON := 3.13
LOCK_ARGS ?=
# checkov (the infra tier's policy scan) in a venv of its own: it pins boto3 and packaging older than ours.
# requirements.in (the pin) -> requirements.lock (every package, with hashes), resolved for this host's Python.
CHECKOV_LOCK := tests/infra/checkov
CHECKOV_VENV := .checkov
CHECKOV_PYTHON := 3.11

.PHONY: help setup lock checkov-lock demo local synth test test-lint test-unit test-evals test-integration test-infra test-e2e test-time-travel bench openapi schemas plan-calls clean

help:
	@echo "make demo    set up, synthesize, deploy into local mode (moto, no Docker) and run the tour"
	@echo "make local   same, then keep serving on 127.0.0.1:$(PORT) until Ctrl-C"
	@echo "make test    set up and run the whole test suite (lint and types, unit, the demo evals, integration, infra, e2e, then unit and integration $(TRAVEL_DAYS) days ahead)"
	@echo "make synth   cdk synth (offline, no Docker)"
	@echo "make bench   run benchmarks/ and print the figures"
	@echo "make plan-calls  measure the planner's call counts in local mode, then regenerate the README's example plan"
	@echo "make lock    re-resolve the dependencies layer's lock (LOCK_ARGS=--upgrade to move every version)"
	@echo "make checkov-lock  re-resolve checkov's hashed lock (LOCK_ARGS=--upgrade to move every version)"

$(VENV)/.installed: requirements.txt requirements-dev.txt $(LAYER_DEPENDENCIES)/requirements.in $(LAYER_DEPENDENCIES)/constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed

# pip checks every hash of the lock; the infra tier finds checkov at $(CHECKOV_VENV)/bin/checkov.
$(CHECKOV_VENV)/.installed: $(CHECKOV_LOCK)/requirements.lock
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --require-hashes --no-deps -r $(CHECKOV_LOCK)/requirements.lock
	touch $@

# uv resolves for another platform (pip cannot); its hashes cover every wheel of each release, so the one
# lock serves arm64 and x86_64 functions alike. constraints.txt is the lock without hashes: the venv
# (any Python >= 3.11, any platform) installs the same versions, and pip checks no hashes there.
lock: setup
	cd $(LAYER_DEPENDENCIES) && $(BIN)/uv pip compile --quiet --generate-hashes \
		--python-platform aarch64-manylinux_2_28 --python-version $(LAMBDA_PYTHON) \
		--custom-compile-command "make lock" $(LOCK_ARGS) requirements.in -o requirements.lock
	{ echo "# The versions of requirements.lock without hashes, so the venv installs them too. Written by make lock."; \
		sed -n 's/^\([A-Za-z0-9._-]*==[^ ]*\).*/\1/p' $(LAYER_DEPENDENCIES)/requirements.lock; } > $(LAYER_DEPENDENCIES)/constraints.txt
	cd $(LAYER_ASGI) && $(BIN)/uv pip compile --quiet --generate-hashes \
		--python-platform aarch64-manylinux_2_28 --python-version $(LAMBDA_PYTHON) \
		--custom-compile-command "make lock" $(LOCK_ARGS) -c ../dependencies/constraints.txt \
		$$(sed -n 's/^\([A-Za-z0-9._-]*\)==.*/--no-emit-package \1/p' ../dependencies/constraints.txt) \
		requirements.in -o requirements.lock

checkov-lock: setup
	cd $(CHECKOV_LOCK) && $(BIN)/uv pip compile --quiet --generate-hashes --python-version $(CHECKOV_PYTHON) \
		--custom-compile-command "make checkov-lock" $(LOCK_ARGS) requirements.in -o requirements.lock

demo: setup
	$(BIN)/agentrail local --tour $(if $(PATTERNS),--patterns $(PATTERNS))

local: setup
	$(BIN)/agentrail local --port $(PORT) $(if $(PATTERNS),--patterns $(PATTERNS))

synth: setup
	cdk synth --no-notices --quiet $(if $(PATTERNS),-c patterns=$(PATTERNS))

# Cheapest tier first. pytest exits 5 when a tier collects no tests; that is
# reported, not treated as a failure of the tier.
define run_tier
	@echo "== $(1) =="; \
	$(BIN)/python -m pytest $(1) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "($(1): no tests collected)"; rc=0; fi; \
	exit $$rc
endef

test: setup $(CHECKOV_VENV)/.installed test-lint test-unit test-evals test-integration test-infra test-e2e test-time-travel

# The gates that read the code without running it: ruff's lint rules and format, mypy's types ([tool.ruff], [tool.mypy]).
test-lint: setup
	@echo "== lint, format and types =="
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-unit: setup
	$(call run_tier,tests/unit)
test-integration: setup
	$(call run_tier,tests/integration)
# The demo agents' eval datasets (evals/<agent>/*.jsonl), in process on the local model and judge: the eval gate.
EVAL_AGENTS ?= agentrail_runtime.demo:definition agentrail_runtime.demo_team:billing agentrail_runtime.demo_team:technical \
	agentrail_runtime.demo_team:account agentrail_runtime.demo_team:research_worker
test-evals: setup
	@echo "== evals (demo agents, local model) =="
	$(BIN)/agentrail eval --no-progress $(foreach agent,$(EVAL_AGENTS),--agent $(agent)) $(EVAL_ARGS)
test-infra: setup $(CHECKOV_VENV)/.installed
	$(call run_tier,tests/infra)
# The console's browser tests drive Debian's chromium with Playwright (Playwright's own browser download needs a
# network this project does not assume): installed here when missing, as root or through sudo.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
$(CHROMIUM):
	$(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium

test-e2e: setup $(CHROMIUM)
	$(call run_tier,tests/e2e)

# The unit and integration tiers again, with the clock of pytest and of every process it starts
# (xdist workers, local mode's functions) moved TRAVEL_DAYS ahead by libfaketime. Monotonic clocks
# stay real, so timeouts and sleeps keep their length. tests/conftest.py stops the run unless a
# child started as the suite starts it really sees the moved clock.
test-time-travel: setup
	@echo "== $(TRAVEL_TIERS), clock moved $(TRAVEL_DAYS) days ahead =="
	eval "$$($(BIN)/python-libfaketime)" && \
	FAKETIME="+$(TRAVEL_DAYS)d" FAKETIME_DONT_FAKE_MONOTONIC=1 AGENTRAIL_TIME_TRAVEL_DAYS=$(TRAVEL_DAYS) \
	$(BIN)/python -m pytest $(TRAVEL_TIERS) -n 2 $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m benchmarks

openapi: setup
	$(BIN)/agentrail openapi --output openapi.json

# API Gateway's request models, generated from the runtime's pydantic models (tests/unit fails while they are stale).
schemas: setup
	$(BIN)/python -m agentrail_runtime.api.gateway_models constructs/agentrail_constructs/request_models.json

# The planner's call counts, measured in local mode (never typed), then the README's example plan and chart.
plan-calls: setup
	$(BIN)/python -m benchmarks --only plan_calls
	$(BIN)/python -m agentrail_cli.plan.example README.md

clean:
	rm -rf cdk.out .agentrail .pytest_cache
