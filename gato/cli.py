"""The ``gato`` command line.

Every subcommand is one ``_add_<name>(subparsers)`` function that declares its
arguments and sets ``func`` to its handler. Errors the user can fix (bad input,
missing files, bad config) end in one line on stderr and exit code 2; anything
else is an internal error (exit 1). ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gato import __version__

# Exceptions that mean "the user's input is wrong": one line, exit 2.
USER_ERRORS = (
    ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError,
    KeyError,
)  # fmt: skip


def _add_tokenize(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tokenize",
        help="show how values, text and images become token ids (and decode them back)",
        description="Tokenize inputs with the project's tokenizers and decode them back, "
        "to see the shared id space at work.",
    )
    p.add_argument("--values", help="comma-separated floats, tokenized with mu-law companding")
    p.add_argument("--discrete", help="comma-separated integers in [0, bins)")
    p.add_argument("--text", help="text to encode (needs --text-model)")
    p.add_argument("--text-model", help="path to a SentencePiece .model file")
    p.add_argument("--image", help="path to an image file (PNG/JPEG)")
    p.add_argument("--patch-size", type=int, default=16, help="image patch side (default 16)")
    p.add_argument("--text-size", type=int, default=32000, help="number of text ids T")
    p.set_defaults(func=_run_tokenize)


def _run_tokenize(args: argparse.Namespace) -> int:
    import numpy as np

    from gato.tokenizers.continuous import ContinuousTokenizer
    from gato.tokenizers.discrete import DiscreteTokenizer
    from gato.tokenizers.vocab import Vocab

    if not any([args.values, args.discrete, args.text, args.image]):
        raise ValueError("nothing to tokenize: give --values, --discrete, --text or --image")
    vocab = Vocab(text_size=args.text_size)
    if args.values:
        values = np.array(_parse_list(args.values, float, "--values"), dtype=np.float64)
        tok = ContinuousTokenizer(vocab)
        ids = tok.encode(values)
        decoded = [float(f"{v:.4g}") for v in tok.decode(ids)]
        print(f"continuous {values.tolist()} -> {ids.tolist()} -> {decoded}")
    if args.discrete:
        ints = np.array(_parse_list(args.discrete, int, "--discrete"), dtype=np.int64)
        tok = DiscreteTokenizer(vocab)
        ids = tok.encode(ints)
        print(f"discrete {ints.tolist()} -> {ids.tolist()} -> {tok.decode(ids).tolist()}")
    if args.text:
        if not args.text_model:
            raise ValueError(
                "--text needs --text-model PATH (train one with `gato data tokenizer`)"
            )
        from gato.tokenizers.text import TextTokenizer

        tok = TextTokenizer.load(args.text_model)
        ids = tok.encode(args.text)
        print(f"text {args.text!r} -> {ids} -> {tok.decode(ids)!r}")
    if args.image:
        from gato.tokenizers.image import ImageTokenizer, load_image

        img = load_image(args.image)
        patches = ImageTokenizer(patch_size=args.patch_size).encode(img)
        print(
            f"image {args.image} {img.shape} -> {patches.shape[0]} patches of "
            f"{patches.shape[1:]} in [{patches.min():.3f}, {patches.max():.3f}]"
        )
    return 0


def _parse_list(text: str, kind: type, flag: str) -> list:
    try:
        return [kind(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(
            f"{flag}: expected comma-separated {kind.__name__}s, got {text!r}"
        ) from None


# ---------------------------------------------------------------- gato data (vision-language)
# `_add_data_vl(data_sub)` adds the caption/text/chat builders to the `gato data` group;
# `_add_data_collect(data_sub)` adds `collect` (expert demonstrations); `_add_data` creates
# the group and calls both.


def _data_common(p: argparse.ArgumentParser, seed: bool = True) -> None:
    p.add_argument("--data-dir", default="data", help="data directory (default: ./data)")
    p.add_argument("--force", action="store_true", help="rebuild even if already built")
    if seed:
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def _add_data_vl(data_sub: argparse._SubParsersAction) -> None:
    p = data_sub.add_parser("scenes", help="render the procedural scene caption sets")
    _data_common(p)
    p.add_argument("--train", type=int, default=20_000, help="train images (default 20000)")
    p.add_argument("--test", type=int, default=1_000, help="test images, held-out seeds")
    p.add_argument(
        "--heldout",
        type=int,
        default=1_000,
        help="images with colour-shape pairs never seen in train",
    )
    p.add_argument("--image-size", type=int, default=64, help="side in pixels, multiple of 16")
    p.set_defaults(func=_run_data_scenes)

    p = data_sub.add_parser("captions", help="Fashion-MNIST captions and your caption JSONL")
    _data_common(p, seed=False)
    p.add_argument(
        "--jsonl",
        action="append",
        default=[],
        metavar="FILE",
        help='your captions: lines of {"image": path, "caption": text} (repeatable)',
    )
    p.add_argument("--no-fashion-mnist", action="store_true", help="skip Fashion-MNIST")
    p.set_defaults(func=_run_data_captions)

    p = data_sub.add_parser("corpus", help="plain-text corpus from offline sources")
    _data_common(p, seed=False)
    p.add_argument(
        "--text",
        action="append",
        default=[],
        metavar="FILE",
        help="your own text file to add (repeatable)",
    )
    p.add_argument("--sources", help="comma-separated subset of sources (default: all installed)")
    p.set_defaults(func=_run_data_corpus)

    p = data_sub.add_parser("dialogues", help="chat JSONL dialogues from offline Q/A sources")
    _data_common(p)
    p.add_argument(
        "--chat",
        action="append",
        default=[],
        metavar="FILE",
        help='your chat JSONL: lines of {"messages": [{"role", "content"}, ...]}',
    )
    p.add_argument("--sources", help="comma-separated subset of sources (default: all installed)")
    p.add_argument("--wordnet", type=int, default=20_000, help="WordNet definitions to sample")
    p.add_argument("--scene-dialogues", type=int, default=5_000, help="dialogues about scenes")
    p.set_defaults(func=_run_data_dialogues)

    p = data_sub.add_parser("tokenizer", help="train the SentencePiece model on all built text")
    _data_common(p)
    p.add_argument("--vocab-size", type=int, default=8000, help="pieces (paper: 32000)")
    p.add_argument("--sample-mb", type=float, default=20.0, help="MB of text to train on")
    p.set_defaults(func=_run_data_tokenizer)

    p = data_sub.add_parser("all", help="scenes, captions, corpus, dialogues, then tokenizer")
    _data_common(p)
    p.add_argument("--vocab-size", type=int, default=8000, help="pieces (paper: 32000)")
    p.set_defaults(func=_run_data_all)


def _add_data(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "data", help="build data sets (demonstrations, captions, text, dialogues, tokenizer)"
    )
    data_sub = p.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    data_sub.required = True
    _add_data_collect(data_sub)
    _add_data_train_expert(data_sub)
    _add_data_probe(data_sub)
    _add_data_state_probe(data_sub)
    _add_data_vl(data_sub)


# ---------------------------------------------------------------- gato data collect, tasks, scores


def _add_data_collect(data_sub: argparse._SubParsersAction) -> None:
    p = data_sub.add_parser(
        "collect",
        help="record expert demonstrations of a task into an episode store",
        description="Play the task's scripted expert (episode i from env seed SEED+i) and "
        "store the episodes losslessly in DIR. Re-running the same command resumes; "
        "--episodes is the total wanted. With --dagger CHECKPOINT the checkpoint plays "
        "instead and the expert's action in each state it visits is recorded (DAgger: "
        "train on demonstrations + this store to recover from the learner's own mistakes). "
        "With --explore P the expert plays with random detours instead and is labelled the "
        "same way, without a checkpoint.",
    )
    p.add_argument("--task", required=True, help="task name (see `gato tasks`)")
    p.add_argument("--episodes", type=int, required=True, help="episodes to keep in total")
    p.add_argument("--out", required=True, type=Path, help="store directory")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.add_argument("--seed", type=int, default=0, help="first env seed (default 0)")
    p.add_argument(
        "--min-score-frac",
        type=float,
        help="keep episodes with expert-normalised score >= this (default and paper: 0.8; "
        "0 keeps all; not with --dagger, which keeps all)",
    )
    p.add_argument(
        "--dagger",
        metavar="CHECKPOINT",
        type=Path,
        help="checkpoint or run directory that plays (greedy) while the expert labels",
    )
    p.add_argument(
        "--envs",
        metavar="N",
        type=int,
        help="with --dagger: episodes the checkpoint plays at once, one batched forward a "
        "step for all of them (default 8; the store is the same for any N)",
    )
    p.add_argument(
        "--explore",
        metavar="P",
        type=float,
        help="noise injection: the expert plays, but on each step with probability P a "
        "random action is held for 1..--explore-hold steps, and the clean expert labels "
        "every state (off-course states with the way back, no checkpoint needed; keeps all)",
    )
    p.add_argument(
        "--expert",
        metavar="FILE",
        help="a trained RAM policy (`gato data train-expert`), the name of a shipped one "
        "(breakout-ppo, pong-ppo), or of another scripted expert of the task "
        "(breakout-tracker), plays (or labels) instead of the task's scripted expert; "
        "the filter still measures against the scripted expert's score, so pass a "
        "--min-score-frac it can reach",
    )
    p.add_argument(
        "--explore-hold",
        metavar="H",
        type=int,
        default=10,
        help="longest hold of a random action with --explore (default 10 steps)",
    )
    p.set_defaults(func=_run_data_collect)


def _run_data_collect(args: argparse.Namespace) -> int:
    from gato.data.collect import collect

    if args.dagger is not None:
        import torch

        torch.set_num_threads(2)  # the learner's forwards (workers use one thread each)

    s = collect(
        args.task,
        args.episodes,
        args.out,
        workers=args.workers,
        seed=args.seed,
        min_score_frac=args.min_score_frac,
        dagger=args.dagger,
        explore=None if args.explore is None else (args.explore, args.explore_hold),
        expert_file=args.expert,
        envs=args.envs,
    )
    kept = (
        "none filtered" if s.min_return is None else f"{s.rejected} rejected below {s.min_return:g}"
    )
    print(
        f"{args.out}: {s.episodes} episodes of {args.task} ({s.new_episodes} new, {kept}), "
        f"{s.steps_per_second:,.0f} env steps/s"
    )
    return 0


def _add_data_train_expert(data_sub: argparse._SubParsersAction) -> None:
    # No imports here: building the parser must not load torch or gymnasium (`gato --help`).
    p = data_sub.add_parser(
        "train-expert",
        help="train a game's expert with PPO on its RAM (needs the `rl` extra)",
        description="Train a reinforcement-learning expert for an Atari game (PPO from "
        "stable-baselines3 on positions read from the emulator's RAM, the task env's dynamics) "
        "and save its policy to FILE (safetensors, under 100 KB). `gato data collect "
        "--expert FILE` then records its demonstrations in the task's own env. On 2 cores "
        "about 3,000 agent steps/s: 8M steps take ~45 minutes. Needs pip install -e '.[rl]'.",
    )
    p.add_argument(
        "--game", required=True, help="the task to play (games with a RAM spec: breakout, pong)"
    )
    p.add_argument("--out", required=True, type=Path, metavar="FILE", help="policy file to write")
    p.add_argument(
        "--steps", type=int, default=8_000_000, help="agent steps, all envs (default 8000000)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--envs", type=int, help="env processes (default: PPOConfig.envs, 8)")
    p.add_argument(
        "--save-every",
        type=int,
        default=500_000,
        metavar="STEPS",
        help="also write FILE every this many steps, so a stopped run keeps its latest policy "
        "(default 500000; 0: only at the end)",
    )
    p.add_argument(
        "--init",
        metavar="POLICY",
        help="start from this policy (a file from train-expert or a shipped name such as "
        "pong-ppo) to train it further; its critic starts fresh",
    )
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    p.set_defaults(func=_run_data_train_expert)


def _run_data_train_expert(args: argparse.Namespace) -> int:
    import dataclasses
    import importlib.util
    import time

    from gato.envs.experts.ppo import PPOConfig, train
    from gato.envs.experts.ram_policy import SPECS, MlpPolicy, policy_file

    if importlib.util.find_spec("stable_baselines3") is None:
        raise ValueError("training an expert needs stable-baselines3: pip install -e '.[rl]'")
    if args.game not in SPECS:
        raise ValueError(f"no RAM spec for {args.game!r}; games: {', '.join(sorted(SPECS))}")
    if args.out.exists() and not args.force:
        raise FileExistsError(f"{args.out} exists: pass --force to overwrite it")
    config = PPOConfig() if args.envs is None else dataclasses.replace(PPOConfig(), envs=args.envs)
    if config.envs < 1 or args.save_every < 0:
        raise ValueError("--envs must be >= 1 and --save-every >= 0")
    init = None if args.init is None else MlpPolicy.load(policy_file(args.init))
    start = time.perf_counter()
    path = train(
        SPECS[args.game], args.steps, args.out, seed=args.seed, config=config,
        save_every=args.save_every, init=init,
    )  # fmt: skip
    minutes = (time.perf_counter() - start) / 60
    print(f"{path}: {args.game} policy after {args.steps:,} agent steps ({minutes:.1f} min)")
    return 0


def _add_data_probe(data_sub: argparse._SubParsersAction) -> None:
    p = data_sub.add_parser(
        "probe",
        help="how predictable a store's actions are from its frames (behaviour-cloning probe)",
        description="Train a small CNN to predict each recorded action from the last FRAMES "
        "frames (all but the last --heldout episodes) and compare its held-out cross-entropy "
        "with the action frequencies' (the best frame-blind guess). Near the baseline: the "
        "expert acts on something the frames do not show, and no pixel learner can copy it "
        "at this budget. Image tasks with discrete actions only.",
    )
    p.add_argument("store", type=Path, help="episode store directory (from `gato data collect`)")
    p.add_argument(
        "--extra",
        type=Path,
        action="append",
        default=[],
        metavar="STORE",
        help="another store of the same task (e.g. --dagger or --explore) whose episodes are "
        "all added to training; held out are still STORE's last episodes (repeatable)",
    )
    p.add_argument("--frames", type=int, default=4, help="stacked frames (default 4)")
    p.add_argument(
        "--last-action",
        action="store_true",
        help="also give the probe the previous action (Gato's context holds its past actions; "
        "an expert whose move depends on its last one needs it)",
    )
    p.add_argument(
        "--full-map",
        action="store_true",
        help="flatten the convolutions' whole feature map (10x10 at 80x80) instead of pooling "
        "it to 6x6, so a 1-2 pixel ball's place within a cell survives",
    )
    p.add_argument("--seconds", type=float, default=300.0, help="time budget (default 300)")
    p.add_argument("--steps", type=int, default=100_000, help="step budget (default 100000)")
    p.add_argument("--heldout", type=int, default=3, help="held-out episodes (default 3)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument(
        "--play",
        type=int,
        default=0,
        metavar="N",
        help="then play N greedy episodes with the probe and report its score (default 0)",
    )
    p.add_argument(
        "--play-seed", type=int, default=2_000_000, help="first env seed to play (default 2000000)"
    )
    p.add_argument(
        "--play-temperature",
        type=float,
        default=0.0,
        metavar="T",
        help="0 plays the most likely action (default); T > 0 samples softmax(logits / T), "
        "1 the learned policy itself",
    )
    p.add_argument("--json", type=Path, help="write the report here as JSON")
    p.set_defaults(func=_run_data_probe)


def _run_data_probe(args: argparse.Namespace) -> int:
    import json

    import numpy as np
    import torch

    from gato.atomic import write_atomic
    from gato.data.probe import ProbeConfig, play_probe, train_probe
    from gato.envs import registry

    for name in ("frames", "steps", "heldout", "threads"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.play < 0:
        raise ValueError(f"--play must be >= 0, got {args.play}")
    if args.seconds <= 0:
        raise ValueError(f"--seconds must be > 0, got {args.seconds}")
    if args.play_temperature < 0:
        raise ValueError(f"--play-temperature must be >= 0, got {args.play_temperature}")
    torch.set_num_threads(args.threads)
    cfg = ProbeConfig(
        frames=args.frames,
        steps=args.steps,
        seconds=args.seconds,
        heldout=args.heldout,
        seed=args.seed,
        last_action=args.last_action,
        full_map=args.full_map,
    )

    def show(point: dict) -> None:
        print(
            f"step {point['step']:>6}  train CE {point['train_ce']:.3f}  "
            f"held-out CE {point['heldout_ce']:.3f}  accuracy {point['accuracy']:.3f}",
            flush=True,
        )

    model, r = train_probe(args.store, cfg, progress=show, extra=args.extra)
    print(
        f"{r.task}: {r.frames} frames{' + last action' if r.last_action else ''}"
        f"{', full map' if r.full_map else ''}, "
        f"{r.train_samples} training steps"
        f"{f' ({len(r.extra)} extra stores)' if r.extra else ''}, {r.steps} probe steps in "
        f"{r.seconds:.0f} s; held-out "
        f"({r.heldout_samples} steps): probe CE {r.probe_ce:.3f} nats, accuracy "
        f"{r.probe_accuracy:.1%}; frequencies {r.baseline_ce:.3f} nats, majority "
        f"{r.majority_accuracy:.1%}; gap closed {r.gap_closed:.0%}"
    )
    report = r.to_dict()
    if args.play:
        returns = play_probe(model, r.task, args.play, args.play_seed, args.play_temperature)
        spec = registry.spec(r.task)
        mean = float(np.mean(returns))
        norm = spec.normalised(mean) if spec.expert_score is not None else None
        report["play"] = {
            "seed": args.play_seed,
            "temperature": args.play_temperature,
            "returns": returns,
            "mean": mean,
        }
        report["play"]["normalised"] = norm
        shown = "" if norm is None else f", {norm:.1%} of expert"
        print(
            f"probe playing {r.task}: {mean:.2f} +- {np.std(returns):.2f} over {args.play} "
            f"episodes{shown} (temperature {args.play_temperature:g})"
        )
    if args.json is not None:
        write_atomic(args.json, (json.dumps(report, indent=1) + "\n").encode())
    return 0


def _step_counts(text: str) -> tuple[int, ...]:
    """``"50,100,200"`` -> ``(50, 100, 200)``; argparse reports a bad list as one line."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated step counts like 50,100,200, got {text!r}"
        ) from None


