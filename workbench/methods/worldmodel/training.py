"""Training the frame autoencoder, latent-action world models and controllers into the model
library — checkpointed, resumable and seeded like :func:`workbench.methods.idm.train`.

Each trainer streams clips from the zarr stores (:mod:`workbench.frames.clips`), optimises
with AdamW under a linear warm-up + cosine schedule, validates every ``eval_every`` steps on a
fixed sample of validation clips, and checkpoints every ``checkpoint_every`` steps to
``<models>/<id>/checkpoint.pt`` (model, optimiser, numpy RNG, step, history). Every random draw
after initialisation — batches, the noisy latents' samples, codebook resets — follows from one
checkpointed numpy Generator (each step seeds torch from it) and torch runs on a fixed thread
count (:mod:`workbench.engine.session`), so on CPU a resumed run ends with the same weights as
an uninterrupted one; one process at a time trains an id. When training ends the weights and the
card (config, data, seed, metrics, code version) are written and the checkpoint removed; running a
finished config again returns the existing model, and one whose card holds a different config is
an error.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ...core.errors import ConfigError, DataError
from ...engine.device import default_device
from ...engine.library import (CARD, CHECKPOINT, ModelLibraryError, delete_model, load_card, load_model, model_path,
                              save_model)
from ...core.provenance import code_version, now_utc, versions
from ...engine import stopping
from ...frames.pairs import SPLITS, Source, resolve_source
from ...engine.session import read_checkpoint, training_session, write_checkpoint
from ...frames.stream import PairSampler
from .autoencoder import GRID, FrameAutoencoder, frames_to_tensor
from ...frames.clips import ActionSpace, ClipIndex, ClipReader, build_clip_index
from .config import AutoencoderConfig, ControllerConfig, WorldModelConfig, model_id_for
from .controller import CONTROLLERS
from .evaluate import encode_clips, one_step_errors, spread
from .model import LatentActionWorldModel

GRAD_CLIP = 1.0


def lr_factor(step: int, steps: int, warmup: float) -> float:
    """Learning-rate multiplier at ``step`` (0-based): linear warm-up over ``warmup`` of the
    steps, then cosine decay to zero (the paper's schedule)."""
    n_warm = max(1, int(round(warmup * steps)))
    if step < n_warm:
        return (step + 1) / n_warm
    return 0.5 * (1 + math.cos(math.pi * (step - n_warm) / max(1, steps - n_warm)))


def _games_tag(games) -> str:
    if not games:
        return "all"
    return games[0] if len(games) == 1 else "g" + hashlib.sha1(",".join(sorted(games)).encode()).hexdigest()[:8]


def _data_tag(sources: list[Source], games) -> list[str]:
    return [".".join(s.dataset_id for s in sources), ".".join(dict.fromkeys(s.variant for s in sources)),
            _games_tag(games)]


def _finished(model_id: str, cfg, force: bool) -> dict | None:
    """The card of a finished model of ``cfg``; None when there is none (or ``force`` removed it)."""
    if force:
        delete_model(model_id)
    if not (model_path(model_id) / CARD).is_file():
        return None
    card = load_card(model_id)
    if type(cfg).from_dict(card["config"]).identity() != cfg.identity():
        raise ModelLibraryError(f"model {model_id!r} exists with a different config; set model_id to a new id"
                                " or pass force=True to replace it")
    return card


def _common_card(cfg, model: torch.nn.Module, state: dict, device, items_per_step: int, unit: str) -> dict:
    seconds = state["train_seconds"]
    return {
        "model_id": cfg.model_id, "architecture": type(model).__name__, "model": model.config, "seed": cfg.seed,
        "history": state["history"],
        "training": {"steps": state["step"], "seconds": round(seconds, 2),
                     f"{unit}_per_s": round(state["step"] * items_per_step / max(seconds, 1e-9), 1),
                     "early_stopping": stopping.stopping_card(state.get("early_stop"), cfg.patience),
                     "device": str(device), "torch_threads": torch.get_num_threads()},
        "config": cfg.to_dict(), "code_version": code_version(),
        "versions": versions("torch", "scikit-learn"), "created": now_utc(),
    }


def _data_card(index: ClipIndex) -> dict:
    names = index.game_names()
    return {"games": index.games,
            "data": [{"dataset_id": s.dataset_id, "variant": s.variant, "store": str(s.path), "n_frames": s.n_frames}
                     for s in index.sources],
            "clips": {s: {g: int(((index.split == i) & (names == g)).sum()) for g in index.games}
                      for i, s in enumerate(SPLITS)}}


def _fit(cfg, model: torch.nn.Module, step_fn: Callable[[np.ndarray], tuple[torch.Tensor, dict]],
         eval_fn: Callable[[], dict], sampler: PairSampler, max_steps: int | None, progress: bool) -> dict | None:
    """The shared optimisation loop; returns the final state, or None when stopped at ``max_steps``.
    With ``cfg.patience`` it stops early on the first value of ``eval_fn``'s dict (the validation
    loss: pixel L1, the one-step error with the model's latents, the controller's MSE) and keeps
    the best weights."""
    folder = model_path(cfg.model_id)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed)
    state = {"step": 0, "history": [], "train_seconds": 0.0, "stats": [],
             "early_stop": stopping.new_record() if cfg.patience else None}
    ckpt_path = folder / CHECKPOINT
    ckpt = read_checkpoint(ckpt_path, cfg.identity())
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        rng.bit_generator.state = ckpt["rng"]
        state = {k: ckpt.get(k, v) for k, v in state.items()}

    def checkpoint() -> None:
        write_checkpoint(ckpt_path, cfg.identity(), model=model.state_dict(), optimizer=optimizer.state_dict(),
                         rng=rng.bit_generator.state, **state)

    stop_at = cfg.steps if max_steps is None else min(cfg.steps, int(max_steps))
    model.train()
    with tqdm(total=cfg.steps, initial=state["step"], desc=f"train {cfg.model_id}", unit="step",
              disable=not progress) as bar:
        while state["step"] < stop_at and not stopping.stopped(state["early_stop"]):
            t0 = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * lr_factor(state["step"], cfg.steps, cfg.warmup)
            positions = sampler.draw(rng)
            torch.manual_seed(int(rng.integers(2 ** 31)))
            loss, stats = step_fn(positions)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
            optimizer.step()
            state["stats"].append({"loss": float(loss.detach()), **stats})
            state["train_seconds"] += time.perf_counter() - t0
            state["step"] += 1
            bar.update(1)
            step = state["step"]
            if step % cfg.eval_every == 0 or step == cfg.steps:
                model.eval()
                val = eval_fn()
                model.train()
                means = {k: float(np.mean([s[k] for s in state["stats"] if k in s])) for k in state["stats"][0]}
                state["history"].append({"step": step, "train": means, "val": val})
                if cfg.patience and val:
                    stopping.observe(state["early_stop"], next(iter(val.values())), step, model, cfg.patience)
                state["stats"] = []
                bar.set_postfix(loss=f"{means['loss']:.3f}", **{k: f"{v:.3f}" for k, v in val.items()})
            if step % cfg.checkpoint_every == 0 and step < cfg.steps:
                checkpoint()
    model.eval()
    if state["step"] < cfg.steps and not stopping.stopped(state["early_stop"]):
        checkpoint()
        return None
    stopping.restore_best(state["early_stop"], model)
    return state


