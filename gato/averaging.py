"""Uniform weight averaging of saved checkpoints (Polyak averaging over saves).

A behaviour-cloning policy's play can swing between checkpoints a few hundred steps
apart while its loss barely moves (a Pong clone's saves 250 steps apart played 10.8%,
42.7% and 12.0% of expert); the mean of a run's last saves is one model in place of
several draws. Saves of one run near the end of its schedule usually sit in one basin,
which is what makes their mean a sensible model (Izmailov et al., 2018, "Averaging
Weights Leads to Wider Optima and Better Generalization"). Whether it plays better is an
empirical question: docs/results/findings.md ("Averaging saved weights") has what it
did for Pong (a few points on saves that play alike, worse than the newest save when
they play far apart).

:func:`average_checkpoints` is pure: it takes loaded checkpoints and returns a new one
whose model weights are the element-wise mean and whose everything else (config,
optimizer moments, step, RNG and data position, text model) is the newest input's, so a
run can be resumed from the average as from that checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gato.checkpoint import Checkpoint


def average_checkpoints(checkpoints: Sequence[Checkpoint]) -> Checkpoint:
    """The checkpoint whose model weights are the mean of ``checkpoints``' weights.

    Floating-point weights are averaged in float64 and stored in their own dtype; any
    other tensor (an integer buffer) must be equal in all inputs. Everything but the
    weights comes from the checkpoint with the largest ``state["step"]`` (the last one
    given on a tie), and ``state["averaged_steps"]`` lists the inputs' steps in order.

    Raises:
        ValueError: fewer than two checkpoints, or they disagree on the model: other
            parameter names, shapes or dtypes, another model config, another text model,
            or unequal non-float tensors.
    """
    if len(checkpoints) < 2:
        raise ValueError(f"averaging needs at least two checkpoints, got {len(checkpoints)}")
    steps = [c.state["step"] for c in checkpoints]
    newest = max(range(len(checkpoints)), key=lambda i: (steps[i], i))
    first = checkpoints[0]
    for k, c in enumerate(checkpoints[1:], start=1):
        _check_same_model(first, c, k)
    mean: dict[str, torch.Tensor] = {}
    for name, ref in first.model.items():
        if ref.is_floating_point():
            total = torch.zeros(ref.shape, dtype=torch.float64)
            for c in checkpoints:
                total += c.model[name].to(torch.float64)
            mean[name] = (total / len(checkpoints)).to(ref.dtype)  # same shape and dtype
        else:
            mean[name] = ref.clone()
    base = checkpoints[newest]
    return Checkpoint(
        model=mean,
        config=base.config,
        text_model=base.text_model,
        optimizer=base.optimizer,
        state={**base.state, "averaged_steps": steps},
        tensors=base.tensors,
    )


def _check_same_model(a: Checkpoint, b: Checkpoint, k: int) -> None:
    """ValueError naming how checkpoint ``k`` differs from the first one, if it does."""
    where = f"checkpoint {k + 1} and checkpoint 1"
    if a.config.get("model") != b.config.get("model"):
        raise ValueError(f"{where} have different model configs; only one model's saves average")
    if a.text_model != b.text_model:
        raise ValueError(f"{where} have different text models (tokenizers)")
    if a.model.keys() != b.model.keys():
        names = sorted(a.model.keys() ^ b.model.keys())
        raise ValueError(f"{where} have different parameters: {', '.join(names[:3])}")
    for name, ta in a.model.items():
        tb = b.model[name]
        if ta.shape != tb.shape or ta.dtype != tb.dtype:
            raise ValueError(
                f"{where} differ in {name}: {tuple(ta.shape)} {ta.dtype} vs "
                f"{tuple(tb.shape)} {tb.dtype}"
            )
        if not ta.is_floating_point() and not torch.equal(ta, tb):
            raise ValueError(f"{where} differ in {name}, which is not a float tensor to average")
