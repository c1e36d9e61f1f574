# parallelworks-lab: `make lab` runs JupyterLab with the extension, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
JLPM := $(BIN)/jlpm
STAMP := $(VENV)/.installed-stamp
PROJECT_STAMP := $(VENV)/.project-stamp
LABEXT := parallelworks_lab/labextension/static/style.js
# Scripts in package.json call jlpm and jupyter: use the venv's.
export PATH := $(BIN):$(PATH)
LAB_ARGS ?=
# JupyterLab refuses to start as root unless told it is fine (containers, CI machines).
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: help install build lab test lint pytest jest ui-test wheel-check bench clean slurm-up slurm-down sge-up sge-down

help:
	@echo "make lab    - set up .venv, build the extension, start JupyterLab"
	@echo "make test   - set up what the tests need and run every test (lint, pytest, jest, wheel)"
	@echo "make bench  - run the benchmarks in bench/"

# Python deps (and the JupyterLab toolchain that provides jlpm), reinstalled when they change.
$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "jupyterlab>=4.6,<5" "hatchling>=1.5" \
		"hatch-jupyter-builder>=0.8" "hatch-nodejs-version>=0.3.2" editables setuptools wheel
	touch $@

node_modules/.yarn-state.yml: package.json yarn.lock $(STAMP)
	$(JLPM) install --immutable
	touch $@

# The built labextension (what the wheel ships).
$(LABEXT): node_modules/.yarn-state.yml $(shell find src style schema -type f 2>/dev/null) tsconfig.json
	rm -rf parallelworks_lab/labextension
	$(JLPM) build:prod

build: $(LABEXT)

# The project itself, editable, with its test and dev extras. The labextension is linked into
# the venv's share/jupyter so `jupyter lab` loads the freshly built one.
$(PROJECT_STAMP): $(LABEXT) pyproject.toml $(STAMP)
	SKIP_JUPYTER_BUILDER=1 $(BIN)/python -m pip install --quiet --no-build-isolation -e ".[test,dev]"
	$(BIN)/jupyter labextension develop --overwrite . >/dev/null
	touch $@

install: $(PROJECT_STAMP)

lab: install
	$(BIN)/jupyter lab $(ROOT_FLAG) $(LAB_ARGS)

lint: install
	$(BIN)/ruff check parallelworks_lab tests bench
	$(BIN)/ruff format --check parallelworks_lab tests bench
	$(BIN)/mypy parallelworks_lab
	$(JLPM) lint:check

pytest: install
	$(BIN)/python -m pytest -ra tests

jest: install
	$(JLPM) test

# Galata end-to-end tests in Debian's Chromium (installs it when missing).
ui-test: install
	bash ui-tests/run.sh

test: install
	@status=0; \
	$(MAKE) --no-print-directory lint || status=1; \
	$(MAKE) --no-print-directory jest || status=1; \
	$(MAKE) --no-print-directory pytest || status=1; \
	$(MAKE) --no-print-directory ui-test || status=1; \
	if [ $$status -ne 0 ]; then echo "make test: FAILED (see above)"; fi; \
	exit $$status

bench: install
	$(BIN)/python bench/bench_api.py; a=$$?; $(BIN)/python bench/bench_slurm.py; exit $$((a || $$?))

slurm-up:
	bash dev/slurm/up.sh

slurm-down:
	bash dev/slurm/down.sh

sge-up:
	bash dev/sge/up.sh

sge-down:
	bash dev/sge/down.sh

clean:
	rm -rf parallelworks_lab/labextension lib tsconfig.tsbuildinfo dist build
