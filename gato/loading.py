"""Loading a trained checkpoint for inference: the model, its tokenizers, its tasks.

Every inference path (the env policy, ``gato eval``/``play``, captions, chat) starts
from :func:`load_trained`, so they all read a checkpoint the same way:

- weights from ``model.safetensors`` (nothing is unpickled; see ``gato.checkpoint``);
- the model shape from the resolved run config ``config.json`` (its ``model`` table);
  weights whose names or shapes do not match that config are a ValueError naming the
  first mismatches, never a torch traceback;
- the SentencePiece model from ``text.model`` if the run had text;
- the tasks the run was trained on, from the config's data mixture (see
  :func:`trained_tasks`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gato.checkpoint import Checkpoint, load_checkpoint, resolve_checkpoint, save_checkpoint
from gato.config import ModelConfig, RunConfig, SourceKind, from_dict, run_config_from_dict
from gato.envs.spec import TaskSpec
from gato.model import Gato
from gato.sequence import Tokenizers
from gato.tokenizers.image import ImageTokenizer
from gato.tokenizers.text import TextTokenizer


@dataclass
class Trained:
    """A checkpoint ready for inference.

    Attributes:
        model: the :class:`Gato` in eval mode, on the requested device.
        config: its :class:`ModelConfig`.
        tokenizers: configured exactly as training configured them (vocab, patch size,
            channels, patch resolution, SentencePiece model).
        tasks: names of the tasks in the training mixture, in mixture order, without
            repeats (episode tasks, "captions", "chat", ...).
        run: the resolved run config, or None when the checkpoint's config holds only a
            ``model`` table (e.g. one saved by a test or a conversion script).
        path: the checkpoint directory that was read.
    """

    model: Gato
    config: ModelConfig
    tokenizers: Tokenizers
    tasks: list[str] = field(default_factory=list)
    run: RunConfig | None = None
    path: Path | None = None

    def task_spec(self, task: str) -> TaskSpec:
        """The registered spec of ``task``, which this checkpoint must have been trained on.

        Raises:
            ValueError: an unknown task (listing the known ones), or one outside ``tasks``
                (a checkpoint without a task list is trusted).
        """
        from gato.envs import registry

        spec = registry.spec(task)
        if self.tasks and task not in self.tasks:
            raise ValueError(
                f"the checkpoint was not trained on {task!r} (its tasks: {', '.join(self.tasks)})"
            )
        return spec


def tokenizers_for(cfg: ModelConfig, text: TextTokenizer | None = None) -> Tokenizers:
    """The tokenizers a model of shape ``cfg`` reads (the same ones training builds)."""
    return Tokenizers(
        vocab=cfg.vocab,
        text=text,
        image=ImageTokenizer(patch_size=cfg.patch_size),
        image_channels=cfg.image_channels,
        patch_resolution=cfg.patch_resolution,
    )


def load_trained(path: str | os.PathLike, device: str | torch.device = "cpu") -> Trained:
    """Load a checkpoint directory, or a run directory's newest checkpoint, for inference.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: not a checkpoint, corrupt, a config that does not describe the
            weights, or a text model that does not fit the vocabulary.
    """
    directory = resolve_checkpoint(path)
    ckpt = load_checkpoint(directory, with_optimizer=False)
    where = f"{directory / 'config.json'}"
    data = ckpt.config
    if not isinstance(data.get("model"), dict):
        raise ValueError(f"{where}: no [model] table; cannot tell the model's shape")
    run = None
    try:
        if "data" in data and "train" in data:
            run = run_config_from_dict(data)
            cfg = run.model
        else:
            cfg = from_dict(ModelConfig, data["model"], "model")
    except ValueError as exc:  # e.g. an unknown key: say which file holds it
        raise ValueError(f"{where}: {exc}") from None
    text = None
    if ckpt.text_model is not None:
        text = TextTokenizer.from_bytes(ckpt.text_model, str(directory / "text.model"))
    tokenizers = tokenizers_for(cfg, text)  # checks the text model fits the vocabulary

    model = Gato(cfg)
    check_weights(model, ckpt.model, where)
    model.load_state_dict(ckpt.model)
    model.to(device).eval()
    return Trained(
        model=model,
        config=cfg,
        tokenizers=tokenizers,
        tasks=trained_tasks(data, ckpt.state),
        run=run,
        path=directory,
    )


def save_trained(
    run_dir: str | os.PathLike,
    model: Gato,
    tasks: Sequence[str],
    text: TextTokenizer | None = None,
    step: int = 0,
) -> Path:
    """Write ``model`` as an inference-only checkpoint ``run_dir/step_*`` (no optimizer).

    Its config holds only the ``model`` table and its state the task list; used by tests
    and by anything that builds a model outside ``gato train``.
    """
    ckpt = Checkpoint(
        model={k: v.detach().cpu() for k, v in model.state_dict().items()},
        config={"model": dataclasses.asdict(model.cfg)},
        text_model=None if text is None else text.model_bytes,
        state={"tasks": list(tasks)},
    )
    return save_checkpoint(run_dir, step, ckpt)


def check_weights(model: torch.nn.Module, weights: dict[str, torch.Tensor], where: str) -> None:
    """ValueError unless ``weights`` has exactly ``model``'s parameter names and shapes."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in weights.items()}
    problems = [f"missing {k}" for k in expected if k not in got]
    problems += [f"unexpected {k}" for k in got if k not in expected]
    problems += [
        f"{k} is {got[k]} in the weights but {expected[k]} in the config"
        for k in expected
        if k in got and got[k] != expected[k]
    ]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ValueError(
            f"{where}: the model config does not match the saved weights: "
            f"{'; '.join(problems[:3])}{more}"
        )


def trained_tasks(config: dict[str, Any], state: dict[str, Any] | None = None) -> list[str]:
    """Task names of a run, in mixture order, without repeats.

    ``state["tasks"]`` (if the trainer saved the list) wins. Otherwise each mixture entry
    gives its ``task``; an episodes entry without one is named by its store's manifest
    (``<data.dir>/<path>/manifest.json``, key ``task``) when the store is still there,
    else by the store directory's name (``episodes/cartpole`` -> ``cartpole``).
    """
    if state and isinstance(state.get("tasks"), list):
        return [str(t) for t in dict.fromkeys(state["tasks"])]
    data = config.get("data") or {}
    names: list[str] = []
    for entry in data.get("mixture") or []:
        name = str(entry.get("task") or "")
        kind = entry.get("kind")
        if not name and kind == SourceKind.CAPTIONS.value:
            name = "captions"
        elif not name and kind == SourceKind.DIALOGUES.value:
            name = "chat"
        elif not name:
            name = _store_task(Path(data.get("dir", ".")), Path(str(entry.get("path", ""))))
        if name:
            names.append(name)
    return list(dict.fromkeys(names))


def _store_task(data_dir: Path, path: Path) -> str:
    store = path if path.is_absolute() else data_dir / path
    try:
        task = json.loads((store / "manifest.json").read_text(encoding="utf-8")).get("task")
    except (OSError, ValueError, AttributeError):
        task = None
    return str(task) if task else path.name