# Defaults of `gato data state-probe`, kept equal to StateProbeConfig's (tested) without
# importing torch to build the parser.
STATE_PROBE_STEPS = (50, 100, 200, 400, 800, 1600, 3200, 6400)


def _add_data_state_probe(data_sub: argparse._SubParsersAction) -> None:
    p = data_sub.add_parser(
        "state-probe",
        help="can a RAM policy be cloned from its own state? (the frame probe's control)",
        description="Record a RAM policy's greedy games (env seeds from --seed) as the "
        "positions it reads and the action it takes, train a small MLP clone on all but the "
        "last --heldout games, and at each of --steps score the clone on the held-out games "
        "and in --play greedy games. A clone that plays near the policy says the policy is "
        "copyable from this data; a pixel learner that is not misses the positions in the "
        "frames. The curve maps held-out accuracy to play for the task.",
    )
    p.add_argument("policy", help="a shipped RAM policy (breakout-ppo, pong-ppo) or a policy file")
    p.add_argument("--episodes", type=int, default=30, help="games recorded (default 30)")
    p.add_argument(
        "--heldout", type=int, default=3, help="games at the end held out for scoring (default 3)"
    )
    p.add_argument(
        "--steps", type=_step_counts, default=STATE_PROBE_STEPS, metavar="N,N,...",
        help="increasing step counts at which the clone is scored (default "
        + ",".join(map(str, STATE_PROBE_STEPS)) + ")",
    )  # fmt: skip
    p.add_argument(
        "--last-action", action="store_true",
        help="also give the clone its previous action (the policy reads its own)",
    )  # fmt: skip
    p.add_argument(
        "--play", type=int, default=10, metavar="N",
        help="greedy games played at each step count (default 10; 0: none)",
    )  # fmt: skip
    p.add_argument(
        "--play-seed", type=int, default=2_000_000, help="first env seed played (default 2000000)"
    )
    p.add_argument(
        "--seed", type=int, default=0, help="first recorded env seed and torch seed (default 0)"
    )
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--json", type=Path, help="write the report here as JSON")
    p.set_defaults(func=_run_data_state_probe)


