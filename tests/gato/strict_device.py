"""A stand-in accelerator for device-placement tests on a machine without a GPU.

The plain ``meta`` device would catch a CPU tensor meeting the model's tensors, but it
holds no values: boolean-mask indexing (``x[mask]``, used by the model's embedding and
by the loss), ``bool(t)``, ``.item()`` and sampling all fail on it, so most of the
model's paths cannot run there at all (measured: ``Gato.embed`` stops at its first
``x[mask]``).

Here a tensor "on the device" is a :class:`DeviceTensor`: it *reports* ``device ==
meta`` (so ``torch.zeros(n, device=x.device)`` and ``model.new_cache`` put new tensors
on the device) but keeps real CPU values, so every path runs to the end and its
results can be compared with a plain CPU run. Inside :func:`strict_device`:

- factory calls and ``.to`` with ``device="meta"`` make device tensors (with values);
- an op that mixes a device tensor with a CPU tensor raises :class:`DeviceMismatch`,
  the error CUDA gives, with CUDA's exceptions: 0-dim CPU tensors (scalars), CPU
  index tensors in advanced indexing, and ``copy_`` (a cross-device copy);
- a CPU ``torch.Generator`` used to draw device tensors raises (CUDA refuses it too);
- ``.cpu()``, ``.tolist()`` and ``.item()`` give plain CPU values; ``.numpy()`` on a
  device tensor fails as on CUDA (it needs ``.cpu()`` first).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

DEVICE = torch.device("meta")
CPU = torch.device("cpu")
aten = torch.ops.aten

# Ops whose tensor-list argument 1 may hold CPU index tensors on CUDA.
_CPU_INDICES_OK = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default}
_CROSS_DEVICE_OK = {aten.copy_.default, aten._to_copy.default}


class DeviceMismatch(RuntimeError):
    """A CPU tensor met tensors on the device in one op."""


class DeviceTensor(torch.Tensor):
    """A CPU tensor that reports ``device == meta``; see the module docstring."""

    value: torch.Tensor

    @staticmethod
    def __new__(cls, value: torch.Tensor) -> DeviceTensor:
        return torch.Tensor._make_wrapper_subclass(
            cls,
            value.shape,
            strides=value.stride(),
            storage_offset=value.storage_offset(),
            dtype=value.dtype,
            layout=value.layout,
            device=DEVICE,
            requires_grad=value.requires_grad,
        )

    def __init__(self, value: torch.Tensor) -> None:
        self.value = value

    def tolist(self):  # CUDA tensors allow it (a copy to the host)
        return self.value.tolist()

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"DeviceTensor({self.value!r})"

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        return _run_on_device(func, args, kwargs or {})


def _on_cpu_device(x: object) -> object:
    return CPU if isinstance(x, torch.device) and x.type == DEVICE.type else x


def _check(func, args: tuple, kwargs: dict, tensors: bool = True) -> None:
    allowed: set[int] = set()
    if func in _CPU_INDICES_OK:
        allowed = {id(t) for t in args[1] if isinstance(t, torch.Tensor)}
    if func in _CROSS_DEVICE_OK:
        allowed |= {id(t) for t in args if isinstance(t, torch.Tensor)}
    for a in tree_flatten((args, kwargs))[0]:
        if isinstance(a, torch.Generator) and a.device.type == "cpu":
            raise DeviceMismatch(f"{func}: a CPU torch.Generator draws tensors on the device")
        if (
            tensors
            and isinstance(a, torch.Tensor)
            and not isinstance(a, DeviceTensor)
            and a.dim() > 0
            and id(a) not in allowed
        ):
            raise DeviceMismatch(
                f"{func}: a {a.device} tensor of shape {tuple(a.shape)} meets tensors on "
                f"the device (created without device=?)"
            )


def _run_on_device(func, args: tuple, kwargs: dict):
    """Run ``func`` on the CPU values; wrap the results unless they leave the device."""
    _check(func, args, kwargs)
    to_cpu = func is aten._local_scalar_dense.default or (
        isinstance(kwargs.get("device"), torch.device) and kwargs["device"].type == "cpu"
    )
    values = tree_map(lambda a: a.value if isinstance(a, DeviceTensor) else a, args)
    out = func(*values, **tree_map(_on_cpu_device, kwargs))
    if to_cpu:
        return out
    return tree_map(lambda o: DeviceTensor(o) if isinstance(o, torch.Tensor) else o, out)


class _TensorFromData(TorchFunctionMode):
    """``torch.tensor(data, device="meta")`` builds its value outside the dispatcher."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        device = kwargs.get("device")
        if func in (torch.tensor, torch.as_tensor) and device is not None:
            if torch.device(device).type == DEVICE.type:
                return DeviceTensor(func(*args, **{**kwargs, "device": CPU}))
        return func(*args, **kwargs)


class _Factories(TorchDispatchMode):
    """Makes ``device="meta"`` factory calls and ``.to("meta")`` produce device tensors."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if any(isinstance(a, DeviceTensor) for a in tree_flatten((args, kwargs))[0]):
            return func(*args, **kwargs)  # DeviceTensor.__torch_dispatch__ handles it
        device = kwargs.get("device")
        if isinstance(device, torch.device) and device.type == DEVICE.type:
            _check(func, args, kwargs, tensors=False)  # a *_like template may be on the CPU
            return DeviceTensor(func(*args, **{**kwargs, "device": CPU}))
        return func(*args, **kwargs)


@contextmanager
def strict_device() -> Iterator[torch.device]:
    """Inside: ``meta`` is a strict stand-in accelerator. Yields the device to use."""
    with _TensorFromData(), _Factories():
        yield DEVICE


def is_on_device(t: torch.Tensor) -> bool:
    return isinstance(t, DeviceTensor)


def values(t: torch.Tensor) -> torch.Tensor:
    """The CPU values of a device tensor (a plain tensor is returned as is)."""
    return t.value if isinstance(t, DeviceTensor) else t
