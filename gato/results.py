"""The README "Results" tables and plots, made from the JSON the evaluations wrote.

``scripts/results.py`` calls :func:`results_markdown` on a finished ``make generalist``
run; nothing here runs a model. Inputs (all written by ``gato eval`` / ``gato eval-vl``
``--json``, see ``scripts/generalist.sh``):

- ``RUN/eval.json``: the generalist on every control task (plus its VL rows);
- ``RUN/eval-prompted*.json``: the same checkpoint and seeds with demonstration prompts;
- ``RUN/eval-median*.json``: continuous-action tasks decoded by the median bin;
- ``RUN/eval-vl.json``: captions, zero-shot labels, chat perplexity (else the same rows
  from ``eval.json``'s ``metrics``, which ``gato eval --task all`` adds);
- ``ABLATIONS/<task>-only/eval.json``: one-task models on their share of the tokens;
- ``ABLATIONS/<task>-only-<change>/eval.json``: the same trained with a change (e.g.
  ``pendulum-only-action-dropout``); ``eval-median.json`` beside either: median decoding,
  ``eval-sampled.json``: actions sampled at temperature 1;
- ``ABLATIONS/text-only/eval-vl.json``: the text-only model's chat perplexity;
- ``RUN/metrics.jsonl``: the training log (held-out loss per task).

A missing file drops its rows or column; the tables say nothing about runs not made.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HALF_EXPERT = 0.5  # the paper's headline threshold
PIXEL_TASKS = frozenset({"pong", "breakout", "freeway", "boxing"})


@dataclass(frozen=True)
class ControlRow:
    """One control task of an evaluation JSON."""

    task: str
    random: float
    expert: float
    mean: float
    std: float
    episodes: int
    normalised: float

    @classmethod
    def from_json(cls, d: Mapping) -> ControlRow:
        return cls(
            task=d["task"],
            random=d["random_score"],
            expert=d["expert_score"],
            mean=d["mean"],
            std=d["std"],
            episodes=len(d["returns"]),
            normalised=d["normalised"],
        )


def read_json(path: Path) -> dict | list | None:
    """The parsed file, or None when it does not exist.

    Raises ValueError naming the file when it is not JSON, and for an interrupted
    ``gato eval`` report: its partial results must not pass for the evaluation's.
    """
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    if isinstance(data, dict) and data.get("interrupted"):
        raise ValueError(f"{path}: an interrupted evaluation (partial results); run it again")
    return data


def control_rows(report: Mapping | None) -> dict[str, ControlRow]:
    """task -> row for every control task with reference scores in an eval JSON."""
    if not report:
        return {}
    rows = [ControlRow.from_json(t) for t in report["tasks"] if t.get("normalised") is not None]
    return {r.task: r for r in rows}


def vl_values(rows: Sequence[Mapping] | None) -> dict[tuple[str, str], float]:
    """(task, metric) -> value of an ``eval-vl --json`` list."""
    return {(r["task"], r["metric"]): float(r["value"]) for r in rows or []}


def _pct(x: float | None) -> str:
    return "-" if x is None or math.isnan(x) else f"{100 * x:.1f}%"


def _score_cell(row: ControlRow | None) -> str:
    """A normalised score, bold at >= 50% of expert; '-' without a row."""
    if row is None:
        return "-"
    mark = "**" if row.normalised >= HALF_EXPERT else ""
    return f"{mark}{_pct(row.normalised)}{mark}"


def control_table(main: Mapping[str, ControlRow], prompted: Mapping[str, ControlRow]) -> str:
    """Markdown: task, random, expert, agent mean ± std, normalised (and with prompts)."""
    head = "| task | random | expert | agent | normalised |"
    rule = "| --- | --- | --- | --- | --- |"
    if prompted:
        head += " with prompt |"
        rule += " --- |"
    lines = [head, rule]
    for r in main.values():
        name = f"{r.task} (pixels)" if r.task in PIXEL_TASKS else r.task
        line = (
            f"| {name} | {r.random:.2f} | {r.expert:.2f} | {r.mean:.2f} ± {r.std:.2f} "
            f"| {_score_cell(r)} |"
        )
        if prompted:
            line += f" {_score_cell(prompted.get(r.task))} |"
        lines.append(line)
    return "\n".join(lines)


def headline(rows: Mapping[str, ControlRow], protocol: str = "") -> str:
    """One sentence: tasks at >= 50% of expert, mean normalised score, episodes.

    ``protocol`` (e.g. "with demonstration prompts") is added after the count.
    """
    if not rows:
        return "no control tasks evaluated"
    n = len(rows)
    hit = sum(r.normalised >= HALF_EXPERT for r in rows.values())
    mean = sum(r.normalised for r in rows.values()) / n
    eps = sorted({r.episodes for r in rows.values()})
    ep = f"{eps[0]}" if len(eps) == 1 else f"{eps[0]}-{eps[-1]}"
    return (
        f"**{hit} of {n} control tasks at >= 50% of expert{' ' + protocol if protocol else ''}** "
        f"({100 * hit / n:.0f}%; goal 80%), "
        f"mean normalised score {_pct(mean)}, {ep} episodes per task"
    )


def _points(a: ControlRow | None, b: ControlRow | None) -> str:
    """``a - b`` in normalised percentage points; ``-`` when either is missing."""
    return f"{100 * (a.normalised - b.normalised):+.1f} points" if a and b else "-"


def transfer_table(main: Mapping[str, ControlRow], alone: Mapping[str, ControlRow]) -> str:
    """Markdown: each one-task ablation against the generalist on the same task."""
    lines = [
        "| task | generalist (mixture) | alone, same task tokens | mixture - alone |",
        "| --- | --- | --- | --- |",
    ]
    for task, a in alone.items():
        m = main.get(task)
        lines.append(
            f"| {task} | {_pct(m.normalised) if m else '-'} | {_pct(a.normalised)} "
            f"| {_points(m, a)} |"
        )
    return "\n".join(lines)


def decoding_table(main: Mapping[str, ControlRow], median: Mapping[str, ControlRow]) -> str:
    """Markdown: continuous-action tasks decoded by the argmax (mode) and the median bin."""
    lines = [
        "| task | argmax bin (mode) | median bin | median - mode |",
        "| --- | --- | --- | --- |",
    ]
    for task, md in median.items():
        m = main.get(task)
        lines.append(
            f"| {task} | {_pct(m.normalised) if m else '-'} | {_pct(md.normalised)} "
            f"({md.mean:.1f} ± {md.std:.1f}) | {_points(md, m)} |"
        )
    return "\n".join(lines)


# How a one-task model's actions were decoded, and the evaluation file that holds it.
DECODINGS = (
    ("argmax", "eval.json"),  # greedy: the most likely action (bin)
    ("median", "eval-median.json"),  # continuous actions: the median bin
    ("sampled", "eval-sampled.json"),  # temperature 1: the learned policy itself
)


def variant_table(
    by_decoding: Sequence[
        tuple[str, Mapping[str, ControlRow], Mapping[tuple[str, str], ControlRow]]
    ],
) -> str:
    """Markdown: one-task models trained with a change (``<task>-only-<variant>``) vs without.

    ``by_decoding``: ``(decoding, plain rows by task, changed rows by (task, variant))``.
    """
    lines = [
        "| task | trained with | decoding | alone | alone, with the change | change |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for decoding, plain, changed in by_decoding:
        for (task, variant), v in changed.items():
            a = plain.get(task)
            lines.append(
                f"| {task} | {variant.replace('-', ' ')} | {decoding} "
                f"| {_pct(a.normalised) if a else '-'} | {_pct(v.normalised)} | {_points(v, a)} |"
            )
    return "\n".join(lines)


def vl_table(
    gen: Mapping[tuple[str, str], float], text_only: Mapping[tuple[str, str], float]
) -> str:
    """Markdown: the generalist's caption, zero-shot and chat rows (text-only chat beside)."""
    lines = ["| task | metric | generalist | reference |", "| --- | --- | --- | --- |"]
    for (task, metric), value in gen.items():
        if metric == "perplexity":
            ref = text_only.get((task, metric))
            ref_s = "-" if ref is None else f"text-only model: {ref:.2f} (ratio {value / ref:.3f})"
            lines.append(f"| {task} | {metric} | {value:.2f} | {ref_s} |")
        elif metric == "zero_shot_accuracy":
            lines.append(f"| {task} | {metric} | {_pct(value)} | chance 10.0% |")
        else:
            lines.append(f"| {task} | {metric} | {_pct(value)} | |")
    return "\n".join(lines)