def _run_data_state_probe(args: argparse.Namespace) -> int:
    import json

    import numpy as np
    import torch

    from gato.atomic import write_atomic
    from gato.data.state_probe import StatePoint, StateProbeConfig, state_probe

    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    cfg = StateProbeConfig(
        episodes=args.episodes,
        heldout=args.heldout,
        checkpoints=args.steps,
        last_action=args.last_action,
        seed=args.seed,
        play=args.play,
        play_seed=args.play_seed,
    )
    torch.set_num_threads(args.threads)

    def show(point: StatePoint) -> None:
        played = (
            f"  plays {point.mean_return:.1f} +- {np.std(point.returns):.1f}"
            if point.returns
            else ""
        )
        print(
            f"step {point.step:>6}  held-out CE {point.heldout_ce:.3f}  "
            f"accuracy {point.accuracy:.3f}{played}",
            flush=True,
        )

    report = state_probe(args.policy, cfg, progress=show)
    print(
        f"{report.task}: {args.episodes} games of {Path(report.policy).stem} "
        f"(mean {np.mean(report.expert_returns):.1f}), {report.train_samples} training and "
        f"{report.heldout_samples} held-out states; frequencies {report.baseline_ce:.3f} "
        f"nats, majority {report.majority_accuracy:.1%}"
        f"{'; the clone also reads its last action' if report.last_action else ''}"
    )
    if args.json is not None:
        write_atomic(args.json, (json.dumps(report.to_dict(), indent=1) + "\n").encode())
    return 0


