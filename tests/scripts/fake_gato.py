"""A fake `gato` executable for driving the shell scripts in tests: it logs its argv as a
JSON line to ``$FAKE_GATO_LOG``, then runs a test's own Python body (which sees ``args``
and ``option(name)``) to leave the files the real command would."""

from __future__ import annotations

import json
import sys
from pathlib import Path

_PREAMBLE = """#!{python}
import json, os, sys
from pathlib import Path

args = sys.argv[1:]
with open(os.environ["FAKE_GATO_LOG"], "a") as f:
    f.write(json.dumps(args) + "\\n")


def option(name):
    return args[args.index(name) + 1]


"""


def write_fake_gato(directory: Path, body: str) -> Path:
    """An executable ``directory/gato`` that logs its calls, then runs ``body``."""
    directory.mkdir(parents=True, exist_ok=True)
    gato = directory / "gato"
    gato.write_text(_PREAMBLE.format(python=sys.executable) + body)
    gato.chmod(0o755)
    return gato


def read_calls(log: Path) -> list[list[str]]:
    """The argv of every call the fake logged, in order."""
    return [json.loads(line) for line in log.read_text().splitlines()]
