# aqpgen -- make venv | tables | test | verify | wheel | bench | report | experiment |
#           reproduce | check-unpinned | lock | clean
# Everything runs inside .venv (created from $(PY) when missing; `pip install -e .[dev]` again
# only when pyproject.toml, setup.py, constraints.txt or the C gather changes).  Every install
# takes the versions pinned in constraints.txt (the build environment of the committed tables;
# optional packages such as torch are installed under the same constraints, so they cannot move
# numpy or scipy).  After `make venv` the command line is
# .venv/bin/aqpgen (or `source .venv/bin/activate` and then `aqpgen`).

SHELL   := /bin/bash
.SHELLFLAGS := -o pipefail -c
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.aqpgen-installed
JOBS    ?= 2
SPEC    ?= tables/tables.toml
LOCK    := constraints.txt
PIN     := -c $(LOCK)
# Build only these tables (space-separated names; empty = every table in $(SPEC)).
ONLY    ?=
# V=1: a line per finished K and every unavailable row.  ALLOW_DIRTY=1: build tables/ from a
# tree with uncommitted changes.  DASK=local or DASK=tcp://host:8786: run the solves on Dask.
V       ?= 0
ALLOW_DIRTY ?= 0
# ALLOW_UNLOCKED=1: build tables/ from an environment that does not match constraints.txt.
ALLOW_UNLOCKED ?= 0
DASK    ?=
# Set WITH_TORCH=1 / WITH_JAX=1 to try installing torch / jax (their tests are skipped when absent).
# `make test` ends by listing the groups of skipped tests and the switch that runs each;
# AQPGEN_FAIL_ON_SKIP=1 (set by .ci/run) makes any skipped test fail the run.
# WITH_TRL=1 installs trl (transformers, accelerate, datasets) for the real GRPOTrainer tests, only
# once torch is importable (so pip never pulls a CUDA torch).
WITH_TORCH ?= 0
WITH_JAX ?= 0
WITH_TRL ?= 0
# WITH_VERL=1 / WITH_OPENRLHF=1 install verl / OpenRLHF without their (GPU) dependencies, plus what
# the adapters' tests import (after torch, so the CPU torch stays).
WITH_VERL ?= 0
WITH_OPENRLHF ?= 0
VERL_VERSION ?= 0.9.1
OPENRLHF_VERSION ?= 0.11.2
JAX_VERSION ?= 0.10.2
TORCH_VERSION ?= 2.13.0
# pip prints a warning per package for index locations of this machine's pip configuration that do
# not exist ("WARNING: Location 'file:///...' is ignored"); they say nothing about aqpgen: drop them.
PIPQUIET := sed -e "/^WARNING: Location '.*' is ignored/d"
TRL_VERSION ?= 1.16.0
# torch (the CPU build this machine keeps on disk) and TRL, each only when not importable; TRL only
# once torch is, so pip never pulls a CUDA torch.  Used by `make test WITH_TORCH=1 WITH_TRL=1`
# and `make experiment`.
INSTALL_TORCH = { $(BIN)/python -c "import torch" 2>/dev/null \
  || timeout 1800 $(BIN)/python -m pip install --quiet $(PIN) "torch==$(TORCH_VERSION)" 2>&1 | $(PIPQUIET); }
INSTALL_TRL = { $(BIN)/python -c "import trl" 2>/dev/null \
  || { $(BIN)/python -c "import torch" 2>/dev/null \
       && timeout 900 $(BIN)/python -m pip install --quiet $(PIN) "trl==$(TRL_VERSION)" 2>&1 | $(PIPQUIET); }; }

.PHONY: all venv tables test verify wheel bench report experiment reproduce check-unpinned lock clean

all: test

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py $(LOCK)
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "installing aqpgen[dev] into $(VENV) from $(LOCK) (~1 min)"
	@$(BIN)/python -m pip install --quiet $(PIN) -e '.[dev]' 2>&1 | $(PIPQUIET)
	@touch $(STAMP)
	@echo "ready: run $(BIN)/aqpgen --help (or: source $(BIN)/activate; aqpgen --help)"

tables: $(STAMP)
	@$(BIN)/aqpgen build $(SPEC) --jobs $(JOBS) $(foreach t,$(ONLY),--only $(t)) \
	  $(if $(filter 1,$(V)),-v) $(if $(filter 1,$(ALLOW_DIRTY)),--allow-dirty) $(if $(filter 1,$(ALLOW_UNLOCKED)),--allow-unlocked) $(if $(DASK),--dask $(DASK))