def _save(cfg, model: torch.nn.Module, card: dict) -> str:
    """Weights and card into the library, then the checkpoint goes (in that order, so a crash
    in between leaves a resumable run)."""
    save_model(cfg.model_id, model, card)
    (model_path(cfg.model_id) / CHECKPOINT).unlink(missing_ok=True)
    return cfg.model_id


def _split(index: ClipIndex, name: str, mask: np.ndarray | None = None) -> ClipIndex:
    keep = index.split == SPLITS.index(name)
    if mask is not None:
        keep &= mask
    return index.subset(keep)


def _sampler(index: ClipIndex, cfg, batch_size: int) -> PairSampler:
    if not len(index):
        raise DataError(f"model {cfg.model_id}: no training clips in {[s.dataset_id for s in index.sources]}")
    return PairSampler(index.source, index.start, np.ones(len(index)), [s.chunk for s in index.sources], batch_size,
                       cfg.chunks_per_batch)


def train_autoencoder(config: AutoencoderConfig, max_steps: int | None = None, progress: bool = True,
                      force: bool = False) -> str:
    """Train (or resume, or return the finished) frame autoencoder of ``config``; its model id.

    Trains on the first frames of the training clips, pixel L1; validation metric: the mean
    absolute pixel error (0–1) on a fixed sample of validation frames.
    """
    cfg = config
    sources = [resolve_source(d, cfg.size, cfg.data_seed) for d in cfg.datasets]
    tag = [*_data_tag(sources, cfg.games), f"{cfg.input_size}px", f"w{cfg.width}c{cfg.rep_channels}"]
    cfg = cfg.replace(model_id=cfg.model_id or model_id_for("frameae", tag, cfg.seed))
    with training_session(cfg.model_id):
        return _train_autoencoder(cfg, sources, max_steps, progress, force)


