#!/usr/bin/env bash
# Stops with one line saying what to install when Python 3.10+ or Java 17+ is missing.
PYTHON="${1:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "error: Python 3.10+ not found ($PYTHON): install Python 3.10 or newer (e.g. apt-get install python3 python3-venv)" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'; then
  echo "error: $PYTHON is $("$PYTHON" -c 'import platform; print(platform.python_version())'): install Python 3.10 or newer" >&2
  exit 1
fi
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
if ! command -v "$JAVA" >/dev/null 2>&1; then
  echo "error: Java not found: install Java 17 or newer (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME" >&2
  exit 1
fi
JAVA_VERSION=$("$JAVA" -version 2>&1 | awk -F'"' '/version/ {print $2; exit}')
JAVA_MAJOR=${JAVA_VERSION%%.*}
if [ "$JAVA_MAJOR" = "1" ]; then JAVA_MAJOR=$(echo "$JAVA_VERSION" | cut -d. -f2); fi
if ! [ "$JAVA_MAJOR" -ge 17 ] 2>/dev/null; then
  echo "error: Java $JAVA_VERSION found, Spark 4 needs Java 17 or newer: install Java 17+ (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME" >&2
  exit 1
fi
