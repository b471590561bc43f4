"""The one training engine every method plugs into with a step function and an evaluation function.

A method builds its model, a sampler of training positions and two closures, and hands them to
:func:`fit` with a :class:`FitSpec` (from its config): the engine runs AdamW, an optional linear
warm-up + cosine schedule and gradient clipping, evaluates every ``eval_every`` steps (early
stopping on the validation loss, :mod:`.stopping`), checkpoints every ``checkpoint_every`` steps
(model, optimiser, numpy RNG, running state) and resumes a checkpoint of the same identity, logs
curves (:mod:`.curves`) and shows a progress bar. Then the method computes its final metrics and
card and calls :func:`finish` (weights, then card, then the checkpoint goes).

Randomness: one numpy Generator seeded with the config's seed drives every draw after
initialisation; each step draws the batch positions from it, then (``reseed_torch``) seeds torch
from it, then calls ``step_fn(positions, rng)``, which may draw more (the IDM's flip mask). The
Generator is checkpointed and torch runs on a fixed thread count (:mod:`.session`), so on CPU a
resumed run ends with the same weights as an uninterrupted one.

Several processes (``torchrun --nproc_per_node N -m workbench …``, :func:`.session.join_process_group`):
every rank draws the same global batch from the same Generator and trains on its slice
``positions[rank::N]``; after the backward pass the gradients are averaged over the ranks (what
``DistributedDataParallel`` does, done here explicitly because the methods' step functions call
their models' own methods — ``loss``, ``encode`` — which DDP's forward hook does not see), so the
ranks stay identical and match one process at the same global batch up to rounding. A parameter
without a gradient on every rank (a head with no label in any slice) keeps none, as in one process;
buffers (batch-norm statistics) follow rank 0's after each step, as DistributedDataParallel's do.
Rank 0 alone writes checkpoints, curves, weights and card.

Synchronisation: a step's loss and statistics stay tensors on the device; they come to the host
together, once per evaluation or checkpoint (:class:`_StepLog`), where the per-step curves are
written and the interval's throughput measured, so the accelerator never waits for the host
between steps. ``precision: bf16`` runs ``step_fn`` under bfloat16 autocast (:func:`.device.autocast`);
the backward pass and the optimiser stay in float32.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import torch
import torch.distributed as dist
from tqdm.auto import tqdm

from ..core.errors import ConfigError
from . import stopping
from .curves import CURVES, CurveWriter
from .device import autocast
from .ids import ENGINE_VERSION
from .library import CARD, CHECKPOINT, ModelLibraryError, delete_model, load_card, model_path, save_model
from .session import barrier, host_group, read_checkpoint, world, write_checkpoint

#: ``step_fn(positions, rng) -> (loss, {stat: float or 0-d tensor})``: one training step's loss on the drawn batch.
StepFn = Callable[[np.ndarray, np.random.Generator], "tuple[torch.Tensor, dict]"]
#: ``eval_fn() -> ({metric: float}, validation loss or None)``, run in eval mode without gradients.
EvalFn = Callable[[], "tuple[dict, float | None]"]


@dataclass(frozen=True)
class FitSpec:
    """What the engine needs to know of a run; :meth:`of` reads it from a method's config."""

    model_id: str
    identity: dict
    seed: int
    steps: int
    lr: float
    weight_decay: float
    eval_every: int
    checkpoint_every: int
    items_per_step: int
    unit: str = "items"
    patience: int | None = None
    warmup: float | None = None  # fraction of the steps of linear warm-up before a cosine decay; None: constant lr
    grad_clip: float | None = None  # max gradient norm; None: no clipping
    reseed_torch: bool = False  # seed torch from the Generator before each step (stochastic layers)
    precision: str = "fp32"  # "bf16": the step function runs under bfloat16 autocast

    @classmethod
    def of(cls, cfg: Any, unit: str, **options) -> FitSpec:
        """The spec of a config with ``model_id``, ``seed``, ``steps``, ``lr``, ``weight_decay``,
        ``eval_every``, ``checkpoint_every``, ``batch_size``, ``patience``, ``precision`` and ``identity()``."""
        return cls(model_id=cfg.model_id, identity=cfg.identity(), seed=cfg.seed, steps=cfg.steps, lr=cfg.lr,
                   weight_decay=cfg.weight_decay, eval_every=cfg.eval_every, checkpoint_every=cfg.checkpoint_every,
                   items_per_step=cfg.batch_size, unit=unit, patience=cfg.patience,
                   precision=getattr(cfg, "precision", "fp32"), **options)

    def checkpoint_identity(self) -> dict:
        """What a checkpoint must have been written with to be resumed: the config and the engine."""
        return {**self.identity, "engine_version": ENGINE_VERSION}


def per_item_draw(draw: Callable[[int], np.ndarray], n_local: int) -> np.ndarray:
    """A random draw per item of this rank's ``n_local`` items (``draw(n)``, e.g. ``rng.random``)
    that is one process's draw for the whole global batch, sliced as :func:`fit` slices the
    positions: the same flips land on the same pairs however many processes train."""
    rank, ranks = world()
    return draw(n_local * ranks)[rank::ranks]


