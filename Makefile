# The book's commands:
#   make book   build the website into _build/html (Chinese edition: _build/html/zh), executing
#               every notebook (preset: tiny)
#   make test   lint and format check (ruff), unit tests for utils, every notebook executed (once,
#               by the site's build), the gpt2-small stand-in runs, and the browser tests (the
#               site, and tutorial 1 live in JupyterLab)
#   make lab    start JupyterLab on notebooks/ and open it in the browser (preset: tiny;
#               `make lab PRESET=auto` lets the notebooks choose); Ctrl-C stops it
# Each creates the virtual environment .venv on first use and reuses it afterwards, installing
# requirements.txt's ranges at the exact versions of requirements-lock.txt (pip constraints), the
# ones the book was tested with. Maintainers: `make lock` refreshes that file, `make mutation`
# runs the mutation tests (neither is part of `make test`).

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The torch to install when the venv has none, at the lock's version: your platform's default build
# of it (on Linux, PyPI's is a CUDA build that also runs on a CPU). CI (.ci/run) installs a local CPU
# build of the same release first, which satisfies the lock's torch pin as it is.
# A specific build of that release (CPU-only, a CUDA version), installed into the venv first,
# satisfies it too. Another release conflicts with the lock: `make test LOCK=` installs
# requirements.txt's ranges without it (versions the book was not tested with).
TORCH_SPEC ?= torch>=2.6
LOCK ?= requirements-lock.txt
CONSTRAINTS := $(if $(LOCK),-c $(LOCK))
# The preset notebooks run on; the bundled tiny model needs no network.
PRESET ?= tiny

RUN_ENV := SAE_BOOK_PRESET=$(PRESET) WANDB_MODE=disabled
ifeq ($(PRESET),tiny)
RUN_ENV += HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
endif

STAMP := $(VENV)/.installed

.PHONY: book test test-tiny lab venv lock mutation clean clean-book tiny-model benchmarks

venv: $(STAMP)

$(STAMP): requirements.txt $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH_SPEC)" $(CONSTRAINTS)
	$(BIN)/python -m pip install --quiet -r requirements.txt $(CONSTRAINTS)
	$(BIN)/python -m pip check
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

# jupyter-cache re-executes a notebook only when its code changes; the notebooks also read utils/
# and benchmarks/results/, so a change there (or no record of a good build) clears the cache.
# Not mutation.txt, which no page reads (`make mutation` rewrites it).
EXECUTION_INPUTS := utils benchmarks/results

# Both editions, each with `jupyter-book build ... -W -n --keep-going`: English into _build/html,
# Chinese (zh/, sharing the English execution cache) into _build/html/zh (i18n/build.py).
book: $(STAMP)
	@if [ -d _build/.jupyter_cache ] && { [ ! -f _build/.site-build-ok ] || \
	    [ -n "$$(find $(EXECUTION_INPUTS) -type f -newer _build/.site-build-ok -not -path '*/__pycache__/*' -not -name mutation.txt | head -n 1)" ]; }; then \
	  echo "utils/ or benchmarks/results/ changed since the last build: the notebooks will run again"; \
	  rm -rf _build/.jupyter_cache; \
	fi
	$(RUN_ENV) $(BIN)/python -m i18n.build
	@touch _build/.site-build-ok  # tests/test_site_*.py reuse a site built after its sources changed
	@echo "Open $(CURDIR)/_build/html/index.html (中文: $(CURDIR)/_build/html/zh/index.html)"

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(RUN_ENV) $(BIN)/python -m pytest tests -v -rs --durations=15

# The tiny model's tests and every notebook (both editions), without the site, e.g.
# make test-tiny PYTHON=python3.12 VENV=.venv-py312. CI's second Python runs it with
# NOTEBOOK_DIRS=zh/notebooks (see .ci/run: the English notebooks ran in the main pass's site build).
NOTEBOOK_DIRS ?= notebooks zh/notebooks
test-tiny: $(STAMP)
	$(RUN_ENV) $(BIN)/python -m pytest tests/test_tiny.py tests/test_tiny_metrics.py tests/test_corpus.py $(NOTEBOOK_DIRS) --nbmake -v -rs

# JupyterLab with notebooks/ as its root (the notebooks find utils/ one folder up); the kernels
# inherit the preset environment, as in `make test`.
# `make lab NOTEBOOKS=zh/notebooks` opens the Chinese edition (its checkers then answer in Chinese).
NOTEBOOKS ?= notebooks
lab: $(STAMP)
	$(RUN_ENV) $(BIN)/jupyter lab --notebook-dir=$(NOTEBOOKS)

