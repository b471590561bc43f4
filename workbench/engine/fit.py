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
ranks stay identical and match one process at the same global batch up to rounding. Rank 0 alone
writes checkpoints, curves, weights and card.
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

from . import stopping
from .curves import CURVES, CurveWriter
from .ids import ENGINE_VERSION
from .library import CARD, CHECKPOINT, ModelLibraryError, delete_model, load_card, model_path, save_model
from .session import barrier, read_checkpoint, world, write_checkpoint

#: ``step_fn(positions, rng) -> (loss, {stat: float})``: one training step's loss on the drawn batch.
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

    @classmethod
    def of(cls, cfg: Any, unit: str, **options) -> FitSpec:
        """The spec of a config with ``model_id``, ``seed``, ``steps``, ``lr``, ``weight_decay``,
        ``eval_every``, ``checkpoint_every``, ``batch_size``, ``patience`` and ``identity()``."""
        return cls(model_id=cfg.model_id, identity=cfg.identity(), seed=cfg.seed, steps=cfg.steps, lr=cfg.lr,
                   weight_decay=cfg.weight_decay, eval_every=cfg.eval_every, checkpoint_every=cfg.checkpoint_every,
                   items_per_step=cfg.batch_size, unit=unit, patience=cfg.patience, **options)

    def checkpoint_identity(self) -> dict:
        """What a checkpoint must have been written with to be resumed: the config and the engine."""
        return {**self.identity, "engine_version": ENGINE_VERSION}


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
    curves = CurveWriter(folder / CURVES, state["step"], enabled=rank == 0)

    def checkpoint() -> None:
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
                t0 = time.perf_counter()
                if spec.warmup is not None:
                    for group in optimizer.param_groups:
                        group["lr"] = spec.lr * lr_factor(state["step"], spec.steps, spec.warmup)
                positions = sampler.draw(rng)
                if ranks > 1:
                    positions = positions[rank::ranks]
                if spec.reseed_torch:
                    torch.manual_seed(int(rng.integers(2 ** 31)))
                loss, stats = step_fn(positions, rng)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                stats = {"loss": float(loss.detach()), **stats}
                if ranks > 1:
                    stats = _average_over_ranks(params, stats, ranks)
                if spec.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, spec.grad_clip)
                optimizer.step()
                seconds = time.perf_counter() - t0
                state["stats"].append(stats)
                state["train_seconds"] += seconds
                state["step"] += 1
                step = state["step"]
                bar.update(1)
                curves.log(step, state["stats"][-1], "train")
                curves.log(step, {f"{spec.unit}_per_s": spec.items_per_step / max(seconds, 1e-9)}, "throughput")
                if step % spec.eval_every == 0 or step == spec.steps:
                    _evaluate(spec, model, eval_fn, state, step, curves, bar)
                if step % spec.checkpoint_every == 0 and step < spec.steps:
                    checkpoint()
        model.eval()
        if state["step"] < spec.steps and not stopping.stopped(state["early_stop"]):
            checkpoint()
            return state, False
    finally:
        curves.close()
    stopping.restore_best(state["early_stop"], model)
    return state, True


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


def _average_over_ranks(params: list[torch.nn.Parameter], stats: dict, ranks: int) -> dict:
    """Average the gradients (in place) and the step's stats over the ranks; the averaged stats."""
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= ranks
    values = torch.tensor(list(stats.values()), dtype=torch.float64)
    dist.all_reduce(values)
    return dict(zip(stats, (values / ranks).tolist()))


def training_card(spec: FitSpec, model: torch.nn.Module, state: dict, device: Any) -> dict:
    """The card fields the engine knows: architecture, constructor arguments, seed, history and
    the ``training`` record (steps, seconds, throughput, device, threads, early stopping)."""
    seconds = state["train_seconds"]
    return {
        "architecture": type(model).__name__, "model": model.config, "seed": spec.seed, "history": state["history"],
        "training": {"steps": state["step"], "seconds": round(seconds, 2),
                     f"{spec.unit}_per_s": round(state["step"] * spec.items_per_step / max(seconds, 1e-9), 1),
                     "early_stopping": stopping.stopping_card(state["early_stop"], spec.patience),
                     "device": str(device), "torch_threads": torch.get_num_threads(),
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
