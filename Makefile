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

.PHONY: help install build lab test lint pytest jest ui-test bench record clean slurm-up slurm-down sge-up sge-down

help:
	@echo "make help       - this list"
	@echo "make install    - set up .venv: JupyterLab, node packages, the built extension, and this"
	@echo "                  project editable with its test and dev extras"
	@echo "make build      - build the production labextension (when a source under src/,"
	@echo "                  style/ or schema/ changed; jest specs do not count)"
	@echo "make lab        - install, then start JupyterLab with the extension (LAB_ARGS=...)"
	@echo "make test       - install, then run everything below in turn and fail if any failed:"
	@echo "                  make lint, make jest, make pytest (which starts the dev Slurm and"
	@echo "                  Grid Engine clusters it needs), make ui-test (Galata)"
	@echo "make lint       - shellcheck, ruff check + ruff format --check, mypy --strict,"
	@echo "                  eslint/prettier"
	@echo "make jest       - the TypeScript unit tests (src/__tests__)"
	@echo "make pytest     - every Python test: the server extension's API against a real server,"
	@echo "                  API fuzzing from /openapi.json, the local cluster, restarts, and the"
	@echo "                  Slurm (CLI, SSH, slurmrestd), Grid Engine and ACTIVATE backends"
	@echo "                  against the dev clusters it starts (dev/slurm, dev/sge) when they are"
	@echo "                  not up; plus the wheel check (installs the built wheel in a fresh venv)"
	@echo "                  and, as root, two real accounts (privacy; a real JupyterHub, whose"
	@echo "                  proxy is installed from dev/hub/package.json on first use)"
	@echo "make ui-test    - Galata end-to-end tests in Debian's Chromium (installs it if missing)"
	@echo "make bench      - run the benchmarks in bench/ (API overhead, poll stall at 10,000 jobs; on the"
	@echo "                  dev Slurm cluster: submit overhead against bare sbatch, the HTTP floor and"
	@echo "                  jupyterlab-slurm, scheduler load at 1k/10k jobs, rate limiting, Client.map)"
	@echo "make record     - record the backend contract test against the dev Slurm and Grid"
	@echo "                  Engine clusters (root, Debian) into tests/data/recordings/, then"
	@echo "                  check the replay (RECORD=<pytest -k expression> for a subset)"
	@echo "make slurm-up   - start the dev Slurm cluster (dev/slurm); make slurm-down stops it"
	@echo "make slurm-down - stop the dev Slurm cluster"
	@echo "make sge-up     - start the dev Grid Engine cluster (dev/sge); make sge-down stops it"
	@echo "make sge-down   - stop the dev Grid Engine cluster"
	@echo "make clean      - remove build output (labextension, lib, dist, build)"

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

# The built labextension (what the wheel ships). Jest specs and their fixtures (__tests__) are
# not part of it (tsconfig.json excludes them): editing one must not trigger a production build.
LABEXT_SOURCES := $(shell find src style schema -name __tests__ -prune -o -type f -print 2>/dev/null)
$(LABEXT): node_modules/.yarn-state.yml $(LABEXT_SOURCES) tsconfig.json
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

# Every shell script: the dev clusters' scripts, the Galata runner, CI's entry point, the local job
# wrapper (.shellcheckrc makes shellcheck follow what they source).
SHELL_SCRIPTS := $(shell find dev ui-tests parallelworks_lab .ci -name node_modules -prune -o \
	-type f \( -name '*.sh' -o -path .ci/run \) -print 2>/dev/null | sort)

lint: install
	$(BIN)/shellcheck $(SHELL_SCRIPTS)
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

# Run as modules from the repository root, so they import tests.support without path tricks.
bench: install
	$(BIN)/python -m bench.bench_api; a=$$?; $(BIN)/python -m bench.bench_poll; b=$$?; \
	$(BIN)/python -m bench.bench_slurm; exit $$((a || b || $$?))

# The replayed contract test's fixtures (tests/data/recordings/): the live contract test with
# PWLAB_RECORD=1, in a minimal environment (job output that prints the environment is stored),
# then the replay of what was recorded. The dev clusters are started when they are not up.
RECORD ?= not local
record: install
	env -i PATH="$(BIN):/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
		HOME="$$HOME" LANG=C.UTF-8 PWLAB_RECORD=1 \
		$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_contract.py -k "$(RECORD)"
	$(BIN)/python -m pytest -q tests/test_contract_replay.py tests/test_replay.py

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