def _add_tasks(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tasks", help="list every task: observation, action, random/expert score")
    p.set_defaults(func=_run_tasks)


def _run_tasks(args: argparse.Namespace) -> int:
    from gato.envs.scores import format_task_table

    print(format_task_table())
    return 0


def _add_scores(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scores",
        help="measure random and expert scores of tasks (--write updates envs/scores.json)",
    )
    p.add_argument("--tasks", help="comma-separated task names (default: every task)")
    p.add_argument("--episodes", type=int, default=20, help="episodes per policy (default 20)")
    p.add_argument("--seed", type=int, help="first env seed (default: the table's 1000000)")
    p.add_argument("--workers", type=int, default=1, help="processes (default 1)")
    p.add_argument("--write", action="store_true", help="rewrite these rows of the table")
    p.set_defaults(func=_run_scores)


def _run_scores(args: argparse.Namespace) -> int:
    from gato.envs import registry, task_names
    from gato.envs.scores import SEED_BASE, measure, write_scores

    # a task that shares another's row (pong-48: pong's) has nothing of its own to measure
    tasks = _sources_arg(args.tasks) or [t for t in task_names() if registry.scores_key(t) == t]
    for task in tasks:  # every name checked before the first measurement
        if (shared := registry.scores_key(task)) != task:
            raise ValueError(f"{task} shares the score row of {shared}: measure {shared}")
    rows = {}
    for task in tasks:
        seed = SEED_BASE if args.seed is None else args.seed
        row = measure(task, args.episodes, seed, args.workers)
        rows[task] = row
        print(
            f"{task:24s} random {row.random.mean:9.2f} +/- {row.random.std:7.2f}   "
            f"expert {row.expert.mean:9.2f} +/- {row.expert.std:7.2f}   ({args.episodes} ep)",
            flush=True,
        )
    if args.write:
        write_scores(rows)
        print(f"wrote {len(rows)} rows to the score table")
    return 0


def _sources_arg(text: str | None) -> list[str] | None:
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


def _print_manifest(m: dict) -> None:
    import json

    print(
        json.dumps(
            {"name": m["name"], "stats": m["stats"], "build_seconds": m["build_seconds"]}, indent=2
        )
    )


def _run_data_scenes(args: argparse.Namespace) -> int:
    from gato.data.build import SceneCounts, build_scenes

    counts = SceneCounts(train=args.train, test=args.test, heldout=args.heldout)
    _print_manifest(build_scenes(args.data_dir, counts, args.seed, args.image_size, args.force))
    return 0


def _run_data_captions(args: argparse.Namespace) -> int:
    from gato.data.build import build_captions

    m = build_captions(args.data_dir, args.jsonl, not args.no_fashion_mnist, args.force)
    _print_manifest(m)
    return 0


def _run_data_corpus(args: argparse.Namespace) -> int:
    from gato.data.build import build_corpus

    m = build_corpus(args.data_dir, args.text, _sources_arg(args.sources), args.force)
    _print_manifest(m)
    return 0


def _run_data_dialogues(args: argparse.Namespace) -> int:
    from gato.data.build import build_dialogues

    m = build_dialogues(
        args.data_dir,
        args.chat,
        _sources_arg(args.sources),
        args.wordnet,
        args.scene_dialogues,
        args.seed,
        args.force,
    )
    _print_manifest(m)
    return 0


def _run_data_tokenizer(args: argparse.Namespace) -> int:
    from gato.data.build import build_tokenizer

    m = build_tokenizer(args.data_dir, args.vocab_size, args.sample_mb, args.seed, args.force)
    _print_manifest(m)
    return 0


def _run_data_all(args: argparse.Namespace) -> int:
    from gato.data import build

    d, f, seed = args.data_dir, args.force, args.seed
    build.build_scenes(d, build.SceneCounts(), seed, force=f)
    try:
        build.build_captions(d, force=f)
    except FileNotFoundError as exc:  # no Fashion-MNIST: scenes still give captions
        print(f"captions: {exc}", file=sys.stderr)
    build.build_corpus(d, force=f)
    build.build_dialogues(d, seed=seed, force=f)
    _print_manifest(build.build_tokenizer(d, args.vocab_size, seed=seed, force=f))
    return 0


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a checkpoint on a weighted mixture of episodes, captions and dialogues",
        description="Train per a TOML run config (see configs/). Under `torchrun "
        "--nproc_per_node=N` the same command trains with DistributedDataParallel.",
    )
    p.add_argument("--config", help="run config TOML (optional with --resume: the saved one)")
    p.add_argument("--out", required=True, type=Path, help="run directory (checkpoints, metrics)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set optim.lr=3e-4 (repeatable)",
    )
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument(
        "--stop-at", type=int, metavar="STEP", help="stop (with a checkpoint) after STEP steps"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    import signal

    from gato.train import TrainingDiverged, resolve_run_config, train

    cfg = resolve_run_config(args.config, args.overrides, args.out, args.resume)
    try:
        result = train(
            cfg, args.out, resume=args.resume, stop_at=args.stop_at, progress=not args.no_progress
        )
    except TrainingDiverged as exc:
        print(f"gato: error: {exc}", file=sys.stderr)
        return 3
    if result.checkpoint is not None:  # rank 0 (the one that writes checkpoints)
        print(f"{result.status} at step {result.step}: {result.checkpoint}")
    if result.status == "interrupted":
        return 130 if result.signum == signal.SIGINT else 128 + result.signum
    return 0


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="run benchmarks from bench/ and write one JSON of figures each",
        description="Run the benchmarks in the repository's bench/ folder (all, or the NAMEs "
        "given). Each prints its table and writes RESULTS/NAME.json with the machine, the "
        "config and the figures; speed claims are ratios measured side by side in one run.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: seconds, for smoke tests")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--results", type=Path, help="output folder (default bench/results)")
    p.add_argument(
        "--report",
        action="store_true",
        help="run no benchmark: rewrite README.md's Performance section from the JSON files",
    )
    p.add_argument("--readme", type=Path, help="README to rewrite with --report (default: repo's)")
    p.set_defaults(func=_run_bench)


