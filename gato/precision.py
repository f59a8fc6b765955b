"""The precision a run trains in: ``train.dtype = "auto"`` takes bf16 only where it is fast.

bf16 autocast roughly doubles matmul throughput on CPUs with native bf16 instructions
(x86 AVX512-BF16 or AMX, Arm's BF16 extension) and on CUDA GPUs that support it. On
other CPUs PyTorch still runs it, emulated, and a step is far slower than in fp32:
``cpu-small`` trained at 174 tokens/s in bf16 against 2,664 in fp32 on a 2-core AVX2-only
EPYC. So ``auto`` asks the hardware and falls back to fp32; an explicit ``bf16`` on such a
CPU is honoured, with a warning.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch

from gato.config import Precision

# /proc/cpuinfo flags (x86 "flags", aarch64 "Features") of native bf16 arithmetic
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags the kernel reports; empty where there is no such file."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return frozenset(flags)


def native_bf16(device: str, flags: frozenset[str] | None = None) -> bool:
    """Whether ``device`` computes bf16 natively (CPU: from ``flags``, default the
    machine's own)."""
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    flags = cpu_flags() if flags is None else flags
    return bool(flags & CPU_BF16_FLAGS)


def resolve(dtype: Precision, device: str, flags: frozenset[str] | None = None) -> Precision:
    """``auto`` -> bf16 where ``device`` has native bf16, else fp32; others unchanged."""
    if dtype != Precision.AUTO:
        return dtype
    return Precision.BF16 if native_bf16(device, flags) else Precision.FP32


def autocast(dtype: Precision, device: str | torch.device) -> AbstractContextManager:
    """The context a forward pass runs in for a resolved ``dtype``: bf16 autocast on
    ``device``'s type, or nothing (fp32)."""
    if dtype == Precision.BF16:
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return nullcontext()
