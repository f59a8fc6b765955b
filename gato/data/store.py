"""A lossless on-disk episode store: one compressed numpy shard per episode + a manifest.

Layout of a store directory::

    manifest.json        format version, task, array specs, counts, and per episode:
                         shard name, size, sha256, length, return, seed, how it ended
    ep_0000000.npz       one episode (``np.savez_compressed``, never lossy)
    ep_0000001.npz       ...

Inside a shard every array is cut along time into chunks of ``chunk_steps``
steps, stored as separate zip members (``obs.<key>.<c>``, ``actions.<c>``,
``rewards.<c>``). ``np.load`` decompresses members lazily, so
:meth:`EpisodeStore.window` only inflates the chunks a window overlaps: a
1024-step window of a 27k-step Atari episode costs ~5 chunks, not the episode.
Compressed shards are small (Atari frames: ~100 bytes each), so a reader
reads a shard's bytes once, checks its sha256 against the manifest and keeps
the few most recently used shards in memory; lengths, returns and seeds come
from the manifest without opening any shard. Uncompressed memory-mapped
``.npy`` was the alternative; it would be ~60x larger for Atari frames.

Writes are atomic (temp file in the same directory, fsync, rename), shard
first, manifest after, so a crash leaves every episode in the manifest
readable; a shard not (yet) in the manifest is an orphan and is ignored.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from gato.atomic import write_atomic
from gato.envs.spec import Episode

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHUNK_STEPS = 256
OPEN_SHARDS = 8  # shards a reader keeps in memory (compressed bytes only)
KEY = re.compile(r"^[A-Za-z0-9_-]+$")


class StoreError(ValueError):
    """A store on disk is missing, corrupted or truncated (the message names the file)."""


@dataclass(frozen=True)
class ArraySpec:
    """dtype and per-step shape of one stored array."""

    dtype: str
    shape: tuple[int, ...]

    @classmethod
    def of(cls, array: np.ndarray) -> ArraySpec:
        return cls(array.dtype.str, tuple(int(d) for d in array.shape[1:]))


@dataclass(frozen=True)
class ShardRecord:
    """The manifest's entry for one episode shard."""

    shard: str
    size: int
    sha256: str
    length: int
    score: float
    seed: int | None
    terminated: bool
    truncated: bool


