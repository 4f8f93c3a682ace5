"""Prometheus's own checker, ``promtool``, on exposition text, rule files and rule tests.

Debian's ``prometheus`` package ships it (``scripts/system-deps.sh --promtool``, which ``make test`` passes);
a test that needs it fails, saying so, where it is not installed (the checks must not pass unseen).
"""

import shutil
import subprocess
from pathlib import Path

import pytest


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is not installed (Debian package prometheus: scripts/system-deps.sh --promtool, which "
            "make test runs)",
            pytrace=False,
        )
    return found


def check_metrics(text: str) -> subprocess.CompletedProcess[str]:
    """``promtool check metrics`` on an exposition: returncode 0 and no lint output when it is clean."""
    return subprocess.run(
        [promtool(), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60, check=False
    )


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """``promtool ARGS...``."""
    return subprocess.run(
        [promtool(), *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )
