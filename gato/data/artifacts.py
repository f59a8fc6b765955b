"""Built data artifacts: one folder per artifact under the data directory, each with
its own ``manifest.json``.

The manifest records the parameters the artifact was built with, its files with their
sizes, summary figures (counts, tokens, MB) and the build time. A builder calls
``is_built(params)`` first: same parameters and every file still present means the
work is skipped, so re-running ``gato data ...`` only builds what is missing. Each
artifact has its own manifest (rather than one shared file) so that independent
builders never race on one JSON file.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from gato.atomic import fsync_replace

MANIFEST = "manifest.json"


@dataclass
class Artifact:
    """A folder ``data_dir/name`` holding one built data set and its manifest."""

    data_dir: Path
    name: str

    @property
    def dir(self) -> Path:
        return Path(self.data_dir) / self.name

    @property
    def manifest_path(self) -> Path:
        return self.dir / MANIFEST

    def manifest(self) -> dict | None:
        """The manifest as written, or None if the artifact was never built."""
        if not self.manifest_path.is_file():
            return None
        with self.manifest_path.open(encoding="utf-8") as f:
            return json.load(f)

    def is_built(self, params: dict) -> bool:
        """True if built with exactly these parameters and all its files still exist."""
        m = self.manifest()
        if m is None or m.get("params") != _jsonable(params):
            return False
        return all((self.dir / rel).is_file() for rel in m.get("files", {}))

    def write_manifest(self, params: dict, files: list[str], stats: dict, seconds: float) -> dict:
        """Record a finished build; ``files`` are paths relative to ``self.dir``."""
        missing = [rel for rel in files if not (self.dir / rel).is_file()]
        if missing:
            raise FileNotFoundError(f"{self.name}: built files missing: {missing}")
        m = {
            "name": self.name,
            "params": _jsonable(params),
            "files": {rel: (self.dir / rel).stat().st_size for rel in sorted(files)},
            "stats": _jsonable(stats),
            "build_seconds": round(seconds, 2),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.manifest_path.with_name(MANIFEST + ".tmp")
        tmp.write_text(json.dumps(m, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        fsync_replace(tmp, self.manifest_path)
        return m


def _jsonable(obj):
    """Round-trip through JSON so that tuples vs lists and Paths compare equal."""
    return json.loads(json.dumps(obj, default=str))