def _train_autoencoder(cfg: AutoencoderConfig, sources: list[Source], max_steps: int | None, progress: bool,
                       force: bool) -> str:
    if _finished(cfg.model_id, cfg, force) is not None:
        return cfg.model_id
    index = build_clip_index(sources, 2, cfg.games, cfg.split_block, cfg.split_fractions, cfg.split_seed)
    device = default_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = FrameAutoencoder(cfg.input_size, cfg.width, cfg.rep_channels).to(device)
    train_set, val_set = _split(index, "train"), _split(index, "val")
    reader = ClipReader(index.sources, cfg.input_size, cfg.cache_chunks)

    def frames(subset: ClipIndex, positions: np.ndarray) -> torch.Tensor:
        return frames_to_tensor(reader.batch(subset, positions)[:, 0], device)

    def step_fn(positions):
        x = frames(train_set, positions)
        return F.l1_loss(model(x), x), {}

    @torch.no_grad()
    def eval_fn() -> dict:
        if not len(val_set):
            return {}
        x = frames(val_set, spread(len(val_set), cfg.eval_frames))
        return {"pixel_l1": float(F.l1_loss(model(x), x))}

    state = _fit(cfg, model, step_fn, eval_fn, _sampler(train_set, cfg, cfg.batch_size), max_steps, progress)
    if state is None:
        return cfg.model_id
    card = {**_common_card(cfg, model, state, device, cfg.batch_size, "frames"), **_data_card(index),
            "metrics": {"val": eval_fn()}}
    return _save(cfg, model, card)


def _world_model_id(cfg: WorldModelConfig, sources: list[Source]) -> str:
    parts = [cfg.family]
    if cfg.knob is not None:
        parts.append(f"{cfg.knob[0]}{cfg.knob[1]:g}")
    if cfg.family == "action":
        parts.append(cfg.action_space)
    return model_id_for(cfg.name, [*parts, *_data_tag(sources, cfg.games)], cfg.seed)


def train_world_model(config: WorldModelConfig, max_steps: int | None = None, progress: bool = True,
                      force: bool = False) -> str:
    """Train (or resume, or return the finished) latent-action world model of ``config``; its id.

    Trains the autoencoder first when ``config.encoder`` is None (reused when it exists).
    ``max_steps`` stops after that many world-model steps with a checkpoint (the model is not
    finished: no card yet); calling again resumes. Loss: mean L1 of teacher-forced predictions
    of ``s_{1:L}`` + the family's regulariser. Validation: one-step errors with the model's own
    latents, zero latents and shuffled latents.
    """
    cfg = config
    sources = [resolve_source(d, cfg.size, cfg.data_seed) for d in cfg.datasets]
    cfg = cfg.replace(model_id=cfg.model_id or _world_model_id(cfg, sources))
    with training_session(cfg.model_id):
        return _train_world_model(cfg, sources, max_steps, progress, force)


