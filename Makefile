# Thin names for common CLI calls. The first target you run creates .venv and installs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# CPU build of torch pinned here (a local wheel on the project's machines); elsewhere
# set TORCH_SPEC to your platform's build, e.g. make install TORCH_SPEC='torch==2.5.1'.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
PROFILE ?= quick
ARGS ?=
GRAPH_ARGS ?=

.PHONY: install test test-slow test-all lint ablation probes controls perf report table list clean-cache

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet '$(TORCH_SPEC)'
	$(PY) -m pip install --quiet -e '.[dev,cluster,fidelity,perf]'
	$(PY) -m pip install --quiet --no-deps matbench==0.6 schnetpack==2.1.1
	touch $(STAMP)

test: install
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

test-all: install
	$(PY) -m pytest -q -m ''

lint: install
	$(PY) -m ruff check bench architectures tasks tests

ablation: install
	$(PY) -m bench ablation --profile $(PROFILE) $(ARGS)
	$(PY) -m bench report --profile $(PROFILE) $(ARGS)

probes: install
	$(PY) -m bench ablation --profile probes $(ARGS)
	$(PY) -m bench report --profile probes $(ARGS)

controls: install
	$(PY) -m bench ablation --profile controls $(ARGS)
	$(PY) -m bench report --profile controls $(ARGS)

perf: install
	$(PY) -m bench perf $(ARGS)
	$(PY) -m bench.graphs.benchmark $(GRAPH_ARGS)

report: install
	$(PY) -m bench report --profile $(PROFILE) $(ARGS)

table: install
	$(PY) -m bench table --profile $(PROFILE) $(ARGS)

list: install
	$(PY) -m bench list

clean-cache:
	rm -rf .cache