@dataclass
class Manifest:
    """What ``manifest.json`` holds (see the module docstring)."""

    task: str
    observation: dict[str, ArraySpec]
    action: ArraySpec
    chunk_steps: int = CHUNK_STEPS
    episodes: list[ShardRecord] = field(default_factory=list)
    collection: dict = field(default_factory=dict)  # how it was collected (seeds, filter)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        data = asdict(self)
        data["counts"] = {
            "episodes": len(self.episodes),
            "steps": sum(r.length for r in self.episodes),
        }
        return json.dumps(data, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str, where: str) -> Manifest:
        try:
            data = json.loads(text)
            if data.get("format_version") != FORMAT_VERSION:
                raise StoreError(
                    f"{where}: unknown store format {data.get('format_version')!r} "
                    f"(this reader knows {FORMAT_VERSION})"
                )
            return cls(
                task=data["task"],
                observation={k: _spec(v) for k, v in data["observation"].items()},
                action=_spec(data["action"]),
                chunk_steps=int(data["chunk_steps"]),
                episodes=[ShardRecord(**r) for r in data["episodes"]],
                collection=data.get("collection", {}),
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise StoreError(f"{where}: unreadable manifest ({exc})") from None


def _spec(d: dict) -> ArraySpec:
    return ArraySpec(d["dtype"], tuple(d["shape"]))


# -- writing ---------------------------------------------------------------------


def shard_name(index: int) -> str:
    return f"ep_{index:07d}.npz"


def write_shard(
    directory: Path, name: str, episode: Episode, chunk_steps: int = CHUNK_STEPS
) -> ShardRecord:
    """Write ``episode`` as shard ``directory/name`` atomically and return its record."""
    members: dict[str, np.ndarray] = {}
    arrays = {f"obs.{k}": v for k, v in episode.observations.items()}
    arrays["actions"] = episode.actions
    arrays["rewards"] = episode.rewards
    for key in episode.observations:
        if not KEY.match(key):
            raise ValueError(f"observation key {key!r}: use letters, digits, '_' or '-'")
    for prefix, array in arrays.items():
        if len(array) != len(episode):
            raise ValueError(f"{prefix} has {len(array)} steps, the episode {len(episode)}")
        for c in range(max(1, math.ceil(len(episode) / chunk_steps))):
            members[f"{prefix}.{c:05d}"] = array[c * chunk_steps : (c + 1) * chunk_steps]
    buf = io.BytesIO()
    np.savez_compressed(buf, **members)
    data = buf.getvalue()
    write_atomic(Path(directory) / name, data)
    return ShardRecord(
        shard=name,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        length=len(episode),
        score=episode.score,
        seed=episode.seed,
        terminated=episode.terminated,
        truncated=episode.truncated,
    )


class StoreWriter:
    """Append episodes to a store directory (new or existing, same task and specs)."""

    def __init__(self, path: str | Path, task: str, chunk_steps: int = CHUNK_STEPS):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        if (self.path / MANIFEST).is_file():
            self.manifest = read_manifest(self.path)
            if self.manifest.task != task:
                raise ValueError(
                    f"{self.path} holds task {self.manifest.task!r}, not {task!r}; "
                    "use another --out"
                )
        else:
            self.manifest = None
        self.task = task
        self.chunk_steps = self.manifest.chunk_steps if self.manifest else chunk_steps

    def __len__(self) -> int:
        return len(self.manifest.episodes) if self.manifest else 0

    def next_index(self) -> int:
        """Shard index for the next episode written with :meth:`add`."""
        names = [int(r.shard[3:10]) for r in self.manifest.episodes] if self.manifest else []
        return max(names, default=-1) + 1

    def add(self, episode: Episode, flush: bool = True) -> ShardRecord:
        """Write one episode's shard, then record it (and rewrite the manifest if ``flush``)."""
        record = write_shard(self.path, shard_name(self.next_index()), episode, self.chunk_steps)
        self.append(record, episode, flush)
        return record

    def append(self, record: ShardRecord, episode: Episode, flush: bool = True) -> None:
        """Record a shard already written with :func:`write_shard` (``episode`` gives specs)."""
        obs = {k: ArraySpec.of(v) for k, v in episode.observations.items()}
        act = ArraySpec.of(episode.actions)
        if self.manifest is None:
            self.manifest = Manifest(self.task, obs, act, self.chunk_steps)
        elif obs != self.manifest.observation or act != self.manifest.action:
            raise ValueError(
                f"episode arrays {obs}, {act} differ from the store's "
                f"{self.manifest.observation}, {self.manifest.action}"
            )
        self.manifest.episodes.append(record)
        if flush:
            self.flush()

    def flush(self) -> None:
        """Rewrite ``manifest.json`` atomically."""
        if self.manifest is not None:
            write_atomic(self.path / MANIFEST, self.manifest.to_json().encode())

    def remove_orphans(self) -> list[str]:
        """Delete shards and temp files the manifest does not list; returns their names."""
        known = {r.shard for r in self.manifest.episodes} if self.manifest else set()
        removed = []
        for p in list(self.path.glob("ep_*.npz")) + list(self.path.glob(".ep_*.tmp")):
            if p.name not in known:
                p.unlink(missing_ok=True)
                removed.append(p.name)
        return removed


# -- reading ---------------------------------------------------------------------


def read_manifest(path: str | Path) -> Manifest:
    """The manifest of the store at ``path`` (a directory)."""
    file = Path(path) / MANIFEST
    if not file.is_file():
        raise FileNotFoundError(f"no episode store at {path}: {MANIFEST} not found")
    return Manifest.from_json(file.read_text(encoding="utf-8"), str(file))


class EpisodeStore:
    """Read a store lazily: ``len``, ``episode(i)``, ``window(i, start, stop)``, iteration.

    Shards are opened on first use and checked against the manifest's sha256;
    a missing, truncated or corrupted shard raises :class:`StoreError` naming it.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        self._open: OrderedDict[int, np.lib.npyio.NpzFile] = OrderedDict()

    @property
    def task(self) -> str:
        return self.manifest.task

    def __len__(self) -> int:
        return len(self.manifest.episodes)

    @property
    def lengths(self) -> np.ndarray:
        """``(N,)`` int64 episode lengths, from the manifest."""
        return np.array([r.length for r in self.manifest.episodes], dtype=np.int64)

    @property
    def returns(self) -> np.ndarray:
        """``(N,)`` float64 episode returns, from the manifest."""
        return np.array([r.score for r in self.manifest.episodes], dtype=np.float64)

    @property
    def seeds(self) -> list[int | None]:
        return [r.seed for r in self.manifest.episodes]

    def indices(self, min_return: float | None = None) -> np.ndarray:
        """Indices of the episodes whose return is at least ``min_return`` (all if None)."""
        keep = np.ones(len(self), dtype=bool)
        if min_return is not None:
            keep = self.returns >= min_return
        return np.flatnonzero(keep)

    def episode(self, i: int) -> Episode:
        """Episode ``i`` in full."""
        return self.window(i, 0, self.manifest.episodes[i].length)

    def window(self, i: int, start: int, stop: int) -> Episode:
        """Steps ``[start, stop)`` of episode ``i``; only the chunks they overlap are inflated."""
        record = self.manifest.episodes[i]
        if not 0 <= start <= stop <= record.length:
            raise IndexError(f"window [{start}, {stop}) outside episode {i} of {record.length}")
        shard = self._shard(i)
        n = self.manifest.chunk_steps
        first, last = start // n, max(start, stop - 1) // n

        def read(prefix: str, spec: ArraySpec) -> np.ndarray:
            if stop == start:
                return np.zeros((0, *spec.shape), dtype=np.dtype(spec.dtype))
            try:
                parts = [shard[f"{prefix}.{c:05d}"] for c in range(first, last + 1)]
            except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
                raise StoreError(f"{self._where(record)}: cannot read {prefix} ({exc})") from None
            return np.concatenate(parts)[start - first * n : stop - first * n]

        rewards_spec = ArraySpec("<f4", ())
        is_last = stop == record.length
        return Episode(
            task=self.task,
            observations={k: read(f"obs.{k}", s) for k, s in self.manifest.observation.items()},
            actions=read("actions", self.manifest.action),
            rewards=read("rewards", rewards_spec),
            terminated=record.terminated and is_last,
            truncated=record.truncated and is_last,
            seed=record.seed,
        )

    def __iter__(self) -> Iterator[Episode]:
        for i in range(len(self)):
            yield self.episode(i)

    def verify(self) -> None:
        """Check every shard's size and sha256; raises StoreError naming the first bad one."""
        for i in range(len(self)):
            self._read_verified(self.manifest.episodes[i])

    def _where(self, record: ShardRecord) -> str:
        return f"shard {record.shard} of {self.path}"

    def _read_verified(self, record: ShardRecord) -> bytes:
        file = self.path / record.shard
        if not file.is_file():
            raise StoreError(f"{self._where(record)} is missing")
        data = file.read_bytes()
        if len(data) != record.size:
            raise StoreError(
                f"{self._where(record)} is truncated or damaged: {len(data)} bytes, "
                f"the manifest says {record.size}"
            )
        if hashlib.sha256(data).hexdigest() != record.sha256:
            raise StoreError(f"{self._where(record)} is corrupted: sha256 mismatch")
        return data

    def _shard(self, i: int) -> np.lib.npyio.NpzFile:
        if i in self._open:
            self._open.move_to_end(i)
            return self._open[i]
        record = self.manifest.episodes[i]
        data = self._read_verified(record)
        try:
            shard = np.load(io.BytesIO(data), allow_pickle=False)
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            raise StoreError(f"{self._where(record)}: not a valid npz ({exc})") from None
        self._open[i] = shard
        if len(self._open) > OPEN_SHARDS:
            self._open.popitem(last=False)
        return shard