def _train_world_model(cfg: WorldModelConfig, sources: list[Source], max_steps: int | None, progress: bool,
                       force: bool) -> str:
    if _finished(cfg.model_id, cfg, force) is not None:
        return cfg.model_id
    encoder_id = cfg.encoder or train_autoencoder(cfg.autoencoder_config(), progress=progress)
    encoder_card = load_card(encoder_id)
    if encoder_card["model"]["input_size"] != cfg.input_size:
        raise ConfigError(f"encoder {encoder_id!r} reads {encoder_card['model']['input_size']} px frames, the config"
                          f" says input_size={cfg.input_size}")
    index = build_clip_index(sources, cfg.clip_length, cfg.games, cfg.split_block, cfg.split_fractions, cfg.split_seed)
    valid, space = None, None
    if cfg.family == "action":
        index = index.with_actions(cfg.action_space)
        valid = index.action_mask()
        train_steps = index.clip_actions(np.flatnonzero(valid & (index.split == 0)))
        space = ActionSpace.fit(cfg.action_space, index.action_columns, train_steps.reshape(-1, train_steps.shape[-1]))
    device = default_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = LatentActionWorldModel(
        encoder=encoder_card["model"], family=cfg.family, regularizer=cfg.regularizer_params(),
        latent_dim=cfg.latent_dim, action_dim=len(space.columns) if space else 0, context=cfg.clip_length,
        patch=cfg.patch, d_model=cfg.d_model, depth=cfg.depth, n_heads=cfg.n_heads, idm_width=cfg.idm_width)
    model.encoder.load_state_dict(load_model(encoder_id, "cpu").state_dict())
    model.to(device)
    train_set, val_set = _split(index, "train", valid), _split(index, "val", valid)
    reader = ClipReader(index.sources, cfg.input_size, cfg.cache_chunks)
    val_pos = spread(len(val_set), cfg.eval_clips)

    def actions(subset: ClipIndex, positions: np.ndarray) -> torch.Tensor | None:
        if space is None:
            return None
        return torch.from_numpy(space.standardize(subset.clip_actions(positions))).to(device)

    def step_fn(positions):
        return model.loss(model.encode(reader.batch(train_set, positions)), actions(train_set, positions))

    def errors(subset: ClipIndex, positions: np.ndarray) -> dict:
        if not len(positions):
            return {}
        s = encode_clips(model, reader, subset, positions)
        return {k: float(v.mean()) for k, v in one_step_errors(model, s, actions(subset, positions)).items()}

    state = _fit(cfg, model, step_fn, lambda: errors(val_set, val_pos),
                 _sampler(train_set, cfg, cfg.batch_size), max_steps, progress)
    if state is None:
        return cfg.model_id
    test_set = _split(index, "test", valid)
    card = {**_common_card(cfg, model, state, device, cfg.batch_size, "clips"), **_data_card(index),
            "family": cfg.family, "knob": dict([cfg.knob]) if cfg.knob else {}, "encoder": encoder_id,
            "action_space": space.to_dict() if space else None,
            "metrics": {"val": errors(val_set, val_pos),
                        "test": errors(test_set, spread(len(test_set), cfg.eval_clips))}}
    return _save(cfg, model, card)


def controller_data(world_card: Mapping, action_space: str, datasets=None, size=None, data_seed=None,
                    games=None) -> ClipIndex:
    """Transitions (clips of 2 frames) of a world model's data (or ``datasets``) and split, of
    ``games`` when given, with ``action_space`` actions attached, restricted to the steps that
    have one."""
    wc = world_card["config"]
    refs = datasets or wc["datasets"]
    sources = [resolve_source(r, size if datasets else wc["size"], data_seed if datasets else wc["data_seed"])
               for r in refs]
    keep = games if games is not None else (None if datasets else wc["games"])
    index = build_clip_index(sources, 2, keep, wc["split_block"], wc["split_fractions"],
                             wc["split_seed"]).with_actions(action_space)
    return index.subset(index.action_mask())


