#!/usr/bin/env bash
# Headless Chromium for the HTML report test (tests/test_report_html.py), from Debian's `chromium` package.
# The test skips cleanly when no chromium is installed; this script installs it (needs root, or sudo without a
# password). Measured on 2 cores: about 25 s with a reachable Debian mirror. Each apt step is bounded by
# CHROMIUM_INSTALL_TIMEOUT seconds (default 600), so an unreachable mirror cannot stall CI; on failure it exits
# non-zero with one line saying which step failed.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "chromium: $(command -v chromium) ($(chromium --version 2>/dev/null || echo unknown version))"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: not installed, and no apt-get to install Debian's chromium package; install a chromium yourself" >&2
  exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if ! sudo -n true 2>/dev/null; then
    echo "chromium: not installed, and installing it needs root or passwordless sudo" >&2
    exit 1
  fi
  SUDO=(sudo -n)
fi
limit=${CHROMIUM_INSTALL_TIMEOUT:-600}
start=$(date +%s)
if ! timeout "$limit" "${SUDO[@]}" apt-get update -qq -o Acquire::Retries=2; then
  echo "chromium: apt-get update failed after $(( $(date +%s) - start ))s (no reachable Debian mirror?)" >&2
  exit 1
fi
if ! timeout "$limit" "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends chromium >/dev/null; then
  echo "chromium: apt-get install chromium failed after $(( $(date +%s) - start ))s" >&2
  exit 1
fi
echo "chromium: installed $(chromium --version 2>/dev/null) in $(( $(date +%s) - start ))s"
