"""`gato train`: one checkpoint trained on a weighted mixture of episodes, captions and chat.

The loop, step by step (``step`` counts finished optimiser steps):

1. the step's micro-batches arrive from background workers (``gato.data.mixture``);
   every row is a pure function of ``(seed, step, row index)``, so the data position
   is just the step number and rank ``r`` of ``W`` reads its own slice of the same
   global batch;
2. the loss of each micro-batch is its summed cross-entropy divided by the number of
   targets of the *whole global batch* (counted before the backward passes), so the
   gradient is the same whether the batch is split over micro-batches, processes or
   neither;
3. gradient clipping, AdamW with the warm-up + cosine learning rate, and a check
   that loss and gradient norm are finite (if not: stop, the last checkpoint stays);
4. logging (rank 0), held-out evaluation, checkpoints.

Randomness that is not data (dropout, the patch positions drawn in training mode)
comes from torch's global generator, reseeded at the start of every step from
``(seed, step, rank)``. Together with the exact optimiser state this makes a resumed
fp32 run repeat the losses of an uninterrupted one bit for bit.

Weight decay applies to matrices of linear and convolution layers only; not to
biases, normalisation weights or embedding tables (token, patch position, local
observation position): decaying a lookup table pulls rarely seen ids towards zero,
which is a prior we do not want (as in nanoGPT/minGPT).
"""

from __future__ import annotations

import math
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch.distributed.tensor import DTensor

from gato import distributed, precision, sharding
from gato.action_dropout import drop_actions, legal_ranges
from gato.checkpoint import Checkpoint, latest_checkpoint, load_checkpoint, save_checkpoint
from gato.config import (
    ModelConfig,
    Precision,
    RunConfig,
    check_data_paths,
    from_dict,
)
from gato.data.mixture import Mixture, micro_batch_loader
from gato.loss import frequency_loss, predicting, sequence_loss
from gato.metrics import MetricsWriter
from gato.model import Gato
from gato.schedule import learning_rate
from gato.sequence import Kind, TokenBatch
from gato.tokenizers.text import TextTokenizer


class TrainingDiverged(RuntimeError):
    """The loss or the gradient norm became NaN/inf; the run stopped without saving."""


@dataclass
class TrainResult:
    """How a ``train`` call ended.

    Attributes:
        step: optimiser steps finished (the run's data position).
        status: "done", "paused" (``stop_at`` reached) or "interrupted" (signal).
        checkpoint: the checkpoint written last, if any.
        losses: training loss of each step run in this call (global, all ranks).
    """

    step: int
    status: str
    checkpoint: Path | None
    losses: list[float] = field(default_factory=list)
    signum: int = 0


# -- pieces ----------------------------------------------------------------------------


