"""Run one of ``scripts/*.py`` as a user would: a fresh interpreter, output captured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def run_python_script(name: str, *args: str) -> subprocess.CompletedProcess:
    """``python scripts/NAME ARGS...``; the result holds the exit code, stdout and stderr."""
    return subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