def bench_dir() -> Path:
    """The repository's bench/ folder (benchmarks run from a source checkout)."""
    import gato

    found = Path(gato.__file__).resolve().parents[1] / "bench"
    if not (found / "harness.py").is_file():
        raise FileNotFoundError(
            "gato bench runs from a source checkout: no bench/ folder next to the gato package "
            f"({found})"
        )
    return found


NOT_BENCHMARKS = ("harness", "report")  # bench/ modules that measure nothing


def benchmark_names() -> list[str]:
    """The benchmarks in bench/: every script but the shared harness and the report."""
    return sorted(p.stem for p in bench_dir().glob("*.py") if p.stem not in NOT_BENCHMARKS)


def _run_bench(args: argparse.Namespace) -> int:
    import subprocess

    folder = bench_dir()
    results = args.results or folder / "results"
    if args.report:
        if args.names:
            raise ValueError("--report runs no benchmark: give no NAME (run them first)")
        cmd = [sys.executable, str(folder / "report.py"), "--results", str(results)]
        if args.readme:
            cmd += ["--readme", str(args.readme)]
        return subprocess.run(cmd).returncode
    known = benchmark_names()
    names = args.names or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown benchmark {unknown[0]!r}; known: {', '.join(known)}")
    failed = []
    for name in names:
        out = results / f"{name}.json"
        cmd = [
            sys.executable,
            str(folder / f"{name}.py"),
            "--device",
            args.device,
            "--out",
            str(out),
        ]
        print(f"== bench {name}{' (quick)' if args.quick else ''}", flush=True)
        if subprocess.run(cmd + (["--quick"] if args.quick else [])).returncode != 0:
            failed.append(name)
        else:
            print(f"   wrote {out}")
    if failed:
        raise RuntimeError(f"benchmark(s) failed: {', '.join(failed)}")
    return 0