def param_groups(
    model: nn.Module, weight_decay: float, embedding_eps: float | None = None
) -> list[dict]:
    """AdamW groups: decay matrices of Linear/Conv layers; nothing else (see module doc).

    With ``embedding_eps`` the embedding tables form a third group (no decay) with that
    Adam ``eps``; the others keep the optimiser's default.
    """
    decay, no_decay, tables = [], [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad:
                continue
            is_matrix = isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d)) and name == "weight"
            is_table = isinstance(module, nn.Embedding) and embedding_eps is not None
            (decay if is_matrix else tables if is_table else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if embedding_eps is not None:
        groups.append({"params": tables, "weight_decay": 0.0, "eps": embedding_eps})
    return groups


def step_seed(seed: int, step: int, rank: int) -> int:
    """The torch seed of one step of one process (dropout, training patch positions)."""
    return int(np.random.SeedSequence([seed, step, rank, 0x7A]).generate_state(1)[0])


def resolve_run_config(
    config_path: str | None, overrides: list[str], out: Path, resume: bool
) -> RunConfig:
    """The config of a run: the file (+ ``--set``), or on ``--resume`` without a file, the
    config saved with the run's newest checkpoint (+ ``--set``)."""
    from gato.config import load_run_config

    if config_path is not None:
        return load_run_config(config_path, overrides)
    if not resume:
        raise ValueError("--config is required (or --resume an existing run)")
    latest = latest_checkpoint(out)
    if latest is None:
        raise FileNotFoundError(f"--resume without --config: no checkpoint in {out}")
    saved = load_checkpoint(latest, with_optimizer=False).config
    return load_run_config(None, overrides, base=saved)


def scheduled_lr(cfg: RunConfig, step: int) -> float:
    """The learning rate ``cfg``'s schedule gives optimiser step ``step``."""
    oc = cfg.optim
    return learning_rate(
        step, peak=oc.lr, warmup=oc.warmup, total=cfg.train.steps, min_ratio=oc.min_ratio
    )


def schedule_change(saved: dict[str, Any], cfg: RunConfig, step: int) -> str | None:
    """A one-line note when resuming at ``step`` changes the learning-rate schedule.

    ``saved`` is the checkpoint's config (plain data, as ``config.json`` holds it). The
    schedule is a pure function of the step and of ``train.steps``, ``optim.lr``,
    ``optim.warmup`` and ``optim.min_ratio``; a ``--set`` of any of them on ``--resume``
    moves the rate from the one the run would have used next. None if it does not.
    """
    train_cfg, optim = saved.get("train", {}), saved.get("optim", {})
    try:
        steps, lr = int(train_cfg["steps"]), float(optim["lr"])
        warmup, min_ratio = int(optim["warmup"]), float(optim["min_ratio"])
    except (KeyError, TypeError, ValueError):
        return None  # a config without these fields: nothing to compare against
    before = learning_rate(step, peak=lr, warmup=warmup, total=steps, min_ratio=min_ratio)
    after, oc = scheduled_lr(cfg, step), cfg.optim
    if math.isclose(before, after, rel_tol=1e-9, abs_tol=0.0):
        return None
    return (
        f"the learning-rate schedule changes at step {step}: {before:.3g} -> {after:.3g} "
        f"(train.steps {steps} -> {cfg.train.steps}, optim.lr {lr:g} -> {oc.lr:g}, "
        f"optim.warmup {warmup} -> {oc.warmup}, optim.min_ratio {min_ratio:g} -> "
        f"{oc.min_ratio:g})"
    )


class _StopFlag:
    """Set by SIGINT/SIGTERM; the loop finishes the current step, saves and exits.

    A second SIGINT interrupts at once (KeyboardInterrupt), without a final save.
    """

    def __init__(self) -> None:
        self.signum = 0
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        if self.signum and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signum = signum


# -- the run ---------------------------------------------------------------------------


def train(
    cfg: RunConfig,
    out: str | Path,
    *,
    resume: bool = False,
    stop_at: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train per ``cfg`` into run directory ``out``; see the module docstring.

    Args:
        resume: continue from the newest checkpoint in ``out`` (a fresh start if none).
        stop_at: stop after this many finished steps (with a checkpoint), as if the run
            were cut there; the schedule still runs to ``cfg.train.steps``.

    Raises:
        ValueError / FileNotFoundError: bad config or data (before anything is written).
        TrainingDiverged: NaN/inf loss or gradient; the last good checkpoint is kept.
    """
    out = Path(out)
    tc = cfg.train
    env = distributed.from_environment()
    torch.set_num_threads(tc.threads)
    check_data_paths(cfg)
    existing = latest_checkpoint(out)
    if existing is not None and not resume:
        raise ValueError(f"{out} already holds checkpoints; pass --resume to continue it")
    dtype, native = precision.resolve(tc.dtype, tc.device), precision.native_bf16(tc.device)
    if dtype == Precision.BF16 and not native and tc.device.startswith("cuda"):
        raise ValueError(f"train.dtype: bf16 autocast is not supported on {tc.device}")
    if env.is_main and tc.dtype == Precision.AUTO:
        print(f"gato train: dtype auto -> {dtype.value} on {tc.device}", file=sys.stderr)
    elif env.is_main and dtype == Precision.BF16 and not native:
        print(
            "gato train: warning: bf16 on a CPU without native bf16 instructions is emulated "
            'and far slower than fp32 (train.dtype = "auto" picks for you)',
            file=sys.stderr,
        )

    text = TextTokenizer.load(cfg.data.resolve(cfg.data.tokenizer)) if cfg.data.tokenizer else None
    if text is not None and text.vocab_size != cfg.model.text_size:
        raise ValueError(
            f"model.text_size is {cfg.model.text_size} but the tokenizer "
            f"{cfg.data.resolve(cfg.data.tokenizer)} has {text.vocab_size} pieces "
            f"(set model.text_size={text.vocab_size} or use a matching tokenizer)"
        )
    mixture = Mixture(cfg, text)  # reads and checks every source before anything is written

    ckpt = None
    if resume and existing is not None:
        ckpt = load_checkpoint(existing)
        saved_model = from_dict(ModelConfig, ckpt.config.get("model", {}), "checkpoint model")
        if saved_model != cfg.model:
            raise ValueError(f"{existing}: its model config differs from this run's config")
        note = schedule_change(ckpt.config, cfg, int(ckpt.state["step"]))
        if note is not None and env.is_main:
            print(f"gato train: resuming {existing.name}: {note}", file=sys.stderr)

    device = distributed.setup(env, tc.device)
    try:
        return _run(cfg, out, env, device, mixture, text, ckpt, stop_at, progress, dtype)
    finally:
        distributed.teardown(env)


def _run(
    cfg, out, env, device, mixture, text, ckpt, stop_at, progress, dtype: Precision
) -> TrainResult:
    tc, oc = cfg.train, cfg.optim
    torch.manual_seed(tc.seed)  # same initial weights on every rank
    raw = Gato(cfg.model).to(device)
    start = 0
    if ckpt is not None:
        raw.load_state_dict(ckpt.model)  # the full weights, before any sharding
        start = int(ckpt.state["step"])
    fsdp = env.enabled and tc.fsdp
    model = _wrap(raw, cfg, env, device)  # under FSDP, shards ``raw`` in place
    optimizer = torch.optim.AdamW(
        param_groups(raw, oc.weight_decay, oc.embedding_eps),
        lr=oc.lr,
        betas=oc.betas,
        eps=oc.eps,
        foreach=True,
    )
    if ckpt is not None:
        if fsdp:
            sharding.load_optimizer_state(raw, optimizer, ckpt.optimizer)
        else:
            optimizer.load_state_dict(ckpt.optimizer)
    used = sharding.UsedModules(raw, device) if fsdp else None
    autocast = precision.autocast(dtype, device)
    end = tc.steps if stop_at is None else min(tc.steps, stop_at)
    accum, world = tc.grad_accum, env.world_size
    loader = micro_batch_loader(mixture, start, end, accum, env.rank, world, cfg.data.workers)
    batches = iter(loader)
    tasks = mixture.tasks
    action_ranges = legal_ranges(mixture.vocab, mixture.actions)
    writer = MetricsWriter(out / "metrics.jsonl") if env.is_main else None
    if env.is_main:
        out.mkdir(parents=True, exist_ok=True)
    text_bytes = text.model_bytes if text is not None else None

    def save(step: int) -> Path | None:
        path = None
        if fsdp:  # a collective: every rank sends its shards, rank 0 gets the full state
            model_state, optim_state = sharding.full_state(raw, optimizer)
        elif env.is_main:
            model_state, optim_state = raw.state_dict(), optimizer.state_dict()
        if env.is_main:
            state = {
                "data_position": {"next_step": step, "micro_batches_per_step": accum},
                "world_size": world,
                "tasks": tasks,  # what `gato eval --task all` evaluates
                "image_size": list(mixture.image_size) if mixture.image_size else None,
                "rng": "torch reseeded each step from (seed, step, rank); rows from "
                "(seed, step, row)",
            }
            path = save_checkpoint(
                out,
                step,
                Checkpoint(
                    model=model_state,
                    config=cfg.to_dict(),
                    text_model=text_bytes,
                    optimizer=optim_state,
                    state=state,
                ),
                keep=tc.keep,
            )
        if env.enabled:
            torch.distributed.barrier()
        return path

    bar = None
    if progress and env.is_main:
        from tqdm import tqdm

        bar = tqdm(total=end, initial=start, desc="train", unit="step", dynamic_ncols=True)
    result = TrainResult(step=start, status="done", checkpoint=None)
    window = _Window()
    step = start

    def run_eval(at: int) -> None:
        held = evaluate(model, mixture, tc.eval_batches, autocast, device)
        row = {f"eval/{k}": v for k, v in held.items()}
        if at == 0:  # once: the level of a model that learned only the target frequencies
            freq = heldout_frequency_losses(mixture, tc.eval_batches)
            row |= {f"freq/{k}": v for k, v in freq.items()}
        if writer is not None:
            writer.write(at, **{k: v for k, v in row.items() if not math.isnan(v)})

    with _StopFlag() as stop:
        try:
            if tc.eval_interval and step == 0 and end > 0:
                run_eval(0)  # the baseline every later held-out loss is compared with
            while step < end:
                t0 = time.perf_counter()
                micro = []
                for _ in range(accum):
                    tw = time.perf_counter()
                    micro.append(next(batches).to(device))
                    window.wait += time.perf_counter() - tw
                # Targets of the whole global batch: the loss normaliser of every rank.
                local = sum(int(b.loss_mask[:, 1:].sum()) for b in micro)
                n_global = _sum_over_ranks(torch.tensor([float(local)]), env, device).item()
                lr = scheduled_lr(cfg, step)
                for g in optimizer.param_groups:
                    g["lr"] = lr
                torch.manual_seed(step_seed(tc.seed, step, env.rank))
                model.train()
                stats = _Stats(tasks)
                if used is not None:
                    used.reset()
                for i, batch in enumerate(micro):
                    # FSDP reduce-scatters every micro-batch: gradients stay sharded.
                    sync = i == accum - 1 or not env.enabled or fsdp
                    with nullcontext() if sync else model.no_sync(), autocast:
                        inputs = drop_actions(batch, tc.action_dropout, action_ranges)
                        # logits only where a target is predicted; targets: the true actions
                        lo = sequence_loss(model(inputs, at=predicting(batch)), batch)
                    # DDP averages gradients over ranks: scale by world to get a sum.
                    (lo.loss * (lo.tokens * world / max(n_global, 1.0))).backward()
                    stats.add(lo, batch)
                if used is not None:
                    used.drop_unused_grads()
                grad_norm = _clip(raw, oc.clip)
                reduced = stats.reduce(env, stop.signum, grad_norm, device)
                if not (math.isfinite(reduced.loss) and math.isfinite(grad_norm)):
                    optimizer.zero_grad(set_to_none=True)
                    last = latest_checkpoint(out)
                    raise TrainingDiverged(
                        f"loss {reduced.loss} / gradient norm {grad_norm} at step {step}: "
                        f"stopped without saving; last good checkpoint: {last or 'none'}"
                    )
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                result.step = step
                result.losses.append(reduced.loss)
                window.add(time.perf_counter() - t0, reduced.real_tokens)
                if env.is_main:
                    if tc.log_interval and (step % tc.log_interval == 0 or step == end):
                        writer.write(
                            step,
                            **reduced.metrics(tasks),
                            lr=lr,
                            grad_norm=grad_norm,
                            **window.flush(),
                        )
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix(loss=f"{reduced.loss:.3f}", tok_s=f"{window.rate:.0f}")
                if tc.eval_interval and (step % tc.eval_interval == 0 or step == end):
                    run_eval(step)
                if reduced.stop:
                    result.status = "interrupted"
                    result.signum = stop.signum or signal.SIGTERM  # another rank's signal
                    break
                if tc.checkpoint_interval and step % tc.checkpoint_interval == 0 and step < end:
                    result.checkpoint = _save_if_finite(save, raw, step, out, env, device)
            if result.status == "done" and stop_at is not None and step < tc.steps:
                result.status = "paused"
            result.checkpoint = _save_if_finite(save, raw, step, out, env, device)
        finally:
            if bar is not None:
                bar.close()
            if writer is not None:
                writer.close()
            del batches, loader
    if result.status == "interrupted" and env.is_main:
        print(
            f"gato train: stopped by signal {stop.signum} at step {step}; saved "
            f"{result.checkpoint}",
            file=sys.stderr,
        )
    return result


def _save_if_finite(
    save, raw: nn.Module, step: int, out: Path, env: distributed.DistEnv, device: torch.device
) -> Path | None:
    """Never write a state with NaN/inf weights (e.g. after an infinite learning rate).

    Each rank checks the weights it holds (a shard under FSDP); all ranks agree.
    """
    bad = sum(int(not torch.isfinite(sharding.local(p)).all()) for p in raw.parameters())
    if _sum_over_ranks(torch.tensor([float(bad)]), env, device).item():
        raise TrainingDiverged(
            f"weights are not finite after step {step}: stopped without saving; "
            f"last good checkpoint: {latest_checkpoint(out) or 'none'}"
        )
    return save(step)


def evaluate(
    model: nn.Module, mixture: Mixture, batches: int, autocast, device: torch.device
) -> dict[str, float]:
    """Held-out loss per task: mean cross-entropy over targets of ``batches`` batches."""
    sums = heldout_batch_losses(model, mixture, batches, autocast, device)
    return {task: pooled_loss(per_batch) for task, per_batch in sums.items()}


def pooled_loss(sums: list[tuple[float, int]]) -> float:
    """Mean cross-entropy over every target of ``(summed cross-entropy, targets)`` pairs."""
    count = sum(n for _, n in sums)
    return sum(total for total, _ in sums) / count if count else float("nan")


def heldout_batch_losses(
    model: nn.Module, mixture: Mixture, batches: int, autocast, device: torch.device
) -> dict[str, list[tuple[float, int]]]:
    """Per task, each held-out batch's ``(summed cross-entropy, targets)``, batches
    ``0 .. batches - 1`` of :meth:`Mixture.heldout_batch` (the windows its seed draws)."""
    was_training = model.training
    model.eval()
    out: dict[str, list[tuple[float, int]]] = {}
    with torch.no_grad():
        for k, task in enumerate(mixture.tasks):
            out[task] = []
            for j in range(batches):
                batch = mixture.heldout_batch(k, j).to(device)
                with autocast:
                    lo = sequence_loss(model(batch, at=predicting(batch)), batch)
                out[task].append((float(lo.loss) * lo.tokens, int(lo.tokens)))
    model.train(was_training)
    return out


def heldout_frequency_losses(mixture: Mixture, batches: int) -> dict[str, float]:
    """Per task, :func:`gato.loss.frequency_loss` of the targets of the held-out batches
    :func:`evaluate` measures: the held-out loss of predicting every target from those
    targets' frequencies alone, without the context (``nan`` for a task with none)."""
    out: dict[str, float] = {}
    for k, task in enumerate(mixture.tasks):
        targets = []
        for j in range(batches):
            batch = mixture.heldout_batch(k, j)
            targets.append(batch.tokens[:, 1:][batch.loss_mask[:, 1:]])  # (M_j,)
        out[task] = frequency_loss(torch.cat(targets))
    return out


# -- helpers ---------------------------------------------------------------------------


def _wrap(raw: nn.Module, cfg: RunConfig, env: distributed.DistEnv, device) -> nn.Module:
    model = raw
    if env.enabled:
        if cfg.train.fsdp:
            model = sharding.shard(raw, device, env.world_size)
        else:
            from torch.nn.parallel import DistributedDataParallel

            ids = [device.index] if device.type == "cuda" else None
            # A rank's micro-batch may lack a modality (no images: the patch embedding
            # gets no gradient there), so DDP must look for unused parameters.
            model = DistributedDataParallel(raw, device_ids=ids, find_unused_parameters=True)
    else:
        model = _NoSync(raw)
    if cfg.train.compile:
        model = torch.compile(model)
    return model


class _NoSync(nn.Module):
    """A single-process stand-in giving the model the ``no_sync`` of a DDP wrapper."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def no_sync(self):
        return nullcontext()


def _clip(model: nn.Module, clip: float) -> float:
    """Clip the gradient norm to ``clip`` (if > 0); returns the norm before clipping.

    Under FSDP the gradients are shards; the norm comes back as a replicated DTensor
    (already summed over ranks) and ``full_tensor`` reads it.
    """
    params = [p for p in model.parameters() if p.grad is not None]
    if clip > 0:
        norm = torch.nn.utils.clip_grad_norm_(params, clip)
    else:
        norm = torch.nn.utils.get_total_norm([p.grad for p in params])
    return float(norm.full_tensor() if isinstance(norm, DTensor) else norm)


def _sum_over_ranks(
    t: torch.Tensor, env: distributed.DistEnv, device: torch.device
) -> torch.Tensor:
    """Sum a CPU tensor over processes; returns a CPU tensor.

    The collective runs on ``device``: NCCL (CUDA) only reduces CUDA tensors.
    """
    if env.enabled:
        on_device = t.to(device)
        torch.distributed.all_reduce(on_device, op=torch.distributed.ReduceOp.SUM)
        t = on_device.cpu()
    return t


@dataclass
class _Reduced:
    loss: float
    text_loss: float
    action_loss: float
    per_task: list[float]
    real_tokens: int
    stop: bool

    def metrics(self, tasks: list[str]) -> dict[str, float]:
        """Losses by modality and by task; a part without targets in this step is left out."""
        row = {"loss": self.loss, "text_loss": self.text_loss, "action_loss": self.action_loss}
        row.update({f"loss/{t}": v for t, v in zip(tasks, self.per_task, strict=True)})
        return {k: v for k, v in row.items() if not math.isnan(v) or k == "loss"}


class _Stats:
    """Loss sums and target counts of one step, summed over micro-batches and ranks."""

    def __init__(self, tasks: list[str]) -> None:
        self.tasks = tasks
        # [loss_sum, n, text_sum, text_n, action_sum, action_n, real_tokens, stop, ...tasks]
        self.v = np.zeros(8 + 2 * len(tasks), dtype=np.float64)

    def add(self, lo, batch: TokenBatch) -> None:
        v = self.v
        v[0] += float(lo.loss.detach()) * lo.tokens
        v[1] += lo.tokens
        v[2] += (lo.text_loss or 0.0) * lo.text_tokens
        v[3] += lo.text_tokens
        v[4] += (lo.action_loss or 0.0) * lo.action_tokens
        v[5] += lo.action_tokens
        v[6] += int((batch.kinds != Kind.PAD).sum())
        for k, task in enumerate(self.tasks):
            if task in lo.per_task:
                v[8 + 2 * k] += lo.per_task[task].loss_sum
                v[9 + 2 * k] += lo.per_task[task].tokens

    def reduce(
        self, env: distributed.DistEnv, signum: int, grad_norm: float, device: torch.device
    ) -> _Reduced:
        v = self.v.copy()
        v[7] = float(bool(signum))
        t = _sum_over_ranks(torch.tensor(v, dtype=torch.float64), env, device).numpy()

        def mean(s: float, n: float) -> float:
            return float(s / n) if n else float("nan")

        per_task = [mean(t[8 + 2 * k], t[9 + 2 * k]) for k in range(len(self.tasks))]
        return _Reduced(
            loss=mean(t[0], t[1]),
            text_loss=mean(t[2], t[3]),
            action_loss=mean(t[4], t[5]),
            per_task=per_task,
            real_tokens=int(t[6]),
            stop=bool(t[7]),
        )


class _Window:
    """Throughput and data-wait share since the last log line."""

    def __init__(self) -> None:
        self.wait = 0.0
        self.time = 0.0
        self.tokens = 0
        self.rate = 0.0

    def add(self, seconds: float, tokens: int) -> None:
        self.time += seconds
        self.tokens += tokens
        self.rate = self.tokens / self.time if self.time else 0.0

    def flush(self) -> dict[str, float]:
        row = {
            "tokens_per_s": self.rate,
            "data_wait_fraction": self.wait / self.time if self.time else 0.0,
            "step_time_s": self.time,
        }
        self.wait = self.time = 0.0
        self.tokens = 0
        return row
