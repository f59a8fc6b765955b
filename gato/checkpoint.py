"""Checkpoints: one directory per save, written atomically, loaded without unpickling.

Layout of ``RUN/step_00001234/``::

    model.safetensors       model weights
    optimizer.safetensors   optimizer tensors (moments, steps), flattened by name
    state.json              everything else: step, optimizer hyper-parameters,
                            scheduler, RNG states, data position (plain JSON)
    config.json             the resolved config the run was started with
    text.model              the SentencePiece model (if the run has text)
    manifest.json           format version and the sha256 of every file above

Atomicity: files are written into a hidden temporary directory next to the
final one, fsynced, then the directory is renamed into place and the parent
fsynced. A crash or SIGKILL mid-save leaves at most a ``.tmp-*`` directory,
which is ignored and cleaned up; ``step_*`` directories are always complete.

Safety: tensors only ever come from safetensors, everything else from JSON;
nothing is unpickled. A directory that holds pickle files (``*.pt``, ``*.pth``,
``*.pkl``, ``*.bin``, ``*.ckpt``), instead of or next to the safetensors, is refused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gato.atomic import fsync_dir, fsync_file, give_default_mode
from gato.digest import file_sha256

FORMAT_VERSION = 1
STEP_DIR = re.compile(r"^step_(\d{8})$")
PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt"}


@dataclass
class Checkpoint:
    """What a checkpoint holds, in memory.

    Attributes:
        model: parameter name -> tensor (a ``state_dict``).
        config: the resolved run config as plain JSON data.
        text_model: serialized SentencePiece model, or None for a run without text.
        optimizer: a torch optimizer ``state_dict``, or None.
        state: any other JSON data (step, scheduler, RNG, data position).
        tensors: any other tensors (e.g. torch RNG state), saved with the optimizer file.
    """

    model: dict[str, torch.Tensor]
    config: dict[str, Any]
    text_model: bytes | None = None
    optimizer: dict[str, Any] | None = None
    state: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


# -- saving --------------------------------------------------------------------


def save_checkpoint(run_dir: str | os.PathLike, step: int, ckpt: Checkpoint, keep: int = 3) -> Path:
    """Write ``ckpt`` as ``run_dir/step_{step:08d}`` atomically; keep the newest ``keep``.

    Returns the final directory.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    final = run_dir / f"step_{step:08d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=run_dir))
    try:
        files: dict[str, bytes | Path] = {}
        save_file(_contiguous(ckpt.model), tmp / "model.safetensors")
        opt_tensors, opt_meta = flatten_optimizer_state(ckpt.optimizer)
        # "optim." and "extra." prefixes keep optimizer and other tensors apart.
        extra = {f"extra.{k}": v for k, v in ckpt.tensors.items()}
        save_file(_contiguous({**opt_tensors, **extra}), tmp / "optimizer.safetensors")
        state = {"step": step, "optimizer": opt_meta, **ckpt.state}
        files["state.json"] = json.dumps(state, indent=1).encode()
        files["config.json"] = json.dumps(ckpt.config, indent=2, sort_keys=True).encode()
        if ckpt.text_model is not None:
            files["text.model"] = ckpt.text_model
        for name, data in files.items():
            (tmp / name).write_bytes(data)
        manifest = {
            "format_version": FORMAT_VERSION,
            "step": step,
            "sha256": {p.name: file_sha256(p) for p in sorted(tmp.iterdir())},
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        for p in tmp.iterdir():
            give_default_mode(p)  # safetensors writes 0600
            fsync_file(p)
        give_default_mode(tmp)  # mkdtemp made it 0700
        if final.exists():  # re-saving the same step (e.g. after a resume): replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_dir(run_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _prune(run_dir, keep)
    return final


def _prune(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints and any leftover temp dirs."""
    for stale in run_dir.glob(".tmp-step_*"):
        shutil.rmtree(stale, ignore_errors=True)
    if keep > 0:
        for old in list_checkpoints(run_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)


# -- loading -------------------------------------------------------------------


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoint directories under ``run_dir``, oldest first."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return []
    found = [p for p in run_dir.iterdir() if p.is_dir() and STEP_DIR.match(p.name)]
    return sorted(found, key=lambda p: p.name)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint under ``run_dir``, or None."""
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """Accept a checkpoint directory or a run directory (takes its newest checkpoint)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if not path.is_dir():
        raise ValueError(f"checkpoint must be a directory, got a file: {path}")
    if (path / "manifest.json").exists() or (path / "model.safetensors").exists():
        return path
    latest = latest_checkpoint(path)
    if latest is None:
        refuse_pickles(path)
        raise ValueError(f"{path} is not a checkpoint (no manifest.json, no step_* directories)")
    return latest


def refuse_pickles(directory: Path) -> None:
    """ValueError if ``directory`` holds a pickle file (never opened, so never run)."""
    pickles = sorted(p.name for p in directory.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
    if pickles:
        raise ValueError(
            f"refusing to load {directory / pickles[0]}: pickle files can run arbitrary code; "
            "gato checkpoints are safetensors + JSON (delete or move it)"
        )


def checkpoint_step(path: str | os.PathLike) -> int:
    """The step a checkpoint (or a run directory's newest) was saved at, read from its
    manifest alone: cheap, so a caller can refuse work before loading any weights.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: not a checkpoint, or its manifest has no integer step.
    """
    path = resolve_checkpoint(path)
    step = _read_json(path / "manifest.json").get("step")
    if not isinstance(step, int) or isinstance(step, bool):
        raise ValueError(f"{path}: manifest.json has no step")
    return step


def load_checkpoint(path: str | os.PathLike, *, with_optimizer: bool = True) -> Checkpoint:
    """Load and verify a checkpoint directory (or a run directory's newest checkpoint).

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: a file is missing, corrupt (checksum or format), or a pickle.
    """
    path = resolve_checkpoint(path)
    refuse_pickles(path)
    manifest = _read_json(path / "manifest.json")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: checkpoint format {manifest.get('format_version')!r} is not supported "
            f"(this version reads {FORMAT_VERSION})"
        )
    for name, digest in manifest.get("sha256", {}).items():
        file = path / name
        if not file.is_file():
            raise ValueError(f"{path}: {name} is missing")
        if not with_optimizer and name == "optimizer.safetensors":
            continue
        if file_sha256(file) != digest:
            raise ValueError(f"{file} is corrupt (checksum mismatch); the file was changed or cut")
    for required in ("model.safetensors", "state.json", "config.json"):
        if required not in manifest.get("sha256", {}):
            raise ValueError(f"{path}: the manifest does not list {required}")

    model = _load_safetensors(path / "model.safetensors")
    state = _read_json(path / "state.json")
    config = _read_json(path / "config.json")
    text_model = (path / "text.model").read_bytes() if (path / "text.model").exists() else None
    optimizer, tensors = None, {}
    opt_meta = state.pop("optimizer", None)
    if with_optimizer:
        flat = _load_safetensors(path / "optimizer.safetensors")
        tensors = {k[len("extra.") :]: v for k, v in flat.items() if k.startswith("extra.")}
        opt_flat = {k: v for k, v in flat.items() if not k.startswith("extra.")}
        optimizer = unflatten_optimizer_state(opt_flat, opt_meta)
    return Checkpoint(model, config, text_model, optimizer, state, tensors)


def _load_safetensors(file: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(file)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{file} is not a valid safetensors file ({exc})") from None


def _read_json(file: Path) -> dict[str, Any]:
    if not file.is_file():
        raise ValueError(f"{file.parent}: {file.name} is missing; not a complete checkpoint")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{file} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{file} must hold a JSON object")
    return data


# -- optimizer state <-> (tensors, JSON) --------------------------------------


def flatten_optimizer_state(
    state_dict: dict[str, Any] | None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """Split a torch optimizer ``state_dict`` into named tensors and JSON metadata.

    ``state[i][key]`` tensors become ``"optim.{i}.{key}"``; non-tensor per-parameter
    values and ``param_groups`` go into the JSON part.
    """
    if state_dict is None:
        return {}, None
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, per_param in state_dict["state"].items():
        for key, value in per_param.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    meta = {"param_groups": state_dict["param_groups"], "scalars": scalars}
    return tensors, meta


def unflatten_optimizer_state(
    tensors: dict[str, torch.Tensor], meta: dict[str, Any] | None
) -> dict[str, Any] | None:
    """Inverse of :func:`flatten_optimizer_state`."""
    if meta is None:
        return None
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, idx, key = name.split(".", 2)
        state.setdefault(int(idx), {})[key] = value
    for idx, per_param in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(per_param)
    return {"state": state, "param_groups": meta["param_groups"]}


# -- file helpers --------------------------------------------------------------


def _contiguous(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or strided storage (e.g. a tied head); store copies.
    return {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