def lr_factor(step: int, steps: int, warmup: float) -> float:
    """Learning-rate multiplier at ``step`` (0-based): linear warm-up over ``warmup`` of the
    steps, then cosine decay to zero."""
    n_warm = max(1, int(round(warmup * steps)))
    if step < n_warm:
        return (step + 1) / n_warm
    return 0.5 * (1 + math.cos(math.pi * (step - n_warm) / max(1, steps - n_warm)))


def existing(model_id: str, same_config: Callable[[Mapping], bool], force: bool) -> Any:
    """The card of the finished model ``model_id``, None when there is none (``force`` deletes it
    and any checkpoint first); an error when its config is not the one asked for
    (``same_config(card.config)`` is False)."""
    if force and world()[0] == 0:
        delete_model(model_id)
    barrier()
    if not (model_path(model_id) / CARD).is_file():
        return None
    card = load_card(model_id)
    if not same_config(card["config"]):
        raise ModelLibraryError(f"model {model_id!r} exists with a different config; set model_id to a new id"
                                " or pass force=True to replace it")
    trained_under = (card.get("training") or {}).get("engine_version", 1)
    if trained_under != ENGINE_VERSION:  # same settings, other training semantics: not this model
        raise ModelLibraryError(f"model {model_id!r} was trained under engine version {trained_under}, this code "
                                f"is version {ENGINE_VERSION}; set model_id to a new id or pass force=True to retrain it")
    return card


def fit(spec: FitSpec, model: torch.nn.Module, step_fn: StepFn, eval_fn: EvalFn, sampler: Any,
        max_steps: int | None = None, progress: bool = True) -> tuple[dict, bool]:
    """Train ``model`` in place (or resume its checkpoint); the running state (``step``,
    ``history``, ``train_seconds``, ``early_stop``) and whether training finished (all steps, or
    stopped early with the best weights loaded) rather than stopped at ``max_steps`` with a
    checkpoint (call again to resume).

    ``sampler.draw(rng)`` gives each step's batch positions. The history holds one entry per
    evaluation: ``{"step", "train": mean step stats, "val": eval metrics[, "val_loss"]}``.
    """
    folder = model_path(spec.model_id)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=spec.lr, weight_decay=spec.weight_decay)
    rng = np.random.default_rng(spec.seed)
    state = {"step": 0, "history": [], "train_seconds": 0.0, "stats": [],
             "early_stop": stopping.new_record() if spec.patience else None}
    ckpt_path = folder / CHECKPOINT
    ckpt = read_checkpoint(ckpt_path, spec.checkpoint_identity())
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        rng.bit_generator.state = ckpt["rng"]
        state = {k: ckpt.get(k, v) for k, v in state.items()}
    rank, ranks = world()
    if spec.items_per_step % ranks:
        raise ConfigError(f"batch_size {spec.items_per_step} does not split evenly over {ranks} processes")
    curves = CurveWriter(folder / CURVES, state["step"], enabled=rank == 0)
    device = next(model.parameters()).device
    log = _StepLog(spec, state, curves, ranks)

    def checkpoint() -> None:
        log.flush()
        if rank == 0:
            write_checkpoint(ckpt_path, spec.checkpoint_identity(), model=model.state_dict(),
                             optimizer=optimizer.state_dict(), rng=rng.bit_generator.state, **state)
        curves.flush()

    stop_at = spec.steps if max_steps is None else min(spec.steps, int(max_steps))
    model.train()
    try:
        with tqdm(total=spec.steps, initial=state["step"], desc=f"train {spec.model_id}", unit="step",
                  disable=not progress or rank != 0) as bar:
            while state["step"] < stop_at and not stopping.stopped(state["early_stop"]):
                if spec.warmup is not None:
                    for group in optimizer.param_groups:
                        group["lr"] = spec.lr * lr_factor(state["step"], spec.steps, spec.warmup)
                positions = sampler.draw(rng)
                if ranks > 1:
                    positions = positions[rank::ranks]
                if spec.reseed_torch:
                    torch.manual_seed(int(rng.integers(2 ** 31)))
                with autocast(device, spec.precision):
                    loss, stats = step_fn(positions, rng)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if ranks > 1:
                    _average_gradients(params, ranks)
                if spec.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, spec.grad_clip)
                optimizer.step()
                if ranks > 1:
                    for buffer in model.buffers():
                        dist.broadcast(buffer, 0)
                state["step"] += 1
                step = state["step"]
                log.append(step, {"loss": loss.detach(), **stats})
                bar.update(1)
                if step % spec.eval_every == 0 or step == spec.steps:
                    log.flush()
                    _evaluate(spec, model, eval_fn, state, step, curves, bar)
                    log.restart()
                if step % spec.checkpoint_every == 0 and step < spec.steps:
                    checkpoint()
                    log.restart()
        log.flush()
        model.eval()
        if state["step"] < spec.steps and not stopping.stopped(state["early_stop"]):
            checkpoint()
            return state, False
    finally:
        curves.close()
    stopping.restore_best(state["early_stop"], model)
    return state, True


