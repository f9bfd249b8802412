#!/usr/bin/env bash
# Headless Chromium for the HTML report test (tests/test_report_html.py), from Debian's `chromium` package.
# The test skips cleanly when no chromium is installed; this script installs it (needs root or sudo).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "chromium: $(command -v chromium) ($(chromium --version 2>/dev/null || echo unknown version))"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
start=$(date +%s)
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
echo "chromium: installed $(chromium --version 2>/dev/null) in $(( $(date +%s) - start ))s"
