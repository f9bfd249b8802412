# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Keep Spark on the loopback interface: no traffic leaves this machine.
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))

.PHONY: demo test test-unit test-cluster test-slow lint pyfiles check-env clean

check-env:
	@bash scripts/check_env.sh $(PYTHON)

$(STAMP): setup.cfg pyproject.toml
	@bash scripts/check_env.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	@touch $(STAMP)

demo: check-env $(STAMP)
	$(PY) jobs/demo.py --conf conf/jobs/demo.yaml

test: check-env $(STAMP)
	$(PY) -m pytest tests -m "not slow" -q

test-unit: check-env $(STAMP)
	$(PY) -m pytest tests -m "not slow and not cluster" -q

test-cluster: check-env $(STAMP)
	$(PY) -m pytest tests -m cluster -q

test-slow: check-env $(STAMP)
	$(PY) -m pytest tests -m slow -q

lint: $(STAMP)
	$(PY) -m pip install --quiet 'ruff==0.17.6'
	$(PY) -m ruff check pipelines jobs udfs tests benchmarks scripts

pyfiles: check-env $(STAMP)
	$(PY) -m pipelines.packaging dist

clean:
	rm -rf $(VENV) build dist *.egg-info output data/demo .pytest_cache