def _add_model_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "model-info",
        help="print a model preset's shape and parameter count (no weights allocated)",
        description="Build the preset's model on the meta device (no memory for weights) and "
        "print its parameter count by part; a tied head is counted once.",
    )
    p.add_argument("preset", metavar="PRESET", help="preset name, e.g. debug, cpu-small, gato-79m")
    p.set_defaults(func=_run_model_info)


def _run_model_info(args: argparse.Namespace) -> int:
    import torch

    from gato.config import load_preset
    from gato.model import Gato

    cfg = load_preset(args.preset)
    with torch.device("meta"):
        counts = Gato(cfg).param_counts()
    print(
        f"{cfg.name}: {cfg.n_layer} layers, d_model {cfg.d_model}, d_ff {cfg.d_ff}, "
        f"{cfg.n_head} heads, context {cfg.context}, vocab {cfg.vocab.size} "
        f"(text {cfg.text_size}), head {'tied' if cfg.tie_head else 'untied'}"
    )
    rows = [
        ("token embedding", counts.token_embedding),
        ("patch embedding", counts.patch_embedding),
        ("other embeddings", counts.other_embeddings),
        ("blocks", counts.blocks),
    ]
    if not cfg.tie_head:
        rows.append(("head", counts.head))
    rows.append(("total", counts.total))
    for name, n in rows:
        print(f"  {name:17s} {n:>15,d}  ({n / 1e6:,.2f}M)")
    return 0


# ---------------------------------------------------------------- gato eval / gato play


def _policy_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint or run directory")
    p.add_argument("--seed", type=int, default=0, help="base seed: episode k uses env seed S+k")
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--max-steps", type=int, help="cut episodes after this many steps")
    p.add_argument(
        "--action-decoding", choices=["mode", "median"], default="mode",
        help="continuous actions: the most likely bin (mode, default) or the median bin "
        "of the model's distribution (median; needs --temperature 0)",
    )  # fmt: skip


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="score a checkpoint in its environments (mean, std, expert-normalised)",
        description="Play episodes with N vector envs and report returns and "
        "expert-normalised scores; --task all evaluates every control task of the run.",
    )
    _policy_args(p)
    p.add_argument("--task", required=True, help="task name, or 'all' (every trained task)")
    p.add_argument("--episodes", type=int, default=50, help="episodes per task (default 50)")
    p.add_argument("--envs", type=int, default=8, help="envs stepped together (default 8)")
    p.add_argument("--async-envs", action="store_true", help="one process per env")
    p.add_argument("--json", type=Path, help="write the results as JSON here")
    p.add_argument("--plot", type=Path, help="bar chart of normalised scores (PNG)")
    p.add_argument("--prompt-store", type=Path, help="episode store(s) for demonstration prompts")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_run_eval)


def _eval_specs(trained, task: str) -> list:
    from gato.envs import registry

    known = registry.task_names()
    if task == "all":
        names = [t for t in trained.tasks if t in known]
        if not names:
            raise ValueError(
                f"the checkpoint was trained on no control task (its tasks: {trained.tasks})"
            )
        return [registry.spec(t) for t in names]
    return [trained.task_spec(task)]


