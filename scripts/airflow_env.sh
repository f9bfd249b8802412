#!/usr/bin/env bash
# Optional Airflow environment for the DAG test (tests/test_runner_airflow.py): a separate virtualenv,
# because Airflow pins many packages the project's own environment does not want.
# Usage: scripts/airflow_env.sh [PYTHON] [VENV_DIR]   (defaults: python3, .venv-airflow)
#
# Versions: apache-airflow and the Spark provider are pinned below; their dependencies come from Airflow's
# official constraints file when it can be downloaded, else from the one kept in scripts/airflow-constraints/
# (a `pip freeze` of a working install for the same Airflow and Python versions), else they float.
# Exits 0 with the environment ready (a stamp file marks it), or non-zero after writing the reason to
# $VENV/.install-failed, which the test shows when it skips. Measured on 2 cores: about 40 s from PyPI.
# AIRFLOW_ENV_TIMEOUT (seconds, default 1200) bounds the install, so an unreachable index cannot stall CI.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-python3}
VENV=${2:-.venv-airflow}
AIRFLOW_VERSION=3.3.2
SPARK_PROVIDER_VERSION=6.3.4
STAMP="$VENV/.installed-$AIRFLOW_VERSION"
FAILED="$VENV/.install-failed"
if [ -f "$STAMP" ]; then
  echo "airflow env: $VENV is ready (apache-airflow $AIRFLOW_VERSION)"
  exit 0
fi
start=$(date +%s)
step="checking $PYTHON"
log=$(mktemp)
fail() {
  local code=$?
  local why="exit code $code"
  [ "$code" -eq 124 ] && why="timed out after ${AIRFLOW_ENV_TIMEOUT:-1200}s"
  if grep -qE 'NewConnectionError|Failed to establish|Name or service not known|name resolution|timed out' "$log"; then
    why="$why; the package index is unreachable"
  fi
  tail -n 20 "$log" >&2 || true
  mkdir -p "$VENV"
  echo "$step failed ($why) after $(( $(date +%s) - start ))s: $(grep -E 'ERROR|Error|error' "$log" | tail -n 2 \
    | tr '\n' ' ')" > "$FAILED"
  echo "airflow env: $(cat "$FAILED")" >&2
  rm -f "$log"
}
trap fail ERR
PY_MINOR=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")' 2>"$log")
step="creating the virtualenv $VENV"
"$PYTHON" -m venv --clear "$VENV" >"$log" 2>&1
echo "*" > "$VENV/.gitignore"   # keep the environment out of git status
export PIP_DEFAULT_TIMEOUT=${PIP_DEFAULT_TIMEOUT:-60} PIP_DISABLE_PIP_VERSION_CHECK=1
pip=(timeout "${AIRFLOW_ENV_TIMEOUT:-1200}" "$VENV/bin/python" -m pip install --quiet --retries 2)
step="upgrading pip"
"${pip[@]}" --upgrade pip >"$log" 2>&1
OFFICIAL="https://raw.githubusercontent.com/apache/airflow/constraints-${AIRFLOW_VERSION}/constraints-${PY_MINOR}.txt"
KEPT="scripts/airflow-constraints/constraints-${AIRFLOW_VERSION}-py${PY_MINOR}.txt"
constraints=()
if curl -fsS --max-time 20 -o "$VENV/constraints.txt" "$OFFICIAL" 2>/dev/null; then
  echo "airflow env: using the official constraints $OFFICIAL"
  constraints=(--constraint "$VENV/constraints.txt")
elif [ -f "$KEPT" ]; then
  echo "airflow env: official constraints not reachable; using $KEPT"
  constraints=(--constraint "$KEPT")
else
  echo "airflow env: no constraints for Airflow $AIRFLOW_VERSION on Python $PY_MINOR; only Airflow and the provider are pinned"
fi
step="pip install apache-airflow==$AIRFLOW_VERSION apache-airflow-providers-apache-spark==$SPARK_PROVIDER_VERSION"
"${pip[@]}" "${constraints[@]}" \
  "apache-airflow==${AIRFLOW_VERSION}" "apache-airflow-providers-apache-spark==${SPARK_PROVIDER_VERSION}" \
  >"$log" 2>&1
step="importing the SparkSubmitOperator"
"$VENV/bin/python" -c "from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator" \
  >"$log" 2>&1
trap - ERR
rm -f "$FAILED" "$log"
touch "$STAMP"
echo "airflow env: $VENV ready in $(( $(date +%s) - start ))s (apache-airflow $AIRFLOW_VERSION, Python $PY_MINOR)"
