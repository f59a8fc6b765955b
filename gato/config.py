"""Typed configuration: frozen dataclasses loaded strictly from TOML.

Every config is a frozen dataclass. :func:`from_dict` turns plain TOML data into
one, refusing unknown keys and wrong types with a message that names the key
(``unknown key 'model.foo'``, ``model.n_layer: expected int, got str``), so a
typo in a config file is an error instead of a silently ignored setting. It
handles nested dataclasses and tuples, so other configs (training recipes, task
mixtures) are new dataclasses loaded by the same function.

Model presets live in ``configs/models/<name>.toml`` (installed as package data
of ``gato.configs``) and load with :func:`load_preset`.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

from gato.tokenizers.vocab import Vocab

T = TypeVar("T")


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a Gato model.

    Attributes:
        name: preset name, for logs and checkpoints.
        n_layer, n_head, d_model, d_ff: decoder depth, heads, width, MLP hidden width.
        text_size: number of SentencePiece pieces T (paper: 32000).
        bins: value bins shared by discrete and continuous values (paper: 1024).
        context: most tokens a query attends to (training rows are at most this long;
            the KV cache slides past it at inference). Paper: 1024.
        patch_size: side of the square image patches (paper: 16).
        image_channels: channels of a patch (3 for RGB; grey frames are repeated or
            zero-padded by the caller's tokenizer setup).
        max_obs_tokens: entries of the local observation position table (the most
            tokens one timestep's observation may have).
        patch_resolution: entries of the row and of the column patch position tables
            (paper: 128 intervals).
        patch_jitter: in training, read a patch's position at an entry drawn uniformly
            from its quantised interval (the paper's augmentation); off, training reads
            the entry evaluation reads, the interval's lower middle.
        patch_channels: width of the ResNet-v2 patch embedding block.
        patch_groups: GroupNorm groups in that block (paper: 32); divides patch_channels.
        patch_stem: stride (and kernel) of the stem convolution that cuts a patch into
            a ``(patch_size / patch_stem)^2`` grid before the residual block.
        dropout: dropout on embeddings and residual branches (paper: 0.1).
        attn_dropout: dropout on attention probabilities. Off by default: any value > 0
            makes ``scaled_dot_product_attention`` leave its fused CPU kernel for the math
            path, which materialises ``(B, H, T, T)`` and trained about 8x slower here.
        tie_head: the output head reuses the token embedding matrix.
        rope_base: base of the rotary position embedding frequencies.
    """

    name: str
    n_layer: int
    n_head: int
    d_model: int
    d_ff: int
    text_size: int
    bins: int = 1024
    context: int = 1024
    patch_size: int = 16
    image_channels: int = 3
    max_obs_tokens: int = 512
    patch_resolution: int = 128
    patch_jitter: bool = True
    patch_channels: int = 64
    patch_groups: int = 32
    patch_stem: int = 4
    dropout: float = 0.1
    attn_dropout: float = 0.0
    tie_head: bool = True
    rope_base: float = 10000.0

    def __post_init__(self) -> None:
        for key in (
            "n_layer",
            "n_head",
            "d_model",
            "d_ff",
            "text_size",
            "context",
            "patch_size",
            "image_channels",
            "max_obs_tokens",
            "patch_resolution",
            "patch_channels",
            "patch_groups",
            "patch_stem",
        ):
            if getattr(self, key) < 1:
                raise ValueError(f"model.{key} must be >= 1, got {getattr(self, key)}")
        if self.d_model % self.n_head:
            raise ValueError(
                f"model.d_model ({self.d_model}) must be divisible by n_head ({self.n_head})"
            )
        if (self.d_model // self.n_head) % 2:
            raise ValueError(
                f"model: head size d_model/n_head = {self.d_model // self.n_head} must be even "
                "(rotary embeddings rotate pairs of channels)"
            )
        if self.patch_channels % self.patch_groups:
            raise ValueError(
                f"model.patch_groups ({self.patch_groups}) must divide "
                f"patch_channels ({self.patch_channels})"
            )
        if self.patch_size % self.patch_stem:
            raise ValueError(
                f"model.patch_stem ({self.patch_stem}) must divide patch_size ({self.patch_size})"
            )
        for name in ("dropout", "attn_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"model.{name} must be in [0, 1), got {getattr(self, name)}")
        Vocab(self.text_size, self.bins)  # validates both

    @property
    def vocab(self) -> Vocab:
        """The id space this model reads and writes."""
        return Vocab(self.text_size, self.bins)

    @property
    def head_size(self) -> int:
        return self.d_model // self.n_head


# --- strict TOML -> dataclass ----------------------------------------------------------


def from_dict(cls: type[T], data: Any, where: str = "model") -> T:
    """Build dataclass ``cls`` from plain data (parsed TOML), strictly.

    Unknown keys, missing required keys and values of the wrong type raise
    ValueError naming the dotted key. ``int`` is accepted where ``float`` is expected
    (TOML writes ``1`` for ``1.0``); ``bool`` is never accepted as a number.
    Nested dataclass fields take tables; ``tuple[X, ...]`` fields take arrays.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a table, got {_type_name(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise ValueError(f"unknown key '{where}.{key}' (known: {', '.join(sorted(fields))})")
    values = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ValueError(f"{where}: missing key '{name}'")
            continue
        values[name] = _convert(hints[name], data[name], f"{where}.{name}")
    try:
        return cls(**values)
    except TypeError as exc:  # a dataclass rejecting its arguments
        raise ValueError(f"{where}: {exc}") from None


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError(errors[0] if len(errors) == 1 else f"{where}: no type of {tp} fits")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected an array, got {_type_name(value)}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ValueError(f"{where}: expected {len(args)} items, got {len(value)}")
        pairs = enumerate(zip(args, value, strict=True))
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in pairs)
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(value)
        except ValueError:
            known = ", ".join(repr(m.value) for m in tp)
            raise ValueError(f"{where}: expected one of {known}, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where}: expected float, got {_type_name(value)}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}: expected int, got {_type_name(value)}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise ValueError(f"{where}: expected {tp.__name__}, got {_type_name(value)}")
        return value
    raise TypeError(f"{where}: from_dict does not support fields of type {tp!r}")


def _type_name(value: Any) -> str:
    return {dict: "table", list: "array"}.get(type(value), type(value).__name__)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file; a syntax error is a ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config not found: {path}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML ({exc})") from None


def model_config_from_toml(text: str, where: str = "model") -> ModelConfig:
    """A :class:`ModelConfig` from TOML text holding a ``[model]`` table."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{where}: invalid TOML ({exc})") from None
    unknown = set(data) - {"model"}
    if unknown:
        raise ValueError(f"unknown key '{sorted(unknown)[0]}' (expected a [model] table)")
    if "model" not in data:
        raise ValueError("missing table [model]")
    return from_dict(ModelConfig, data["model"], where)


def preset_names() -> list[str]:
    """Names of the model presets shipped in ``configs/models``."""
    folder = resources.files("gato.configs") / "models"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_preset(name: str) -> ModelConfig:
    """The model preset ``configs/models/<name>.toml``."""
    path = resources.files("gato.configs") / "models" / f"{name}.toml"
    if not path.is_file():
        raise ValueError(f"unknown model preset {name!r}; known: {', '.join(preset_names())}")
    try:
        return model_config_from_toml(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ValueError(f"preset {name!r}: {exc}") from None


# --- training run: recipe, optimiser, data mixture -------------------------------------
# (`gato train` reads one TOML file with [train], [optim], [data] and optionally [model]
# tables; `--set key.sub=value` overrides any key before the file is checked.)


class SourceKind(str, Enum):
    """What a mixture entry reads."""

    EPISODES = "episodes"  # an episode store directory (`gato data collect`)
    CAPTIONS = "captions"  # a caption set .npz (`gato data scenes|captions`)
    DIALOGUES = "dialogues"  # a chat JSONL file (`gato data dialogues`)


class Precision(str, Enum):
    FP32 = "fp32"
    BF16 = "bf16"  # autocast matmuls to bfloat16; parameters and optimiser stay fp32
    AUTO = "auto"  # bf16 where the device computes it natively, else fp32 (gato.precision)


@dataclass(frozen=True)
class MixtureEntry:
    """One source of training rows.

    Attributes:
        kind: what ``path`` holds.
        path: file or directory, relative to ``data.dir`` unless absolute.
        weight: relative frequency of this source's rows in a batch (> 0).
        task: name for per-task metrics; empty = the episodes' task, "captions" or "chat".
    """

    kind: SourceKind
    path: str
    weight: float = 1.0
    task: str = ""

    def __post_init__(self) -> None:
        if not self.weight > 0 or self.weight == float("inf"):
            raise ValueError(f"mixture weight must be a positive finite number, got {self.weight}")

    @property
    def task_name(self) -> str:
        if self.task:
            return self.task
        return {SourceKind.CAPTIONS: "captions", SourceKind.DIALOGUES: "chat"}.get(self.kind, "")


@dataclass(frozen=True)
class DataConfig:
    """Where training rows come from.

    Attributes:
        dir: data directory; relative entry paths and the tokenizer are found under it.
        tokenizer: SentencePiece model file (relative to ``dir`` unless absolute).
        mixture: the sources, each with a weight.
        prompt_fraction: share of episode rows preceded by a demonstration (paper: 0.25).
        heldout_fraction: share of each source's items kept out of training for the
            held-out loss (the last items of the source; at least one when it has two).
        workers: background data-loading processes (0 = load in the training process).
    """

    dir: str = "data"
    tokenizer: str = "text.model"
    mixture: tuple[MixtureEntry, ...] = ()
    prompt_fraction: float = 0.25
    heldout_fraction: float = 0.1
    workers: int = 1

    def __post_init__(self) -> None:
        if not self.mixture:
            raise ValueError("data.mixture: needs at least one [[data.mixture]] entry")
        if not 0.0 <= self.prompt_fraction <= 1.0:
            raise ValueError(f"data.prompt_fraction must be in [0, 1], got {self.prompt_fraction}")
        if not 0.0 <= self.heldout_fraction < 1.0:
            raise ValueError(
                f"data.heldout_fraction must be in [0, 1), got {self.heldout_fraction}"
            )
        if self.workers < 0:
            raise ValueError(f"data.workers must be >= 0, got {self.workers}")

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else Path(self.dir) / p


@dataclass(frozen=True)
class OptimConfig:
    """AdamW and its schedule (linear warm-up to ``lr``, cosine decay to ``lr * min_ratio``).

    Attributes:
        clip: global gradient-norm clipping threshold (0 = no clipping).
        embedding_eps: Adam's ``eps`` for the embedding tables alone (None: ``eps``). A
            floor on the gradient scale Adam normalises by: rows whose gradients stay
            far below it (pieces no batch shows, pushed only through a tied head's
            softmax) take steps shrunk by about ``gradient / embedding_eps`` instead of
            full-size ones (docs/results/findings.md, "what the tied head costs").
    """

    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.1
    eps: float = 1e-8
    embedding_eps: float | None = None
    warmup: int = 100
    min_ratio: float = 0.1
    clip: float = 1.0

    def __post_init__(self) -> None:
        if self.warmup < 1:
            raise ValueError(f"optim.warmup must be >= 1, got {self.warmup}")
        if not 0.0 <= self.min_ratio <= 1.0:
            raise ValueError(f"optim.min_ratio must be in [0, 1], got {self.min_ratio}")
        if self.clip < 0:
            raise ValueError(f"optim.clip must be >= 0, got {self.clip}")
        for key in ("eps", "embedding_eps"):
            value = getattr(self, key)
            if value is not None and not value > 0:
                raise ValueError(f"optim.{key} must be > 0, got {value}")


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe.

    Attributes:
        model: model preset name (``configs/models/<name>.toml``); keys of a ``[model]``
            table override the preset's. Empty: the ``[model]`` table is the whole model.
        seed: everything random derives from it (init, batches, dropout).
        device: torch device; under torchrun CUDA ranks use ``cuda:LOCAL_RANK``.
        threads: ``torch.set_num_threads`` per process.
        dtype: ``bf16`` autocast, plain ``fp32`` (needed for bit-exact resume) or
            ``auto``: bf16 where the device computes it natively, else fp32
            (``gato.precision``; emulated bf16 is an order of magnitude slower).
        compile: ``torch.compile`` the model.
        steps: optimiser steps of the whole run (the cosine ends here).
        batch_size: rows per micro-batch per process. Global batch per optimiser step =
            batch_size x grad_accum x world size.
        grad_accum: micro-batches accumulated per optimiser step.
        context: tokens per row; 0 = the model's context.
        log_interval, eval_interval, checkpoint_interval: in optimiser steps (0 = never;
            a checkpoint is always written at the end).
        eval_batches: held-out batches per task at each evaluation.
        keep: newest checkpoints kept.
        fsdp: when world size > 1, shard the model with FSDP2 (``fully_shard`` per block,
            then the root; ``gato.sharding``) instead of DDP. CPU (gloo) and CUDA.
        action_dropout: probability that an action token of the model's input is replaced
            by a random legal action of its task; targets stay the true actions
            (``gato.action_dropout``: against copying the previous action). 0 = off.
    """

    model: str = ""
    seed: int = 0
    device: str = "cpu"
    threads: int = 2
    dtype: Precision = Precision.FP32
    compile: bool = False
    steps: int = 1000
    batch_size: int = 8
    grad_accum: int = 1
    context: int = 0
    log_interval: int = 10
    eval_interval: int = 100
    eval_batches: int = 2
    checkpoint_interval: int = 500
    keep: int = 3
    fsdp: bool = False
    action_dropout: float = 0.0

    def __post_init__(self) -> None:
        for key in ("threads", "steps", "batch_size", "grad_accum", "eval_batches"):
            if getattr(self, key) < 1:
                raise ValueError(f"train.{key} must be >= 1, got {getattr(self, key)}")
        if not 0.0 <= self.action_dropout < 1.0:
            raise ValueError(f"train.action_dropout must be in [0, 1), got {self.action_dropout}")
        for key in ("context", "log_interval", "eval_interval", "checkpoint_interval", "keep"):
            if getattr(self, key) < 0:
                raise ValueError(f"train.{key} must be >= 0, got {getattr(self, key)}")


@dataclass(frozen=True)
class RunConfig:
    """Everything ``gato train`` needs; saved resolved (preset expanded) with each checkpoint."""

    train: TrainConfig
    optim: OptimConfig
    data: DataConfig
    model: ModelConfig

    @property
    def context(self) -> int:
        return self.train.context or self.model.context

    def to_dict(self) -> dict[str, Any]:
        """Plain data (enums as their values, tuples as lists): JSON and TOML ready."""
        return _plain(dataclasses.asdict(self))


RUN_TABLES = ("train", "optim", "data", "model")


def run_config_from_dict(data: dict[str, Any]) -> RunConfig:
    """A :class:`RunConfig` from parsed TOML (or a saved ``config.json``), strictly."""
    if not isinstance(data, dict):
        raise ValueError("a run config must be a table")
    for key in data:
        if key not in RUN_TABLES:
            raise ValueError(f"unknown key '{key}' (known tables: {', '.join(RUN_TABLES)})")
    train = from_dict(TrainConfig, data.get("train", {}), "train")
    optim = from_dict(OptimConfig, data.get("optim", {}), "optim")
    if "data" not in data:
        raise ValueError("missing table [data] (with at least one [[data.mixture]] entry)")
    data_cfg = from_dict(DataConfig, data["data"], "data")
    model_table = data.get("model", {})
    if not isinstance(model_table, dict):
        raise ValueError(f"model: expected a table, got {_type_name(model_table)}")
    if train.model:
        base = dataclasses.asdict(load_preset(train.model))
        unknown = sorted(set(model_table) - set(base))
        if unknown:
            raise ValueError(f"unknown key 'model.{unknown[0]}' (known: {', '.join(sorted(base))})")
        model_table = {**base, **model_table}
    elif not model_table:
        raise ValueError("no model: set train.model to a preset name or give a [model] table")
    model = from_dict(ModelConfig, model_table, "model")
    if train.context > model.context:
        raise ValueError(
            f"train.context ({train.context}) exceeds the model's context ({model.context})"
        )
    return RunConfig(train, optim, data_cfg, model)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=3e-4"`` -> (["optim", "lr"], 0.0003).

    The value is read as a TOML value (numbers, booleans, strings, arrays, ``inf``);
    anything that is not valid TOML is taken as a bare string, so ``train.model=debug``
    needs no quotes. Types are checked later, against the dataclasses.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set expects KEY=VALUE (like optim.lr=3e-4), got {text!r}")
    parts = [p.strip() for p in key.strip().split(".")]
    if any(not p for p in parts):
        raise ValueError(f"--set {text!r}: empty part in key {key!r}")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return parts, value


def apply_override(data: dict[str, Any], parts: list[str], value: Any) -> None:
    """Set ``data[parts[0]][parts[1]]... = value`` in parsed TOML, in place.

    Missing tables are created (unknown keys are caught by :func:`run_config_from_dict`);
    an integer part indexes an array of tables (``data.mixture.0.weight=2``).
    """
    node: Any = data
    where = ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = f"{where}.{part}" if where else part
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ValueError(f"--set {where}: index out of range (array of {len(node)})")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
            continue
        if not isinstance(node, dict):
            raise ValueError(f"--set {where}: {'.'.join(parts[:i])} is not a table")
        if last:
            node[part] = value
        else:
            node = node.setdefault(part, {})


def load_run_config(
    path: str | Path | None, overrides: Sequence[str] = (), base: dict | None = None
) -> RunConfig:
    """Read a run config file (or ``base`` data), apply ``--set`` overrides, check it all.

    Raises ValueError / FileNotFoundError naming the file, key or path at fault.
    """
    data = load_toml(path) if path is not None else copy.deepcopy(base or {})
    for text in overrides:
        apply_override(data, *parse_override(text))
    return run_config_from_dict(data)


def check_data_paths(cfg: RunConfig) -> None:
    """Every path the run reads must exist; FileNotFoundError naming the key and path."""
    d = Path(cfg.data.dir)
    if not d.is_dir():
        raise FileNotFoundError(f"data.dir: directory not found: {d}")
    if cfg.data.tokenizer:
        tok = cfg.data.resolve(cfg.data.tokenizer)
        if not tok.is_file():
            raise FileNotFoundError(f"data.tokenizer: file not found: {tok}")
    elif any(e.kind != SourceKind.EPISODES for e in cfg.data.mixture):
        raise ValueError("data.tokenizer: captions and dialogues need a SentencePiece model")
    for i, entry in enumerate(cfg.data.mixture):
        p = cfg.data.resolve(entry.path)
        if not p.exists():
            raise FileNotFoundError(f"data.mixture[{i}].path: not found: {p}")


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
