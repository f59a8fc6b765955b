"""Shared plumbing for the benchmarks in ``bench/``.

Every benchmark is a script ``bench/NAME.py`` with ``--quick``, ``--device`` and
``--out`` options that ends by calling :func:`write_result`. Speed claims are
ratios measured side by side in the same run (these machines are shared and
noisy); absolute times are reported too, as min/median/max over repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def parser(name: str, description: str) -> argparse.ArgumentParser:
    """The options every benchmark takes."""
    p = argparse.ArgumentParser(prog=f"bench/{name}.py", description=description)
    p.add_argument("--quick", action="store_true", help="tiny sizes, seconds (used by the tests)")
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=RESULTS / f"{name}.json", help="JSON output")
    return p


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """CPU model, cores, torch version and device, recorded with every result."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": device,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def repeat(fn: Callable[[], Any], repeats: int, warmup: int = 1, sync: Callable | None = None):
    """Time ``fn`` ``repeats`` times after ``warmup`` calls -> stats dict in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if sync:
            sync()
        t = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t)
    return stats(times)


def stats(times: list[float]) -> dict[str, float]:
    return {
        "min": min(times),
        "median": statistics.median(times),
        "max": max(times),
        "repeats": len(times),
    }


def write_result(
    out: Path, name: str, config: dict[str, Any], figures: dict[str, Any], device: str = "cpu"
) -> dict[str, Any]:
    """Write ``{name, machine, config, figures}`` atomically to ``out`` and return it."""
    result = {
        "name": name,
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
