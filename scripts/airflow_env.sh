#!/usr/bin/env bash
# Optional Airflow environment for the DAG test (tests/test_runner_airflow.py): a separate virtualenv,
# because Airflow pins many packages the project's own environment does not want.
# Usage: scripts/airflow_env.sh [PYTHON] [VENV_DIR]   (defaults: python3, .venv-airflow)
# Installs with Airflow's official constraints file when it can be downloaded, else with pinned versions.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-python3}
VENV=${2:-.venv-airflow}
AIRFLOW_VERSION=3.3.2
SPARK_PROVIDER_VERSION=6.3.4
STAMP="$VENV/.installed-$AIRFLOW_VERSION"
if [ -f "$STAMP" ]; then
  echo "airflow env: $VENV is ready (apache-airflow $AIRFLOW_VERSION)"
  exit 0
fi
PY_MINOR=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
CONSTRAINTS_URL="https://raw.githubusercontent.com/apache/airflow/constraints-${AIRFLOW_VERSION}/constraints-${PY_MINOR}.txt"
start=$(date +%s)
"$PYTHON" -m venv "$VENV"
echo "*" > "$VENV/.gitignore"   # keep the environment out of git status
"$VENV/bin/python" -m pip install --quiet --upgrade pip
constraints=()
if curl -fsS --max-time 20 -o "$VENV/constraints.txt" "$CONSTRAINTS_URL" 2>/dev/null; then
  echo "airflow env: using the official constraints $CONSTRAINTS_URL"
  constraints=(--constraint "$VENV/constraints.txt")
else
  echo "airflow env: constraints file not reachable; installing pinned versions"
fi
"$VENV/bin/python" -m pip install --quiet "${constraints[@]}" \
  "apache-airflow==${AIRFLOW_VERSION}" "apache-airflow-providers-apache-spark==${SPARK_PROVIDER_VERSION}"
touch "$STAMP"
echo "airflow env: $VENV ready in $(( $(date +%s) - start ))s"
