"""FSDP2 for ``train.fsdp = true``: shard the model per block, gather full checkpoints.

``shard`` applies ``torch.distributed.fsdp.fully_shard`` to every transformer block,
then to the root (embeddings, final norm, head): each block's parameters are
all-gathered just before its forward/backward and freed after, and gradients are
reduce-scattered, so each of W processes holds 1/W of the weights, gradients and
AdamW moments between steps. It works on CPU with gloo as well as on CUDA with NCCL.

Checkpoints stay the single-process format: :func:`full_state` gathers the full
(unsharded) model and optimizer state onto rank 0's CPU, with the optimizer state
keyed by parameter index like ``optimizer.state_dict()``; :func:`load_optimizer_state`
is the way back. So an FSDP checkpoint loads in ``gato eval`` unchanged, and a run may
resume with or without FSDP, or with another process count.

Modules a micro-batch does not use (the patch embedding without images, the
observation-position table without observations) differ between ranks; a
reduce-scatter needs every rank to send every parameter, so unused ones send zeros
(``set_reduce_scatter_unused_params``). :class:`UsedModules` then gives back the
parameters no rank used a ``None`` gradient, so AdamW skips them as it does in one
process and under DDP (a zero gradient would still apply weight decay).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor


def shard(model: nn.Module, device: torch.device, world_size: int) -> nn.Module:
    """Shard ``model`` in place over all processes: one FSDP unit per block, then the root.

    The process group must be up. Call before building the optimizer: the parameters
    become DTensors (dim-0 shards). Returns ``model`` (its class now mixes in FSDPModule).
    """
    mesh = init_device_mesh(device.type, (world_size,))
    for block in model.blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    model.set_reduce_scatter_unused_params(True)  # see the module docstring
    return model


def local(t: torch.Tensor) -> torch.Tensor:
    """This process's part of a sharded tensor; a plain tensor as it is."""
    return t.to_local() if isinstance(t, DTensor) else t


def _param_names(model: nn.Module, optimizer: torch.optim.Optimizer) -> list[str]:
    """Fully qualified parameter names in the optimizer's index order (groups, then params)."""
    name_of = {id(p): n for n, p in model.named_parameters()}
    return [name_of[id(p)] for g in optimizer.param_groups for p in g["params"]]


def full_state(
    model: nn.Module, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The full model ``state_dict`` and optimizer state on rank 0's CPU (empty elsewhere).

    A collective: every rank must call it. The optimizer state is in the form of
    ``optimizer.state_dict()`` of the unsharded model (parameters by index).
    """
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    model_state = get_model_state_dict(model, options=options)
    by_name = get_optimizer_state_dict(model, optimizer, options=options)
    if not model_state:  # ranks other than 0 get nothing with cpu_offload
        return {}, {}
    index = {n: i for i, n in enumerate(_param_names(model, optimizer))}
    state = {index[n]: s for n, s in by_name["state"].items()}
    groups = [{**g, "params": [index[n] for n in g["params"]]} for g in by_name["param_groups"]]
    return model_state, {"state": state, "param_groups": groups}


def load_optimizer_state(
    model: nn.Module, optimizer: torch.optim.Optimizer, state_dict: dict[str, Any]
) -> None:
    """Load a full optimizer state (``optimizer.state_dict()`` form) into a sharded run.

    Every rank passes the same full state (each read the checkpoint) and keeps its shard.
    """
    names = _param_names(model, optimizer)
    by_name = {
        "state": {names[i]: s for i, s in state_dict["state"].items()},
        "param_groups": [
            {**g, "params": [names[i] for i in g["params"]]} for g in state_dict["param_groups"]
        ],
    }
    set_optimizer_state_dict(
        model, optimizer, by_name, options=StateDictOptions(full_state_dict=True)
    )


class UsedModules:
    """Which parameter-holding modules ran a forward on any rank since :meth:`reset`.

    Forward pre-hooks mark the modules; :meth:`drop_unused_grads` all-reduces the marks
    and sets the gradients of parameters no rank used to None.
    """

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.modules = [m for m in model.modules() if any(True for _ in m.parameters(False))]
        self.used = torch.zeros(len(self.modules))  # (M,) 1 = ran a forward
        self.device = device
        for i, m in enumerate(self.modules):
            m.register_forward_pre_hook(lambda *_, i=i: self.used.__setitem__(i, 1.0))

    def reset(self) -> None:
        self.used.zero_()

    def drop_unused_grads(self) -> None:
        """Collective: a parameter's gradient becomes None if no rank ran its module."""
        used = self.used.to(self.device)
        dist.all_reduce(used, op=dist.ReduceOp.MAX)
        for m, u in zip(self.modules, used.tolist(), strict=True):
            if not u:
                for p in m.parameters(False):
                    p.grad = None
