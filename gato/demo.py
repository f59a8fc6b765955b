"""``gato demo``: the whole mission in one command, from nothing to one checkpoint that
plays, captions, chats and is scored.

Stages, each introduced by a one-line header and each skipping work already done
(so a second run only prints the results):

1. **data** into ``OUT/data``: procedural scene captions, dialogues about scenes (the
   ``scenes`` dialogue source: no Debian package needed), a small SentencePiece model
   trained on that text, and expert demonstrations of the plan's tasks. The builders
   skip what is built; ``collect`` resumes to the wanted episode count.
2. **train** the plan's run config into ``OUT/run`` (``model.text_size`` set to the
   tokenizer's piece count); skipped when the final checkpoint exists, resumed from the
   newest one otherwise (``gato train --resume``).
3. **play** one episode of the plan's task from that checkpoint, written as a GIF.
4. **caption** two held-out images (scene ``test`` split, saved as PNG files).
5. **chat**: answer one prompt.
6. **scores**: ``gato eval --task all`` over a few episodes per control task, plus the
   caption exact match on held-out scenes; the table and ``scores.json``.

Stages 3-6 write one file each and skip when it exists, unless ``force``.
The equivalent ``gato`` command is printed under every header.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gato.data.build import SceneCounts

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@dataclass(frozen=True)
class Demonstrations:
    """Expert episodes of one task: ``gato data collect --task T --episodes N``.

    ``min_score_frac`` 0 keeps every episode (tasks without measured scores).
    """

    task: str
    episodes: int
    min_score_frac: float = 0.8


@dataclass(frozen=True)
class DemoPlan:
    """What one demo run builds, trains and measures.

    Attributes:
        config: the run config TOML (``configs/demo.toml`` or ``configs/demo-quick.toml``).
        scenes: scene images per split; ``image_size`` their side in pixels.
        scene_dialogues: dialogues about procedural scenes.
        vocab_size: SentencePiece pieces (the scene grammar's text is small: a few hundred).
        demonstrations: expert episodes per task, in mixture order.
        play_task: the task of the recorded episode.
        eval_episodes: episodes per control task in the score table.
        caption_scenes: held-out scenes of the caption exact-match row.
        chat_prompt: the one chat message answered.
    """

    config: Path
    scenes: SceneCounts
    image_size: int
    scene_dialogues: int
    vocab_size: int
    demonstrations: tuple[Demonstrations, ...]
    play_task: str
    eval_episodes: int = 5
    caption_scenes: int = 50
    chat_prompt: str = (
        "Here is a scene: a large red circle at the top left and a small blue square in "
        "the middle. What colour is the circle at the top left?"
    )


# The real demo: Freeway from pixels (always-UP expert, learnable in minutes) and
# CartPole (fast to collect), next to captions and dialogues.
FULL = DemoPlan(
    config=CONFIGS / "demo.toml",
    scenes=SceneCounts(train=5000, test=100, heldout=100),
    image_size=48,
    scene_dialogues=2000,
    vocab_size=320,
    demonstrations=(
        Demonstrations("freeway", 8),
        Demonstrations("cartpole", 200),
    ),
    play_task="freeway",
)

# The CI form: the debug preset, one 12-step task, seconds of training.
QUICK = DemoPlan(
    config=CONFIGS / "demo-quick.toml",
    scenes=SceneCounts(train=200, test=10, heldout=10),
    image_size=48,
    scene_dialogues=100,
    vocab_size=300,
    demonstrations=(Demonstrations("fake-image", 20),),
    play_task="fake-image",
    eval_episodes=2,
    caption_scenes=4,
)


@dataclass
class Stage:
    """How one stage went.

    Attributes:
        seconds: wall time of this call.
        skipped: the work was found done.
        work_seconds: wall time of the call that did the work (this one, or the earlier
            run's figure from ``summary.json`` when skipped; None if unknown).
        artefacts: what the stage wrote.
    """

    name: str
    seconds: float = 0.0
    skipped: bool = False
    work_seconds: float | None = None
    artefacts: list[str] = field(default_factory=list)


@dataclass
class DemoReport:
    """Everything the demo produced and measured (``OUT/summary.json``).

    Attributes:
        checkpoint: the trained checkpoint directory.
        gif: the recorded episode; ``play_return`` and ``play_steps`` describe it.
        captions: ``(png path, true caption, model caption)`` for the two images.
        chat_prompt, chat_reply: the one exchange.
        scores: the ``scores.json`` path; ``table`` the printed score table.
        train_steps, tokens_per_s, final_loss: of the training run (from its metrics).
        seconds, cpu_seconds: wall and CPU time (all threads) of this call; on a shared
            machine their ratio shows how much of the cores the demo got.
    """

    out: str
    quick: bool
    stages: list[Stage] = field(default_factory=list)
    checkpoint: str = ""
    gif: str = ""
    play_return: float = 0.0
    play_steps: int = 0
    captions: list[tuple[str, str, str]] = field(default_factory=list)
    chat_prompt: str = ""
    chat_reply: str = ""
    scores: str = ""
    table: str = ""
    train_steps: int = 0
    tokens_per_s: float | None = None
    final_loss: float | None = None
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def to_json(self) -> dict:
        return asdict(self)


def _header(i: int, n: int, name: str, what: str, command: list[str] | None = None) -> None:
    print(f"\n== [{i}/{n}] {name}: {what}", flush=True)
    if command:
        print(f"   $ {shlex.join(command)}", flush=True)


def _timed(
    report: DemoReport, earlier: dict[str, float], name: str, fn: Callable[[Stage], None]
) -> None:
    stage = Stage(name)
    t0 = time.perf_counter()
    fn(stage)
    stage.seconds = time.perf_counter() - t0
    if stage.skipped:
        stage.work_seconds = earlier.get(name)
        print(f"   (done before: skipped; {', '.join(stage.artefacts)})", flush=True)
    else:
        stage.work_seconds = stage.seconds
    report.stages.append(stage)


def _earlier_work_seconds(out: Path) -> dict[str, float]:
    """Stage name -> seconds its work took, from an earlier run's ``summary.json``."""
    path = out / "summary.json"
    if not path.is_file():
        return {}
    try:
        stages = json.loads(path.read_text(encoding="utf-8"))["stages"]
        return {s["name"]: s["work_seconds"] for s in stages if s["work_seconds"] is not None}
    except (ValueError, KeyError, TypeError):
        return {}  # an unreadable summary only loses the earlier figures


# -- stages --------------------------------------------------------------------------------


def build_data(plan: DemoPlan, data: Path, stage: Stage) -> int:
    """Stage 1: scenes, scene dialogues, tokenizer, demonstrations; the tokenizer's size."""
    from gato.data import build
    from gato.data.artifacts import Artifact
    from gato.data.collect import collect
    from gato.data.store import EpisodeStore

    names = ("scenes", "dialogues", "tokenizer")
    before = [Artifact(data, name).manifest() for name in names]
    built = [
        build.build_scenes(data, plan.scenes, seed=0, image_size=plan.image_size),
        build.build_dialogues(data, names=["scenes"], scene_dialogues=plan.scene_dialogues),
        build.build_tokenizer(data, plan.vocab_size),
    ]
    stage.skipped = all(
        old is not None and old == new for old, new in zip(before, built, strict=True)
    )
    for d in plan.demonstrations:
        out = data / "episodes" / d.task
        have = len(EpisodeStore(out)) if (out / "manifest.json").is_file() else 0
        if have >= d.episodes:
            print(f"{d.task}: {have} episodes already in {out}", file=sys.stderr)
            continue
        stage.skipped = False
        s = collect(d.task, d.episodes, out, min_score_frac=d.min_score_frac)
        print(f"{out}: {s.episodes} episodes of {d.task}, {s.steps_per_second:,.0f} env steps/s")
    stage.artefacts = [str(data)]
    return int(built[2]["stats"]["vocab_size"])


def _final_step(run: Path) -> int:
    from gato.checkpoint import checkpoint_step, latest_checkpoint

    latest = latest_checkpoint(run)
    return 0 if latest is None else checkpoint_step(latest)


def train_model(plan: DemoPlan, data: Path, run: Path, vocab: int, stage: Stage) -> Path:
    """Stage 2: train (or resume) until the run's final checkpoint exists; its path."""
    from gato.checkpoint import latest_checkpoint
    from gato.config import load_run_config
    from gato.train import train

    cfg = load_run_config(plan.config, [f"data.dir={json.dumps(str(data))}",
                                        f"model.text_size={vocab}"])  # fmt: skip
    done = _final_step(run)
    if done >= cfg.train.steps:
        stage.skipped = True
    else:
        if done:
            print(f"   resuming at step {done} of {cfg.train.steps}", flush=True)
        result = train(cfg, run, resume=True)
        if result.status != "done":
            raise KeyboardInterrupt  # interrupted: the next run resumes from the checkpoint
    ckpt = latest_checkpoint(run)
    assert ckpt is not None
    stage.artefacts = [str(ckpt)]
    return ckpt


def _metrics_summary(run: Path) -> tuple[float | None, float | None]:
    """Mean tokens/s over the run's logged windows and the last logged loss."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        return None, None
    rates, loss = [], None
    for line in path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if "tokens_per_s" in rec:
            rates.append(rec["tokens_per_s"])
        if "loss" in rec:
            loss = rec["loss"]
    return (sum(rates) / len(rates) if rates else None), loss


def play(plan: DemoPlan, trained, gif: Path, force: bool, stage: Stage) -> tuple[float, int]:
    """Stage 3: one greedy episode of ``plan.play_task`` as a GIF; (return, steps)."""
    from gato.envs import registry
    from gato.play import play_episode
    from gato.recording import write_gif

    record = gif.with_suffix(".json")
    stage.artefacts = [str(gif)]
    if gif.is_file() and record.is_file() and not force:
        stage.skipped = True
        saved = json.loads(record.read_text(encoding="utf-8"))
        return saved["return"], saved["steps"]
    played = play_episode(trained, registry.spec(plan.play_task), seed=0, record=True)
    write_gif(played.frames, gif, fps=30.0, scale=2)
    _write_json(record, {"task": plan.play_task, "return": played.score, "steps": played.length})
    print(f"{plan.play_task}: return {played.score:.2f} in {played.length} steps; wrote {gif} "
          f"({len(played.frames)} frames)")  # fmt: skip
    return played.score, played.length


def caption(trained, data: Path, folder: Path, force: bool, stage: Stage) -> list:
    """Stage 4: the first two ``test`` scenes saved as PNG and captioned."""
    import numpy as np
    from PIL import Image

    from gato.generate import caption_images, checkpoint_image_size, with_image_size
    from gato.tokenizers.image import load_image

    record = folder / "captions.json"
    if record.is_file() and not force:
        stage.skipped = True
        rows = [tuple(r) for r in json.loads(record.read_text(encoding="utf-8"))]
        stage.artefacts = [r[0] for r in rows]
        return rows
    with np.load(data / "scenes" / "test.npz", allow_pickle=False) as z:
        images, truths = z["images"][:2], [str(c) for c in z["captions"][:2]]
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(images):
        paths.append(folder / f"test-{i}.png")
        Image.fromarray(img).save(paths[-1])
    tok = trained.tokenizers
    tok = with_image_size(tok, checkpoint_image_size(tok, trained.run, trained.path))
    got = caption_images(trained.model, tok, [load_image(p) for p in paths])  # as `gato caption`
    rows = [(str(p), t, c) for p, t, c in zip(paths, truths, got, strict=True)]
    _write_json(record, rows)
    stage.artefacts = [str(p) for p in paths]
    return rows


def chat(plan: DemoPlan, trained, record: Path, force: bool, stage: Stage) -> str:
    """Stage 5: the model's answer to ``plan.chat_prompt`` (greedy)."""
    from gato.chat import ChatSession

    stage.artefacts = [str(record)]
    if record.is_file() and not force:
        stage.skipped = True
        return json.loads(record.read_text(encoding="utf-8"))["reply"]
    reply = ChatSession(trained.model, trained.tokenizers).reply(plan.chat_prompt)
    _write_json(record, {"prompt": plan.chat_prompt, "reply": reply})
    return reply


def score(plan: DemoPlan, trained, scores: Path, force: bool, stage: Stage) -> str:
    """Stage 6: every control task of the checkpoint plus caption exact match; the table."""
    from gato.envs import registry
    from gato.evaluate import MetricRow, evaluate, write_json
    from gato.generate import checkpoint_image_size, with_image_size
    from gato.vl_metrics import scene_caption_scores

    table_file = scores.with_suffix(".txt")
    stage.artefacts = [str(scores)]
    if scores.is_file() and table_file.is_file() and not force:
        stage.skipped = True
        return table_file.read_text(encoding="utf-8")
    specs = [registry.spec(t) for t in trained.tasks if t in registry.task_names()]
    n = plan.eval_episodes
    report = evaluate(trained, specs, n, envs=min(n, 8), seed=0)
    if report.interrupted:  # partial scores are not written: the next run scores again
        raise KeyboardInterrupt
    tok = trained.tokenizers
    size = checkpoint_image_size(tok, trained.run, trained.path)
    cap = scene_caption_scores(trained.model, with_image_size(tok, size), "test",
                               plan.caption_scenes, size[0])  # fmt: skip
    # Exact match is already on a 0..1 scale with chance ~0: it joins the headline as is.
    report.metrics.append(MetricRow("captions/test", "exact", cap.exact, cap.exact))
    report.metrics.append(MetricRow("captions/test", "token_f1", cap.token_f1))
    write_json(report, scores)
    table = report.table()
    table_file.write_text(table + "\n", encoding="utf-8")
    return table


def _cpu_seconds() -> float:
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # collection / loader workers
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


# -- the whole demo ------------------------------------------------------------------------


def run_demo(out: str | os.PathLike, quick: bool = False, force: bool = False) -> DemoReport:
    """Run every stage into ``out`` (see the module docstring); print and return the report.

    ``force`` redoes stages 3-6 (the results), never the data or the training.
    """
    import torch

    from gato.loading import load_trained

    plan = QUICK if quick else FULL
    out = Path(out)
    data, run = out / "data", out / "run"
    report = DemoReport(out=str(out), quick=quick, chat_prompt=plan.chat_prompt)
    t0 = time.perf_counter()
    earlier = _earlier_work_seconds(out)
    n = 6
    tasks = ", ".join(d.task for d in plan.demonstrations)
    _header(1, n, "data", f"scene captions, scene dialogues, tokenizer, experts ({tasks})",
            ["gato", "data", "scenes", "--data-dir", str(data), "--train",
             str(plan.scenes.train), "--image-size", str(plan.image_size)])  # fmt: skip
    vocab = 0

    def stage_data(s: Stage) -> None:
        nonlocal vocab
        vocab = build_data(plan, data, s)

    _timed(report, earlier, "data", stage_data)

    ckpt: Path | None = None
    _header(2, n, "train", f"{plan.config.name} into {run}",
            ["gato", "train", "--config", str(plan.config), "--out", str(run), "--resume",
             "--set", f"data.dir={data}", "--set", f"model.text_size={vocab}"])  # fmt: skip

    def stage_train(s: Stage) -> None:
        nonlocal ckpt
        ckpt = train_model(plan, data, run, vocab, s)

    _timed(report, earlier, "train", stage_train)
    assert ckpt is not None
    report.checkpoint = str(ckpt)
    report.train_steps = _final_step(run)
    report.tokens_per_s, report.final_loss = _metrics_summary(run)

    trained = load_trained(ckpt)
    # One thread for inference: batch-1 decoding gains little from a second thread, and on
    # a shared machine two threads contend (bench rollout: every op 5-50x slower at load 10).
    torch.set_num_threads(1)
    gif = out / f"play-{plan.play_task}.gif"
    _header(3, n, "play", f"one episode of {plan.play_task}, recorded",
            ["gato", "play", "--checkpoint", str(run), "--task", plan.play_task,
             "--record", str(gif)])  # fmt: skip

    def stage_play(s: Stage) -> None:
        report.play_return, report.play_steps = play(plan, trained, gif, force, s)

    _timed(report, earlier, "play", stage_play)
    report.gif = str(gif)

    folder = out / "captions"
    _header(4, n, "caption", "two held-out scene images",
            ["gato", "caption", "--checkpoint", str(run), str(folder / "test-0.png"),
             str(folder / "test-1.png")])  # fmt: skip

    def stage_caption(s: Stage) -> None:
        report.captions = caption(trained, data, folder, force, s)

    _timed(report, earlier, "caption", stage_caption)
    for path, truth, got in report.captions:
        print(f"{path}\t{got}\n   {'(truth)':>{len(path)}}\t{truth}")

    _header(
        5,
        n,
        "chat",
        "one prompt",
        ["gato", "chat", "--checkpoint", str(run), "--prompt", plan.chat_prompt],
    )

    def stage_chat(s: Stage) -> None:
        report.chat_reply = chat(plan, trained, out / "chat.json", force, s)

    _timed(report, earlier, "chat", stage_chat)
    print(f"user:  {plan.chat_prompt}\nmodel: {report.chat_reply}")

    scores = out / "scores.json"
    _header(6, n, "scores", f"{plan.eval_episodes} episodes per control task + caption "
            f"exact match on {plan.caption_scenes} held-out scenes",
            ["gato", "eval", "--checkpoint", str(run), "--task", "all", "--episodes",
             str(plan.eval_episodes), "--json", str(scores)])  # fmt: skip

    def stage_score(s: Stage) -> None:
        report.table = score(plan, trained, scores, force, s)

    _timed(report, earlier, "scores", stage_score)
    report.scores = str(scores)
    print(report.table.rstrip())

    report.seconds = time.perf_counter() - t0
    report.cpu_seconds = _cpu_seconds()
    report.load_average = os.getloadavg()
    _write_json(out / "summary.json", report.to_json())
    print(summary(report))
    return report


def summary(r: DemoReport) -> str:
    """The closing lines: where every artefact is and what was measured."""
    load = ", ".join(f"{x:.1f}" for x in r.load_average)
    rate = "-" if r.tokens_per_s is None else f"{r.tokens_per_s:,.0f}"
    loss = "-" if r.final_loss is None else f"{r.final_loss:.3f}"
    stages = ", ".join(f"{s.name} {_work(s)}" for s in r.stages)
    work = [s.work_seconds for s in r.stages]
    total = "" if None in work else f"; the work took {sum(work):.0f} s in all"
    return "\n".join([
        "",
        f"== demo done in {r.seconds:.0f} s{total} (CPU time {r.cpu_seconds:.0f} s; "
        f"load average {load}; {os.cpu_count()} CPUs)",
        f"   stages: {stages}",
        f"   data:       {Path(r.out) / 'data'}",
        f"   checkpoint: {r.checkpoint} ({r.train_steps} steps, ~{rate} tokens/s, "
        f"last loss {loss})",
        f"   episode:    {r.gif} (return {r.play_return:.2f}, {r.play_steps} steps)",
        f"   captions:   {', '.join(c[0] for c in r.captions)}",
        f"   chat:       {Path(r.out) / 'chat.json'}",
        f"   scores:     {r.scores} (table: {Path(r.scores).with_suffix('.txt')})",
        f"   summary:    {Path(r.out) / 'summary.json'}",
    ])  # fmt: skip


def _work(s: Stage) -> str:
    if not s.skipped:
        return f"{s.seconds:.0f} s"
    if s.work_seconds is None:
        return "skipped"
    return f"{s.work_seconds:.0f} s earlier"
