#!/usr/bin/env bash
# The Spark Connect client extras (setup.cfg's `connect`: grpcio, grpcio-status, googleapis-common-protos,
# zstandard) in the project's environment, at constraints.txt's versions, for `make test-connect`.
# Usage: scripts/connect_env.sh [PYTHON]   (default: .venv/bin/python)
# Exits 0 when they are installed; otherwise writes the reason to .connect-install-failed, which the connect
# tests show when they skip, and exits non-zero. CONNECT_ENV_TIMEOUT (seconds, default 600) bounds the install.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
FAILED=.connect-install-failed
log=$(mktemp)
start=$(date +%s)
if timeout "${CONNECT_ENV_TIMEOUT:-600}" "$PY" -m pip install --quiet -c constraints.txt -e '.[connect]' >"$log" 2>&1; then
  rm -f "$FAILED" "$log"
  echo "connect env: client extras installed in $(( $(date +%s) - start ))s"
  exit 0
fi
code=$?
why="exit code $code"
[ "$code" -eq 124 ] && why="timed out after ${CONNECT_ENV_TIMEOUT:-600}s"
if grep -qE 'NewConnectionError|Failed to establish|Name or service not known|name resolution|timed out' "$log"; then
  why="$why; the package index is unreachable"
fi
tail -n 20 "$log" >&2
echo "pip install -c constraints.txt -e '.[connect]' failed ($why): $(grep -E 'ERROR|Error' "$log" | tail -n 1)" > "$FAILED"
echo "connect env: $(cat "$FAILED")" >&2
rm -f "$log"
exit 1