def read_metrics(path: Path) -> list[dict]:
    """The rows of a training ``metrics.jsonl`` (empty when missing)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def results_markdown(run: Path, ablations: Path | None = None) -> str:
    """The Markdown of the README Results tables for ``run`` (and its ablation runs); the
    one-task variants' table, last, goes to ``docs/results/findings.md``."""
    report = read_json(run / "eval.json")
    main = control_rows(report)
    prompted: dict[str, ControlRow] = {}
    for path in sorted(run.glob("eval-prompted*.json")):
        prompted |= control_rows(read_json(path))
    median: dict[str, ControlRow] = {}
    for path in sorted(run.glob("eval-median*.json")):
        median |= control_rows(read_json(path))
    alone: dict[str, dict[str, ControlRow]] = {d: {} for d, _ in DECODINGS}
    variants: dict[str, dict[tuple[str, str], ControlRow]] = {d: {} for d, _ in DECODINGS}
    text_only: dict[tuple[str, str], float] = {}
    if ablations is not None:
        for d in sorted(ablations.glob("*-only")):
            if d.name == "text-only":
                text_only = vl_values(read_json(d / "eval-vl.json"))
                continue
            for decoding, name in DECODINGS:
                alone[decoding] |= control_rows(read_json(d / name))
        for d in sorted(ablations.glob("*-only-*")):
            variant = d.name.split("-only-", 1)[1]
            for decoding, name in DECODINGS:
                for r in control_rows(read_json(d / name)).values():
                    variants[decoding][(r.task, variant)] = r
    parts = [headline(main, "without prompts" if prompted else "")]
    if prompted:
        # DESIGN.md's protocol: evaluation is prompted with a demonstration, as in training
        parts += ["", headline(prompted, "with demonstration prompts")]
    parts += ["", control_table(main, prompted)]
    gen_vl = vl_values(read_json(run / "eval-vl.json") or (report or {}).get("metrics"))
    if gen_vl:
        parts += ["", vl_table(gen_vl, text_only)]
    if alone["argmax"]:
        parts += ["", transfer_table(main, alone["argmax"])]
    if median:
        parts += ["", decoding_table(main, median)]
    if any(variants.values()):
        rows = [(d, alone[d], variants[d]) for d, _ in DECODINGS if variants[d]]
        parts += ["", variant_table(rows)]
    return "\n".join(parts) + "\n"


def heldout_curve_keys(rows: Sequence[Mapping]) -> list[str]:
    """The ``eval/<task>`` keys (held-out loss per task) present in a metrics log."""
    return sorted({k for r in rows for k in r if k.startswith("eval/")})