# Rebuild the bundled tiny model, tokenizer and SAE (about 11 minutes on 2 CPU cores).
tiny-model: $(STAMP)
	$(RUN_ENV) $(BIN)/python -m utils.tiny.build

# Refresh requirements-lock.txt: requirements.txt resolved once for Pythons 3.10-3.13 on every
# platform (uv's --universal; where a package's newest release dropped 3.10, the file holds a line
# per Python range with a marker). Pins already in the file are kept where requirements.txt still
# allows them, so a new or changed requirement is resolved around them; `make lock UPGRADE=1` moves
# everything to the newest release allowed. torch stays at LOCK_TORCH, the release the CI machines
# have as a local CPU build. Resolves against PyPI (needs the network). Afterwards: make clean &&
# make test, and commit the lock with the change that needed it.
# torch's release has one home, the lock's torch== line (CI reads it too); uv's and mutmut's pins
# are in requirements-maintainer.txt.
LOCK_TORCH ?= $(shell sed -n 's/^torch==\([^ ;]*\).*/\1/p' requirements-lock.txt)
MAINTAINER_TOOL = $(shell grep '^$(1)==' requirements-maintainer.txt)
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(call MAINTAINER_TOOL,uv)"
	@printf 'torch==%s\n' '$(LOCK_TORCH)' > $(VENV)/lock-torch.txt
	$(BIN)/uv pip compile requirements.txt --universal --python-version 3.10 \
	  -c $(VENV)/lock-torch.txt -o requirements-lock.txt --custom-compile-command "make lock" \
	  $(if $(UPGRADE),--upgrade) --quiet
	@echo "requirements-lock.txt refreshed ($$(grep -c '==' requirements-lock.txt) pins). Now: make clean && make test, then commit it."

# Mutation testing (mutmut 3): each small change to the modules that print numbers is run against
# their unit tests, one part at a time (tools/mutation_parts.py: PARTS, which must together be
# pyproject.toml's [tool.mutmut]), each in a copy of utils/, i18n/ and tests/ under $(VENV)/mutation. The
# summary (killed/survived per module, date, commit, run time, each survivor's changed line) goes
# to benchmarks/results/mutation.txt. Not part of `make test`: slow (see that file's run times).
# One part: make mutation PARTS=presets (the summary keeps the other parts' last results).
MUTATION_DIR := $(VENV)/mutation
MUTATION_JOBS ?= 2
PARTS ?= presets evaluation t1-t2 t3 t4 t5 circuits features display-plots training loading tiny-metrics i18n
# Seconds after which a part stops, keeping the mutants checked so far (empty: no limit).
MUTATION_BUDGET ?=
# SURVIVORS=1: run again only each part's last survivors (after new tests), keeping the rest.
SURVIVORS ?=
# RESUME=1: run what a stopped run of each part left unfinished, keeping the rest.
RESUME ?=
# NEW=1: run the functions each part's last run had no mutant of (new functions, or ones that lost a
# decorator: mutmut 3 does not mutate decorated functions), keeping the rest.
NEW ?=
mutation: $(STAMP)
	$(BIN)/python -m pip install --quiet "$(call MAINTAINER_TOOL,mutmut)"
	for part in $(PARTS); do \
	  $(RUN_ENV) $(BIN)/python tools/mutation.py run $$part --folder $(MUTATION_DIR) \
	    --jobs $(MUTATION_JOBS) $(if $(MUTATION_BUDGET),--budget $(MUTATION_BUDGET)) \
	    $(if $(SURVIVORS),--survivors) $(if $(RESUME),--resume) $(if $(NEW),--new) || exit 1; \
	done
	$(BIN)/python tools/mutation.py summary --folder $(MUTATION_DIR) \
	  --previous benchmarks/results/mutation.txt > $(MUTATION_DIR)/summary.txt
	mv $(MUTATION_DIR)/summary.txt benchmarks/results/mutation.txt
	@sed -n '/^Part /,/^all parts run/p' benchmarks/results/mutation.txt

benchmarks: $(STAMP)
	$(RUN_ENV) $(BIN)/python benchmarks/notebook_times.py
	$(RUN_ENV) $(BIN)/python benchmarks/training_throughput.py

clean-book:
	rm -rf _build

clean: clean-book
	rm -rf $(VENV)