test: $(STAMP)
	@if [ "$(WITH_TORCH)" = "1" ]; then $(INSTALL_TORCH) \
	  || echo "note: torch $(TORCH_VERSION) could not be installed; torch tests will be skipped" >&2; \
	fi
	@if [ "$(WITH_JAX)" = "1" ]; then \
	  $(BIN)/python -c "import jax" 2>/dev/null \
	  || timeout 900 $(BIN)/python -m pip install --quiet $(PIN) "jax==$(JAX_VERSION)" 2>&1 | $(PIPQUIET) \
	  || echo "note: jax $(JAX_VERSION) could not be installed; jax tests will be skipped" >&2; \
	fi
	@if [ "$(WITH_TRL)" = "1" ]; then $(INSTALL_TRL) \
	  || echo "note: trl $(TRL_VERSION) could not be installed (or torch is missing); the real GRPOTrainer tests will be skipped" >&2; \
	fi
	@if [ "$(WITH_VERL)" = "1" ]; then \
	  $(BIN)/python -c "import verl.trainer.ppo.core_algos, hydra" 2>/dev/null \
	  || { $(BIN)/python -c "import torch" 2>/dev/null \
	       && timeout 900 $(BIN)/python -m pip install --quiet $(PIN) --no-deps "verl==$(VERL_VERSION)" 2>&1 | $(PIPQUIET) \
	       && timeout 900 $(BIN)/python -m pip install --quiet $(PIN) packaging ray "tensordict==0.10.0" omegaconf hydra-core aiohttp codetiming orjson 2>&1 | $(PIPQUIET); } \
	  || echo "note: verl $(VERL_VERSION) could not be installed; the verl adapter tests will be skipped" >&2; \
	fi
	@if [ "$(WITH_OPENRLHF)" = "1" ]; then \
	  $(BIN)/python -c "import openrlhf.utils.agent" 2>/dev/null \
	  || { $(BIN)/python -c "import torch" 2>/dev/null \
	       && timeout 900 $(BIN)/python -m pip install --quiet $(PIN) --no-deps "openrlhf==$(OPENRLHF_VERSION)" 2>&1 | $(PIPQUIET) \
	       && timeout 900 $(BIN)/python -m pip install --quiet $(PIN) ray pylatexenc aiohttp 2>&1 | $(PIPQUIET); } \
	  || echo "note: openrlhf $(OPENRLHF_VERSION) could not be installed; the OpenRLHF adapter tests will be skipped" >&2; \
	fi
	@$(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

verify: $(STAMP)
	$(BIN)/aqpgen verify tables/*.h5 --jobs $(JOBS)
	@if [ -f tables/kl-minimax.h5 ]; then $(BIN)/aqpgen verify --rate tables/kl-minimax.h5; fi

# The light wheel (numpy + h5py; runtime copies of every table as package data) in dist/: pure
# Python, tagged py3-none-any (the ls fails on any other tag).
wheel: $(STAMP)
	@$(BIN)/python -m pip wheel . --no-deps --no-build-isolation --quiet -w dist 2>&1 | $(PIPQUIET)
	@ls -l dist/aqpgen-*-py3-none-any.whl

bench: $(STAMP)
	$(BIN)/python bench/run.py

# The trainer experiment (aqpgen experiment): real TRL GRPOTrainer runs on CPU, JOBS processes
# (~20 min with JOBS=2; the page records the measured time), then docs/experiments.json, docs/experiments.md and its figures.
# Installs torch and trl into .venv first when they are missing.
experiment: $(STAMP)
	@$(INSTALL_TORCH) || { echo "error: torch $(TORCH_VERSION) could not be installed" >&2; exit 1; }
	@$(INSTALL_TRL) || { echo "error: trl $(TRL_VERSION) could not be installed" >&2; exit 1; }
	$(BIN)/aqpgen experiment --jobs $(JOBS)

# The committed tables, rebuilt in a fresh virtual environment installed from constraints.txt,
# must equal the committed files byte for byte (exit 1 and the row-by-row difference otherwise).
# ONLY="kl-aqp-rho1 ..." for other tables (each AQP table needs the minimax table of its target
# in the list); NAME:8,16,64 rebuilds only those K and compares rows.  ~3 min for the default.
REPRODUCE ?= power-m1 kl-minimax
reproduce: $(STAMP)
	$(BIN)/python -m aqpgen.build.reproduce --jobs $(JOBS) $(foreach t,$(if $(ONLY),$(ONLY),$(REPRODUCE)),--only $(t))

# The same with the newest released versions (no constraints; WITH="numpy==2.2.6" pins single
# packages): reports which tables would change and by how much, values and metrics, exit 0.
UNPINNED ?= power-m1 kl-minimax kl-aqp-rho1:8,16,64,256
WITH ?=
check-unpinned: $(STAMP)
	$(BIN)/python -m aqpgen.build.reproduce --unpinned --jobs $(JOBS) \
	  $(foreach t,$(if $(ONLY),$(ONLY),$(UNPINNED)),--only $(t)) $(foreach w,$(WITH),--with $(w))

# Re-pin constraints.txt to the newest releases (a deliberate bump: run `make check-unpinned`
# first, then `make venv tables` rebuilds what moved and the diff shows it).
# LOCK_EXTRA: ranges the optional test frameworks need from shared packages (verl's tensordict
# needs pyvers, which needs packaging < 26), so `make test WITH_VERL=1` installs under the lock.
LOCK_EXTRA ?= 'packaging<26'
lock:
	rm -rf .lock-venv && $(PY) -m venv .lock-venv
	.lock-venv/bin/python -m pip install --quiet -e '.[dev]' $(LOCK_EXTRA) 2>&1 | $(PIPQUIET)
	{ sed -n '/^#/p' $(LOCK); .lock-venv/bin/python -m pip freeze --exclude-editable; } > $(LOCK).new
	mv $(LOCK).new $(LOCK) && rm -rf .lock-venv
	@echo "wrote $(LOCK); review the diff, then make venv tables"

# Writes docs/report.md + docs/figures/*.png and rewrites README.md's generated sections.
report: $(STAMP)
	$(BIN)/aqpgen report --out docs/report.md --readme README.md

# Removes the virtual environment, caches and build outputs; never the tables.
clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build dist *.egg-info
	find aqpgen tests bench -name __pycache__ -type d -prune -exec rm -rf {} +
