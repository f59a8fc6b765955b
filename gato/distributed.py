"""One switch for multi-process training: ``torchrun`` sets the env, this reads it.

Under ``torchrun --nproc_per_node=N`` the environment carries ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``; we then join the process group (gloo on CPU,
NCCL on CUDA) and the trainer wraps the model in DistributedDataParallel (or, with
``train.fsdp``, shards it: ``gato.sharding``). Without them everything runs in one
process and nothing here touches ``torch.distributed``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistEnv:
    """Where this process sits in the job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """The process that logs, evaluates and writes checkpoints."""
        return self.rank == 0


def from_environment() -> DistEnv:
    """Read torchrun's variables; a plain ``python`` launch gives a single process."""
    if "WORLD_SIZE" not in os.environ:
        return DistEnv()
    try:
        return DistEnv(
            rank=int(os.environ["RANK"]),
            world_size=int(os.environ["WORLD_SIZE"]),
            local_rank=int(os.environ.get("LOCAL_RANK", os.environ["RANK"])),
        )
    except (KeyError, ValueError) as exc:
        raise ValueError(f"inconsistent torchrun environment: {exc}") from None


def setup(env: DistEnv, device: str) -> torch.device:
    """Join the process group (if distributed) and return this process's device."""
    if device.startswith("cuda"):
        dev = torch.device("cuda", env.local_rank) if env.enabled else torch.device(device)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device(device)
    if env.enabled and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend, rank=env.rank, world_size=env.world_size)
    return dev


def teardown(env: DistEnv) -> None:
    if env.enabled and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_mean(value: torch.Tensor, env: DistEnv) -> torch.Tensor:
    """Average a tensor over processes (identity in a single process)."""
    if env.enabled:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= env.world_size
    return value