def _load_for_policy(args: argparse.Namespace):
    import torch

    from gato.loading import load_trained
    from gato.sampling import SamplingConfig

    torch.set_num_threads(args.threads)
    sampling = SamplingConfig(temperature=args.temperature)
    if args.action_decoding == "median" and args.temperature != 0.0:
        raise ValueError("--action-decoding median is deterministic; use it with --temperature 0")
    if args.max_steps is not None and args.max_steps < 1:
        raise ValueError(f"--max-steps must be >= 1, got {args.max_steps}")
    return load_trained(args.checkpoint, args.device), sampling


def _run_eval(args: argparse.Namespace) -> int:
    from gato.evaluate import evaluate, vl_metric_rows, write_json
    from gato.policy import ActionDecoding

    if args.episodes < 1 or args.envs < 1:
        raise ValueError("--episodes and --envs must be >= 1")
    trained, sampling = _load_for_policy(args)
    specs = _eval_specs(trained, args.task)
    report = evaluate(
        trained, specs, args.episodes, args.envs, args.seed, sampling, args.device,
        args.prompt_store, args.max_steps, args.async_envs, progress=not args.no_progress,
        action_decoding=ActionDecoding(args.action_decoding),
    )  # fmt: skip
    if args.task == "all" and not report.interrupted:
        report.metrics += vl_metric_rows(trained)  # captions, zero-shot, chat
    print(report.table())
    if args.json:
        print(f"wrote {write_json(report, args.json)}")
    if args.plot and report.normalised_scores():
        from gato.plots import score_bars

        title = f"{Path(args.checkpoint).name}: expert-normalised score"
        print(f"wrote {score_bars(report.normalised_scores(), args.plot, title=title)}")
    elif args.plot:
        print("no plot: no task has measured random/expert scores", file=sys.stderr)
    if report.interrupted:
        print("gato: interrupted; partial results written", file=sys.stderr)
        return 130
    return 0


def _add_play(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "play",
        help="play one episode with a checkpoint; optionally record an animated GIF",
        description="Play one episode (the first one `gato eval --seed S` plays) and "
        "print its return; --record saves the frames as a GIF.",
    )
    _policy_args(p)
    p.add_argument("--task", required=True, help="task name")
    p.add_argument("--record", type=Path, help="write the episode's frames as a GIF here")
    p.add_argument("--fps", type=float, default=30.0, help="GIF frames per second")
    p.add_argument("--scale", type=int, default=2, help="GIF upscaling factor (default 2)")
    p.set_defaults(func=_run_play)


def _run_play(args: argparse.Namespace) -> int:
    from gato.play import play_episode
    from gato.policy import ActionDecoding

    trained, sampling = _load_for_policy(args)
    (spec,) = _eval_specs(trained, args.task) if args.task != "all" else (None,)
    if spec is None:
        raise ValueError("gato play takes one task, not 'all'")
    played = play_episode(
        trained, spec, args.seed, sampling, args.device, args.record is not None, args.max_steps,
        ActionDecoding(args.action_decoding),
    )  # fmt: skip
    print(f"{spec.name}: return {played.score:.2f} in {played.length} steps (seed {args.seed})")
    if args.record is not None:
        from gato.recording import write_gif

        path = write_gif(played.frames, args.record, fps=args.fps, scale=args.scale)
        print(f"wrote {path} ({len(played.frames)} frames)")
    return 0


# -- captioning, chat, zero-shot classification, their metrics (issue 9) ------------------


def _add_generation_args(p: argparse.ArgumentParser, max_new_tokens: int = 64) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint or run directory")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument(
        "--max-new-tokens",
        type=int,
        default=max_new_tokens,
        help=f"most tokens sampled per answer (default {max_new_tokens})",
    )
    p.add_argument(
        "--temperature", type=float, default=0.0, help="0 = greedy (default); > 0 samples"
    )
    p.add_argument("--top-k", type=int, default=0, help="keep the k most likely ids (0 = all)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (1 = all)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")


def _add_image_size_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("H", "W"),
        help="resize images to H x W (default: the checkpoint's caption size)",
    )


def _load_for_generation(args: argparse.Namespace):
    import torch

    from gato.generate import GenerationConfig
    from gato.loading import load_trained
    from gato.sampling import SamplingConfig

    torch.set_num_threads(2)
    sampling = SamplingConfig(args.temperature, args.top_k, args.top_p)
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens, sampling=sampling)
    trained = load_trained(args.checkpoint, args.device)
    if trained.tokenizers.text is None:
        raise ValueError(
            f"{trained.path}: this checkpoint has no text model (trained without text)"
        )
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    return trained, gen, generator


def _image_tokenizers(trained, size):
    from gato.generate import checkpoint_image_size, with_image_size

    tok = trained.tokenizers
    if size is None:
        size = checkpoint_image_size(tok, trained.run, trained.path)
    return with_image_size(tok, tuple(size))


def _add_caption(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "caption",
        help="describe images (one caption per image)",
        description="Caption PNG/JPEG images of any size: each is resized to "
        "the size the checkpoint's captions had, then captioned to EOS.",
    )
    _add_generation_args(p)
    _add_image_size_arg(p)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    p.set_defaults(func=_run_caption)


def _run_caption(args: argparse.Namespace) -> int:
    from gato.generate import caption_images
    from gato.tokenizers.image import load_image

    images = [load_image(path) for path in args.images]  # every file checked before loading
    trained, gen, generator = _load_for_generation(args)
    tok = _image_tokenizers(trained, args.image_size)
    captions = caption_images(trained.model, tok, images, gen, generator)
    for path, caption in zip(args.images, captions, strict=True):
        print(f"{path}\t{caption}")
    return 0


