# Two entry points for a fresh machine (Python 3.11, x86_64 Linux, no GPU needed):
#   make reproduce   set up .venv, generate the demo data, run every notebook, then every table and figure
#   make test        set up .venv and run the test suite (what CI runs)
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
JOBS   ?= 2

.PHONY: setup reproduce notebooks batch stats test clean-results

$(VENV)/.installed: requirements.txt requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet "pip>=24"
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . || $(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (repro)" >/dev/null
	touch $@

setup: $(VENV)/.installed

# regenerate stale notebooks from their templates; a notebook edited by hand stops the run with how to keep or
# discard the edit (the template-notebook sync check itself is a test: tests/foundation/test_notebooks_sync.py)
notebooks: setup
	$(PY) -m common.notebooks

# every demo notebook, then BBC Hadamard once more under protocol=released (labelled "as released" in the tables)
batch: notebooks
	$(PY) -m common.batch --study all --profile demo -j $(JOBS)
	$(PY) -m common.batch --study smile --dataset BBC --variant hadamard --protocol released --profile demo

stats: setup
	$(PY) statistical_analysis/run_tests.py

reproduce: batch stats

test: setup
	$(PY) -m pytest -n $(JOBS) -q

clean-results:
	rm -rf results/raw results/batch
