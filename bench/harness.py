"""Shared plumbing for the benchmarks in ``bench/``.

Every benchmark is a script ``bench/NAME.py`` with ``--quick``, ``--device``,
``--threads`` and ``--out`` options that ends by calling :func:`write_result`.

Speed claims are ratios measured side by side in the same run (these machines are
shared and noisy). Every figure a benchmark writes is one :func:`compare` of two
:class:`Timed` measurements, so all results share one shape::

    "figures": {
      NAME: {
        "subject":  {"label", "unit", "rate": {min, median, max},
                     "seconds": {min, median, max, repeats}, "count_per_repeat"},
        "baseline": {... the same ...},
        "ratio": subject median rate / baseline median rate,
        ...extra headline numbers (MFU, time shares, ...)
      }
    }

``rate`` is units per second of each repeat (its min is the slowest repeat);
``seconds`` is the wall time of each repeat. ``bench/report.py`` renders these
tables for the README from the JSON files alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
_LOAD_AT_START = os.getloadavg() if hasattr(os, "getloadavg") else None


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes."""
    p = argparse.ArgumentParser(prog=f"bench/{name}.py", description=description)
    p.add_argument("--quick", action="store_true", help="tiny sizes, seconds (used by the tests)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=RESULTS / f"{name}.json", help="JSON output")
    return p


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """CPU model, cores, torch version, device and load average, recorded with every result.

    The load averages (1, 5, 15 minutes; at the benchmark's start and end) explain noise
    on a shared machine: a load above the core count means the run shared its cores.
    """
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": device,
    }
    if _LOAD_AT_START is not None:
        info["load_average_start"] = [round(x, 2) for x in _LOAD_AT_START]
        info["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


# -- timing ------------------------------------------------------------------------------


def synchronizer(device: str) -> Callable[[], None] | None:
    """``torch.cuda.synchronize`` for a CUDA device (kernels run asynchronously), else None."""
    import torch

    if str(device).startswith("cuda"):
        return lambda: torch.cuda.synchronize(device)
    return None


def time_calls(
    fn: Callable[[], Any], repeats: int, warmup: int = 1, sync: Callable[[], None] | None = None
) -> list[float]:
    """Seconds of each of ``repeats`` calls of ``fn``, after ``warmup`` untimed calls."""
    return interleaved({"fn": fn}, repeats, warmup, sync)["fn"]


def interleaved(
    fns: dict[str, Callable[[], Any]],
    repeats: int,
    warmup: int = 1,
    sync: Callable[[], None] | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each function, calls interleaved so all see the same machine load."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if sync:
                sync()
            t = time.perf_counter()
            fn()
            if sync:
                sync()
            times[name].append(time.perf_counter() - t)
    return times


def stats(values: Sequence[float]) -> dict[str, float]:
    """``{min, median, max, repeats}`` of a list of measurements."""
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "repeats": len(values),
    }


@dataclass(frozen=True)
class Timed:
    """Repeated measurements of one thing: units of work and wall seconds of each repeat.

    Attributes:
        label: what ran ("gato", "plain GPT", "raw env", ...).
        unit: the rate's unit ("tokens/s", "steps/s", ...).
        counts: units of work done in each repeat.
        seconds: wall time of each repeat.
    """

    label: str
    unit: str
    counts: tuple[float, ...]
    seconds: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.seconds or len(self.counts) != len(self.seconds):
            raise ValueError(f"{self.label}: one count per timed repeat, at least one repeat")

    @classmethod
    def of(cls, label: str, unit: str, count: float, seconds: Sequence[float]) -> Timed:
        """The same ``count`` units in every repeat."""
        return cls(label, unit, tuple(float(count) for _ in seconds), tuple(seconds))

    @property
    def rates(self) -> list[float]:
        return [c / s for c, s in zip(self.counts, self.seconds, strict=True)]

    @property
    def median_rate(self) -> float:
        return statistics.median(self.rates)

    def summary(self) -> dict[str, Any]:
        r = stats(self.rates)
        return {
            "label": self.label,
            "unit": self.unit,
            "rate": {"min": r["min"], "median": r["median"], "max": r["max"]},
            "seconds": stats(self.seconds),
            "count_per_repeat": statistics.median(self.counts),
        }


def compare(subject: Timed, baseline: Timed, **extra: Any) -> dict[str, Any]:
    """One figure: ``subject`` against ``baseline`` measured in the same run.

    ``ratio`` = subject's median rate / baseline's median rate (> 1: the subject is faster).
    ``extra`` holds further headline numbers of the figure (shown in the report).
    """
    return {
        "subject": subject.summary(),
        "baseline": baseline.summary(),
        "ratio": subject.median_rate / baseline.median_rate,
        **extra,
    }


# -- output ------------------------------------------------------------------------------


def _num(x: float) -> str:
    for at, scale, suffix in ((1e9, 1e9, "G"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if abs(x) >= at:
            return f"{x / scale:.3g}{suffix}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3g}"


def _extra_text(key: str, value: Any) -> str | None:
    """One extra headline number as text; shares and MFU as percentages."""
    if isinstance(value, dict):  # a flat dict of numbers (e.g. a time split); else detail
        parts = [_extra_text(k, v) for k, v in value.items()]
        if not parts or None in parts:
            return None
        return f"{key}: {', '.join(parts)}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if any(w in key for w in ("share", "fraction", "mfu")) or key in TIME_SPLIT:
        return f"{key} {100 * value:.1f}%"
    return f"{key} {_num(value)}"


COMPARISON_KEYS = ("subject", "baseline", "ratio")
TIME_SPLIT = ("model", "env", "tokenize", "sample", "other")
TABLE_HEADER = ["figure", "subject", "rate (median, min-max)", "baseline", "baseline rate",
                "ratio", "notes"]  # fmt: skip


def table_rows(figures: dict[str, dict[str, Any]]) -> list[list[str]]:
    """One row per figure: subject and baseline rates, the ratio and the extra numbers."""
    rows = []
    for name, f in figures.items():
        s, b = f["subject"], f["baseline"]
        sr, br = s["rate"], b["rate"]
        extras = [_extra_text(k, v) for k, v in f.items() if k not in COMPARISON_KEYS]
        rows.append([
            name,
            s["label"],
            f"{_num(sr['median'])} {s['unit']} ({_num(sr['min'])}-{_num(sr['max'])})",
            b["label"],
            f"{_num(br['median'])} {b['unit']}",
            f"{f['ratio']:.3g}x",
            "; ".join(e for e in extras if e),
        ])  # fmt: skip
    return rows


def print_table(figures: dict[str, dict[str, Any]]) -> None:
    """The figures as an aligned plain-text table on stdout."""
    rows = [TABLE_HEADER, *table_rows(figures)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(TABLE_HEADER))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip(), flush=True)


def write_result(
    out: Path,
    name: str,
    config: dict[str, Any],
    figures: dict[str, dict[str, Any]],
    device: str = "cpu",
    description: str = "",
) -> dict[str, Any]:
    """Print the table, write ``{name, description, machine, config, figures}`` atomically
    to ``out`` (``description``: what the benchmark measures, one line, for the report)."""
    for key, f in figures.items():
        if not set(COMPARISON_KEYS) <= set(f):
            raise ValueError(f"{name}: figure {key!r} is not a harness.compare(...) result")
    print_table(figures)
    result = {
        "name": name,
        "description": description,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(device),
        "config": config,
        "figures": figures,
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(result, f, indent=2)
    os.replace(tmp, out)
    return result


# -- shared fixtures ---------------------------------------------------------------------


def build_data_dir(root: Path, items: int, text_size: int, episodes: int = 0) -> Path:
    """A small offline data directory: a SentencePiece model of ``text_size`` pieces
    (``text.model``), ``items`` procedural scene captions (``captions.npz``, 64x64) and
    dialogues (``chat.jsonl``), and ``episodes`` expert episodes of the ``fake`` task
    (``episodes/fake``)."""
    from gato.data.captions import save_caption_set, scene_arrays
    from gato.data.collect import collect
    from gato.data.dialogues import scene_dialogues, write_chat_jsonl
    from gato.tokenizers.text import TextTokenizer

    root.mkdir(parents=True, exist_ok=True)
    caps = scene_arrays("train", items, seed=0, image_size=64)
    save_caption_set(root / "captions.npz", caps)
    dialogues = scene_dialogues(items, seed=0)
    write_chat_jsonl(root / "chat.jsonl", dialogues)
    lines = [str(c) for c in caps["captions"]] + [m["content"] for d in dialogues for m in d]
    lines += (REPO / "DESIGN.md").read_text(encoding="utf-8").splitlines()
    (root / "corpus.txt").write_text("\n".join(lines * 3) + "\n", encoding="utf-8")
    TextTokenizer.train([root / "corpus.txt"], root / "text.model", vocab_size=text_size)
    if episodes:
        collect("fake", episodes, root / "episodes" / "fake", seed=0, min_score_frac=0.0,
                progress=False)  # fmt: skip
    return root


def random_action_steps(make_env: Callable[[], Any], steps: int) -> float:
    """Seconds for ``steps`` uniform random actions on one env (resets at episode ends)."""
    env = make_env()
    env.reset(seed=0)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(steps)]
    t = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    elapsed = time.perf_counter() - t
    env.close()
    return elapsed