def train_controller(config: ControllerConfig, max_steps: int | None = None, progress: bool = True,
                     force: bool = False) -> str:
    """Train (or resume, or return the finished) controller of ``config``; its model id.

    Targets are the frozen world model's deterministic latents of each training transition
    (noisy: the mean; discrete: the code); loss: mean squared error. Validation: ``mse`` and
    ``unexplained`` = mse / the latents' total variance (0 = perfect, 1 = no better than their mean).
    """
    cfg = config
    world_card = load_card(cfg.world_model)
    if world_card["config"]["family"] in ("zero", "action"):
        raise ConfigError(f"{cfg.world_model} has no latent actions to control"
                          f" (family {world_card['config']['family']!r})")
    tag = [cfg.kind, cfg.action_space, cfg.world_model, *([_games_tag(cfg.games)] if cfg.games else [])]
    cfg = cfg.replace(model_id=cfg.model_id or model_id_for("ctrl", tag, cfg.seed))
    with training_session(cfg.model_id):
        return _train_controller(cfg, world_card, max_steps, progress, force)


def _train_controller(cfg: ControllerConfig, world_card: dict, max_steps: int | None, progress: bool,
                      force: bool) -> str:
    if _finished(cfg.model_id, cfg, force) is not None:
        return cfg.model_id
    device = default_device(cfg.device)
    world = load_model(cfg.world_model, device)
    index = controller_data(world_card, cfg.action_space, cfg.datasets, cfg.size, cfg.data_seed, cfg.games)
    train_set, val_set = _split(index, "train"), _split(index, "val")
    steps = train_set.clip_actions(np.arange(len(train_set)))[:, 0]
    space = ActionSpace.fit(cfg.action_space, index.action_columns, steps)
    torch.manual_seed(cfg.seed)
    c = world.rep_shape[0]
    if cfg.kind == "mlp":
        model = CONTROLLERS["mlp"](len(space.columns), world.latent_dim, cfg.hidden)
    else:
        model = CONTROLLERS["xattn"](len(space.columns), world.latent_dim, c, GRID, world.config["patch"], cfg.d_model)
    model.to(device)
    reader = ClipReader(index.sources, world.input_size, cfg.cache_chunks)

    @torch.no_grad()
    def batch(subset: ClipIndex, positions: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        s = world.encode(reader.batch(subset, positions))
        u = torch.from_numpy(space.standardize(subset.clip_actions(positions)[:, 0])).to(device)
        return u, s[:, 0], world.latents(s)[0][:, 0]

    def step_fn(positions):
        u, s, z = batch(train_set, positions)
        return F.mse_loss(model(u, s), z), {}

    val_pos = spread(len(val_set), cfg.eval_clips)

    @torch.no_grad()
    def eval_fn(subset: ClipIndex = val_set, positions: np.ndarray = val_pos) -> dict:
        if not len(positions):
            return {}
        u, s, z = batch(subset, positions)
        mse = float(F.mse_loss(model(u, s), z))
        return {"mse": mse, "unexplained": mse / max(float(z.var(dim=0).mean()), 1e-12)}

    state = _fit(cfg, model, step_fn, eval_fn, _sampler(train_set, cfg, cfg.batch_size), max_steps, progress)
    if state is None:
        return cfg.model_id
    test_set = _split(index, "test")
    card = {**_common_card(cfg, model, state, device, cfg.batch_size, "transitions"), **_data_card(index),
            "world_model": cfg.world_model, "kind": cfg.kind, "action_space": space.to_dict(),
            "metrics": {"val": eval_fn(), "test": eval_fn(test_set, spread(len(test_set), cfg.eval_clips))}}
    return _save(cfg, model, card)