def _add_chat(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "chat",
        help="talk with the model in the terminal",
        description="Interactive chat keeping the history in the context "
        "(oldest turns dropped when too long). Ctrl-D, Ctrl-C or /exit quits.",
    )
    _add_generation_args(p)
    p.add_argument("--prompt", help="answer this one message and exit (for scripts)")
    p.add_argument("--system", help="a system message placed first")
    p.set_defaults(func=_run_chat)


def _run_chat(args: argparse.Namespace) -> int:
    from gato.chat import ChatSession, chat_loop

    trained, gen, generator = _load_for_generation(args)
    session = ChatSession(trained.model, trained.tokenizers, gen, args.system, generator)
    if args.prompt is not None:
        print(session.reply(args.prompt))
        return 0
    return chat_loop(session)


def _add_classify(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classify",
        help="zero-shot image classification by caption likelihood",
        description="Rank candidate labels by the log-likelihood of their "
        "caption (the training template) given the image.",
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint or run directory")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--labels", required=True, help="comma-separated candidate labels")
    p.add_argument(
        "--template",
        default="a photo of {a} {label}",
        help="caption of a label; {label} and {a} (its article) are filled in",
    )
    _add_image_size_arg(p)
    p.add_argument("image", metavar="IMAGE", help="image file")
    p.set_defaults(func=_run_classify)


def _run_classify(args: argparse.Namespace) -> int:
    import torch

    from gato.generate import rank_labels
    from gato.loading import load_trained
    from gato.tokenizers.image import load_image

    labels = [s.strip() for s in args.labels.split(",") if s.strip()]
    if not labels:
        raise ValueError("--labels needs at least one label (comma-separated)")
    image = load_image(args.image)
    torch.set_num_threads(2)
    trained = load_trained(args.checkpoint, args.device)
    if trained.tokenizers.text is None:
        raise ValueError(
            f"{trained.path}: this checkpoint has no text model (trained without text)"
        )
    tok = _image_tokenizers(trained, args.image_size)
    ranking = rank_labels(trained.model, tok, image, labels, args.template)
    width = max(len(r.label) for r in ranking)
    print(f"{'rank':>4}  {'label':<{width}}  {'log-likelihood':>14}  {'share':>6}")
    for i, r in enumerate(ranking, 1):
        print(f"{i:>4}  {r.label:<{width}}  {r.log_likelihood:>14.3f}  {r.probability:>6.1%}")
    return 0


def _add_eval_vl(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval-vl",
        help="caption, zero-shot and chat metrics of a checkpoint",
        description="Exact-match / token-F1 captions on held-out procedural "
        "scenes (test split) and unseen combinations (heldout split), zero-shot "
        "accuracy on Fashion-MNIST's test split, held-out chat perplexity.",
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint or run directory")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--scenes", type=int, default=200, help="scenes per split (default 200)")
    p.add_argument("--scene-seed", type=int, default=0, help="scene seed (default 0)")
    p.add_argument("--image-size", type=int, help="scene side (default: the checkpoint's)")
    p.add_argument("--fashion-dir", help="Fashion-MNIST folder (default: the Debian package's)")
    p.add_argument("--fashion", type=int, default=1000, help="test images (default 1000)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=_run_eval_vl)


def _run_eval_vl(args: argparse.Namespace) -> int:
    import json

    import torch

    from gato.loading import load_trained
    from gato.vl_metrics import checkpoint_vl_rows

    torch.set_num_threads(2)
    trained = load_trained(args.checkpoint, args.device)
    rows = checkpoint_vl_rows(
        trained, args.scenes, args.fashion, args.fashion_dir, args.image_size, args.scene_seed
    )
    if args.json:
        print(json.dumps([r.to_dict() for r in rows], indent=2))
        return 0
    print(f"{'task':<18} {'metric':<20} {'value':>8} {'n':>6} {'chance':>7}  note")
    for r in rows:
        chance = "" if r.chance is None else f"{r.chance:.3f}"
        print(f"{r.task:<18} {r.metric:<20} {r.value:>8.3f} {r.n:>6} {chance:>7}  {r.note}")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="build a small data set, train, then play, caption, chat and score (make demo)",
        description="The whole pipeline into DIR: data (scenes, dialogues, tokenizer, expert "
        "demonstrations), a few minutes of training, then one recorded episode, two "
        "captions, one chat reply and a score table. Every stage skips work already done.",
    )
    p.add_argument(
        "--out", type=Path, default=Path("demo"), metavar="DIR", help="output folder (default demo)"
    )
    p.add_argument("--quick", action="store_true", help="tiny model, one task: seconds (CI)")
    p.add_argument("--force", action="store_true", help="redo play/caption/chat/scores")
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from gato.demo import run_demo

    run_demo(args.out, quick=args.quick, force=args.force)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gato",
        description="gato-agent: one transformer, one token stream; plays gymnasium games, "
        "captions images and chats.",
    )
    parser.add_argument("--version", action="version", version=f"gato-agent {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_tokenize(sub)
    _add_data(sub)
    _add_train(sub)
    _add_tasks(sub)
    _add_scores(sub)
    _add_bench(sub)
    _add_model_info(sub)
    _add_eval(sub)
    _add_play(sub)
    _add_caption(sub)
    _add_chat(sub)
    _add_classify(sub)
    _add_eval_vl(sub)
    _add_demo(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("gato: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if args.debug:
            raise
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"gato: error: {_one_line(msg)}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the one place that turns crashes into a line
        if args.debug:
            raise
        print(
            f"gato: internal error: {type(exc).__name__}: {_one_line(exc)} (rerun with --debug)",
            file=sys.stderr,
        )
        return 1


def _one_line(message: object) -> str:
    """The message on one line: the contract is one stderr line per error."""
    return " ".join(str(message).split())


if __name__ == "__main__":
    sys.exit(main())
