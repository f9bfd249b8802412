"""Headless Chromium for the browser tier (``make test-report``): Debian's ``chromium``, which
``scripts/chromium.sh`` installs; a test that needs it skips, saying why, when there is none."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
]


def chromium_binary() -> str:
    """``$CHROMIUM``, else ``chromium`` on the PATH or /usr/bin/chromium; skips the test when there is none."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(found, os.X_OK):
        pytest.skip(
            f"no chromium found (tried $CHROMIUM, the PATH and {found}); `make test-report` or "
            f"`scripts/chromium.sh` installs Debian's chromium"
        )
    return found


def chromium(*args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium with a fresh profile directory."""
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [chromium_binary(), *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=180,
        )
