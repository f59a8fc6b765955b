"""One token stream: episodes, captions and dialogues become the rows the model reads.

This module owns the representation every model input takes, :class:`TokenBatch`,
and (below) the builders that produce it.

Conventions (fixed here, relied on by the model, the loss, the policy and generation):

- Rows are right-padded with ``vocab.pad``; padding only ever follows real tokens,
  so causal attention alone keeps real tokens from seeing padding.
- ``loss_mask[b, t]`` is true when token ``t`` of row ``b`` is a *target*: the logits
  at position ``t - 1`` are trained to predict it. Position 0 is never a target.
- Image patches are not ids: their token id is ``vocab.patch`` and their pixels sit
  in ``patches``, one entry per ``Kind.IMAGE`` position, in row-major order over
  ``(B, T)`` (row 0's patches first, left to right, then row 1's, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import torch


class Kind(IntEnum):
    """What a position of a row holds."""

    PAD = 0
    TEXT = 1  # SentencePiece ids: caption, dialogue, or a text observation
    IMAGE = 2  # an image patch (id == vocab.patch; pixels in TokenBatch.patches)
    OBS_VALUE = 3  # a discrete or continuous observation value (a bin id)
    SEPARATOR = 4  # the `|` between a timestep's observation and its action
    ACTION = 5  # an action value (a bin id)


@dataclass
class TokenBatch:
    """A batch of token rows, as the model consumes it.

    Attributes:
        tokens: ``(B, T)`` int64 ids of the shared vocabulary.
        kinds: ``(B, T)`` int64 :class:`Kind` of every position.
        obs_pos: ``(B, T)`` int64 local observation position (index of the token inside
            its timestep's observation, 0-based); 0 where the token is no observation.
        loss_mask: ``(B, T)`` bool, true where the token is a training target
            (text targets and action tokens only).
        patches: ``(N, C, p, p)`` float32 pixels of the ``N`` image positions, in the
            order they appear scanning rows then positions; values in ``[-1/sqrt(p), 1/sqrt(p)]``.
        patch_pos: ``(N, 4)`` int64 quantised ``row_lo, row_hi, col_lo, col_hi``
            (``hi`` exclusive) of each patch, from ``gato.tokenizers.image.patch_intervals``.
        tasks: ``B`` task names, for per-task metrics ("captions", "chat", "pong", ...).
    """

    tokens: torch.Tensor
    kinds: torch.Tensor
    obs_pos: torch.Tensor
    loss_mask: torch.Tensor
    patches: torch.Tensor
    patch_pos: torch.Tensor
    tasks: list[str] = field(default_factory=list)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.tokens.shape)  # type: ignore[return-value]

    def to(self, device: torch.device | str) -> TokenBatch:
        return TokenBatch(
            tokens=self.tokens.to(device),
            kinds=self.kinds.to(device),
            obs_pos=self.obs_pos.to(device),
            loss_mask=self.loss_mask.to(device),
            patches=self.patches.to(device),
            patch_pos=self.patch_pos.to(device),
            tasks=list(self.tasks),
        )
