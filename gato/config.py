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

import dataclasses
import types
import typing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import tomllib

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
        patch_channels: width of the ResNet-v2 patch embedding block.
        patch_groups: GroupNorm groups in that block (paper: 32); divides patch_channels.
        patch_stem: stride (and kernel) of the stem convolution that cuts a patch into
            a ``(patch_size / patch_stem)^2`` grid before the residual block.
        dropout: dropout on embeddings, attention and residual branches (paper: 0.1).
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
    patch_channels: int = 64
    patch_groups: int = 32
    patch_stem: int = 4
    dropout: float = 0.1
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
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {self.dropout}")
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
