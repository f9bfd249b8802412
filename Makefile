# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
AIRFLOW_VENV ?= .venv-airflow
# Tiers with their own set-up (Airflow's virtualenv, Debian's chromium) run in their own targets only.
OWN_SETUP := not airflow and not browser and not connect
# The unit and slow tiers in this many pytest processes (pytest-xdist; each with its own local SparkSession, a
# test file's tests in one of them): their tests mostly wait on Spark's small jobs, so two processes keep two cores
# busy. 0: one process.
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadfile
# Keep Spark on the loopback interface: no traffic leaves this machine.
export SPARK_LOCAL_IP ?= 127.0.0.1
export PYSPARK_PYTHON := $(abspath $(PY))
export PYSPARK_DRIVER_PYTHON := $(abspath $(PY))

.PHONY: demo test test-cluster test-slow test-airflow test-report test-connect lint pyfiles dist check-env clean

check-env:
	@bash scripts/check_env.sh $(PYTHON)

$(STAMP): setup.cfg pyproject.toml constraints.txt
	@bash scripts/check_env.sh $(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,bench,dist,tracking,tracking-ui]'
	@touch $(STAMP)

demo: check-env $(STAMP)
	$(PY) jobs/demo.py --conf conf/jobs/demo.yaml

# The unit tier: one local SparkSession per pytest process for the whole run (under 10 minutes on 2 cores; the 15
# slowest listed).
test: check-env $(STAMP)
	$(PY) -m pytest tests -m "not slow and not cluster and $(OWN_SETUP)" -q --durations=15 $(XDIST)

# The cluster tier: one standalone master and two workers for the whole run, jobs through spark-submit, faults.
test-cluster: check-env $(STAMP)
	$(PY) -m pytest tests -m cluster -q --durations=10

# The slow tier: one session per pytest process for 25 minutes of heavy JVM work (MovieLens through the whole
# funnel, ALS, Word2Vec on the Wikipedia slice), where the full JIT pays for itself: test.yaml's C1-only compiler
# (right for the unit tier's many small jobs) made the MovieLens pipeline 750 s instead of 496 s on a quiet machine.
SLOW_JAVA_OPTIONS := -XX:+UseSerialGC -Xss16m
test-slow: check-env $(STAMP)
	PIPELINES_TEST_JAVA_OPTIONS="$(SLOW_JAVA_OPTIONS)" $(PY) -m pytest tests -m slow -q --durations=10 $(XDIST)

# The generated Airflow DAGs loaded by Airflow's DagBag: makes $(AIRFLOW_VENV) first (about 1 minute); when that
# fails (e.g. no package index), the test skips and says why.
test-airflow: check-env $(STAMP)
	-@bash scripts/airflow_env.sh $(PYTHON) $(AIRFLOW_VENV)
	AIRFLOW_VENV=$(abspath $(AIRFLOW_VENV)) $(PY) -m pytest tests -m airflow -q -rs

# A pipeline's HTML report and the MLflow UI on a tiny demo's store in headless Chromium: installs Debian's
# chromium first (root or sudo; about 25 s); when that fails, the tests skip and say why.
test-report: check-env $(STAMP)
	-@bash scripts/chromium.sh
	$(PY) -m pytest tests -m browser -q -rs

# The library through a local Spark Connect server (clicks_demo's steps, compared with a classic run): installs
# the Connect client extras first (setup.cfg's `connect`); when that fails, the tests skip and say why.
test-connect: check-env $(STAMP)
	-@bash scripts/connect_env.sh $(PY)
	$(PY) -m pytest tests -m connect -q -rs --durations=10

lint: $(STAMP)
	$(PY) -m pip install --quiet 'ruff==0.17.6'
	$(PY) -m ruff check pipelines jobs udfs tests benchmarks scripts
	$(PY) -m ruff format --check pipelines jobs udfs tests benchmarks scripts

pyfiles: check-env $(STAMP)
	$(PY) -m pipelines.packaging dist

# What spark-submit ships to executors, in dist/: the --py-files zip and the runtime requirements packed with
# venv-pack (why venv-pack and what is in it: pipelines/packaging.py), rebuilt only when the requirements changed:
#   spark-submit --py-files dist/spark_ml_pipelines-*.zip --archives dist/spark_ml_pipelines-*-env.tar.gz#environment
#     --conf spark.pyspark.python=./environment/bin/python --conf spark.pyspark.driver.python=$$(which python) ...
dist: check-env $(STAMP)
	$(PY) -m pipelines.packaging dist --env

clean:
	rm -rf $(VENV) build dist *.egg-info output data/demo .pytest_cache