class _StepLog:
    """The steps' statistics since the last synchronisation point, kept as they come (0-d tensors
    on the device, or numbers), and brought to the host together by :meth:`flush`: the train
    curves of every step, the interval's throughput and training seconds, and the per-step values
    in ``state["stats"]`` (averaged over the ranks) from which the history's means are taken."""

    def __init__(self, spec: FitSpec, state: dict, curves: CurveWriter, ranks: int):
        self.spec, self.state, self.curves, self.ranks = spec, state, curves, ranks
        self.pending: list[tuple[int, dict]] = []
        self.restart()

    def restart(self) -> None:
        """Start timing an interval of training steps (after an evaluation or a checkpoint)."""
        self.started = time.perf_counter()

    def append(self, step: int, stats: dict) -> None:
        self.pending.append((step, stats))

    def flush(self) -> None:
        if not self.pending:
            return
        values = [v for _, stats in self.pending for v in stats.values()]
        tensors = [v for v in values if isinstance(v, torch.Tensor)]
        on_device = [v.detach().reshape(()).to(tensors[0].device, torch.float64) for v in tensors]
        moved = iter(torch.stack(on_device).cpu().tolist() if on_device else [])  # the one synchronisation
        numbers = [next(moved) if isinstance(v, torch.Tensor) else float(v) for v in values]
        if self.ranks > 1:
            total = torch.tensor(numbers, dtype=torch.float64)
            dist.all_reduce(total, group=host_group())
            numbers = (total / self.ranks).tolist()
        seconds = time.perf_counter() - self.started
        flat = iter(numbers)
        for step, stats in self.pending:
            stats = {name: next(flat) for name in stats}
            self.state["stats"].append(stats)
            self.curves.log(step, stats, "train")
        self.state["train_seconds"] += seconds
        self.curves.log(self.pending[-1][0], {f"{self.spec.unit}_per_s":
                                              len(self.pending) * self.spec.items_per_step / max(seconds, 1e-9)},
                        "throughput")
        self.pending = []
        self.restart()


def _evaluate(spec: FitSpec, model: torch.nn.Module, eval_fn: EvalFn, state: dict, step: int, curves: CurveWriter,
              bar: tqdm) -> None:
    """One evaluation: the history entry, early stopping's record, the curves and the bar."""
    model.eval()
    with torch.no_grad():
        val, val_loss = eval_fn()
    model.train()
    means = {k: float(np.mean([s[k] for s in state["stats"] if k in s])) for k in state["stats"][0]}
    entry = {"step": step, "train": means, "val": val}
    if val_loss is not None:
        entry["val_loss"] = float(val_loss)
        if spec.patience:
            stopping.observe(state["early_stop"], entry["val_loss"], step, model, spec.patience)
    state["history"].append(entry)
    state["stats"] = []
    curves.log(step, {**val, **({"val_loss": entry["val_loss"]} if val_loss is not None else {})}, "val")
    bar.set_postfix(loss=f"{means['loss']:.3f}", **{k: f"{v:.3f}" for k, v in val.items()})


def _average_gradients(params: list[torch.nn.Parameter], ranks: int) -> None:
    """Average the gradients over the ranks in place, in one all-reduce; a parameter that has no
    gradient on any rank keeps none (the ranks learn which from an all-reduce of host-side flags)."""
    present = torch.tensor([p.grad is not None for p in params], dtype=torch.int32)
    dist.all_reduce(present, group=host_group())
    live = [p for p, n in zip(params, present.tolist()) if n]
    if not live:
        return
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in live])
    dist.all_reduce(flat)
    flat /= ranks
    for p, part in zip(live, flat.split([p.numel() for p in live])):
        if p.grad is None:
            p.grad = part.reshape(p.shape).clone()
        else:
            p.grad.copy_(part.reshape(p.shape))


def training_card(spec: FitSpec, model: torch.nn.Module, state: dict, device: Any) -> dict:
    """The card fields the engine knows: architecture, constructor arguments, seed, history and
    the ``training`` record (steps, seconds, throughput, device, processes, precision, threads,
    early stopping)."""
    seconds = state["train_seconds"]
    return {
        "architecture": type(model).__name__, "model": model.config, "seed": spec.seed, "history": state["history"],
        "training": {"steps": state["step"], "seconds": round(seconds, 2),
                     f"{spec.unit}_per_s": round(state["step"] * spec.items_per_step / max(seconds, 1e-9), 1),
                     "early_stopping": stopping.stopping_card(state["early_stop"], spec.patience),
                     "device": str(device), "world_size": world()[1], "precision": spec.precision,
                     "torch_threads": torch.get_num_threads(),
                     "engine_version": ENGINE_VERSION},
    }


def finish(model_id: str, model: torch.nn.Module, card: Mapping) -> str:
    """Weights, then the card, into the library, then the checkpoint goes (in that order, so a
    crash in between leaves a resumable run; rank 0 writes, the others wait for it); the model id."""
    if world()[0] == 0:
        save_model(model_id, model, card)
        (model_path(model_id) / CHECKPOINT).unlink(missing_ok=True)
    barrier()
    return model_id
