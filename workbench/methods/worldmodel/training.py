"""Training the frame autoencoder, latent-action world models and controllers into the model
library — checkpointed, resumable and seeded like :func:`workbench.methods.idm.train`.

Each trainer streams clips from the zarr stores (:mod:`workbench.frames.clips`) and hands its
model, step and validation functions to the training engine (:func:`workbench.engine.fit.fit`):
AdamW under a linear warm-up + cosine schedule with gradient clipping, validation every
``eval_every`` steps on a fixed sample of validation clips, checkpoints every ``checkpoint_every``
steps to ``<models>/<id>/checkpoint.pt`` (model, optimiser, numpy RNG, step, history). Every random draw
after initialisation — batches, the noisy latents' samples, codebook resets — follows from one
checkpointed numpy Generator (each step seeds torch from it) and torch runs on a fixed thread
count (:mod:`workbench.engine.session`), so on CPU a resumed run ends with the same weights as
an uninterrupted one; one process at a time trains an id. When training ends the weights and the
card (config, data, seed, metrics, code version) are written and the checkpoint removed; running a
finished config again returns the existing model, and one whose card holds a different config is
an error.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ...core.errors import ConfigError, DataError
from ...engine.card import ModelCard, provenance
from ...engine.device import default_device, place
from ...engine.fit import FitSpec, existing, finish, fit, training_card
from ...engine.ids import make_model_id, tag_of
from ...engine.library import load_card, load_model
from ...frames.sources import Source, resolve_source
from ...frames.split import SPLITS
from ...engine.session import training_session
from ...frames.stream import PairSampler
from .autoencoder import GRID, FrameAutoencoder, frames_to_tensor
from ...frames.actions import ActionSpace
from ...frames.clips import ClipIndex, build_clip_index
from ...frames.memory import open_reader
from .config import AutoencoderConfig, ControllerConfig, WorldModelConfig
from .controller import CONTROLLERS
from .evaluate import encode_clips, one_step_errors, spread
from .model import LatentActionWorldModel

GRAD_CLIP = 1.0


def _data_tag(sources: list[Source], games) -> list[str]:
    return [".".join(s.dataset_id for s in sources), ".".join(dict.fromkeys(s.variant for s in sources)),
            tag_of(games)]


def _finished(cfg, force: bool) -> ModelCard | None:
    """The card of a finished model of ``cfg``; None when there is none (or ``force`` removed it)."""
    return existing(cfg.model_id, lambda c: type(cfg).from_dict(c).identity() == cfg.identity(), force)


def _fit(cfg, model: torch.nn.Module, step_fn, eval_fn, sampler: PairSampler, max_steps: int | None,
         progress: bool, unit: str) -> tuple[FitSpec, dict | None]:
    """The engine with these trainers' optimisation (warm-up + cosine, clipping at :data:`GRAD_CLIP`,
    torch seeded from the Generator each step); the spec and the final state, None when stopped at
    ``max_steps``. Early stopping watches the first of ``eval_fn``'s values (the validation loss:
    pixel L1, the one-step error with the model's latents, the controller's MSE)."""
    def evaluation() -> tuple[dict, float | None]:
        val = eval_fn()
        return val, next(iter(val.values()), None)

    spec = FitSpec.of(cfg, unit, warmup=cfg.warmup, grad_clip=GRAD_CLIP, reseed_torch=True)
    state, done = fit(spec, model, lambda positions, rng: step_fn(positions), evaluation, sampler, max_steps,
                      progress)
    return spec, state if done else None


def _common_card(cfg, spec: FitSpec, model: torch.nn.Module, state: dict, device) -> dict:
    return {"model_id": cfg.model_id, **training_card(spec, model, state, device), "config": cfg.to_dict(),
            **provenance("torch", "scikit-learn")}


def _data_card(index: ClipIndex) -> dict:
    names = index.game_names()
    return {"games": index.games,
            "data": [{"dataset_id": s.dataset_id, "variant": s.variant, "store": str(s.path), "n_frames": s.n_frames}
                     for s in index.sources],
            "clips": {s: {g: int(((index.split == i) & (names == g)).sum()) for g in index.games}
                      for i, s in enumerate(SPLITS)}}


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
    cfg = cfg.replace(model_id=cfg.model_id or make_model_id("frameae", tag, cfg.seed, cfg.identity()))
    with training_session(cfg.model_id):
        return _train_autoencoder(cfg, sources, max_steps, progress, force)


def _train_autoencoder(cfg: AutoencoderConfig, sources: list[Source], max_steps: int | None, progress: bool,
                       force: bool) -> str:
    if _finished(cfg, force) is not None:
        return cfg.model_id
    index = build_clip_index(sources, 2, cfg.games, cfg.split_block, cfg.split_fractions, cfg.split_seed)
    device = default_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = place(FrameAutoencoder(cfg.input_size, cfg.width, cfg.rep_channels), device, cfg.channels_last,
                  cfg.compile)
    train_set, val_set = _split(index, "train"), _split(index, "val")
    reader = open_reader(index.sources, cfg.input_size, cfg.cache_chunks, cfg.memory_gb, device)

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

    spec, state = _fit(cfg, model, step_fn, eval_fn, _sampler(train_set, cfg, cfg.batch_size), max_steps, progress,
                       "frames")
    if state is None:
        return cfg.model_id
    card = {**_common_card(cfg, spec, model, state, device), **_data_card(index), "metrics": {"val": eval_fn()}}
    return finish(cfg.model_id, model, card)


def _world_model_id(cfg: WorldModelConfig, sources: list[Source]) -> str:
    parts = [cfg.family]
    if cfg.knob is not None:
        parts.append(f"{cfg.knob[0]}{cfg.knob[1]:g}")
    if cfg.family == "action":
        parts.append(cfg.action_space)
    return make_model_id(cfg.name, [*parts, *_data_tag(sources, cfg.games)], cfg.seed, cfg.identity())


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
    if _finished(cfg, force) is not None:
        return cfg.model_id
    encoder_id = cfg.encoder or train_autoencoder(cfg.autoencoder_config(), progress=progress)
    encoder_card = load_card(encoder_id)
    if encoder_card.model["input_size"] != cfg.input_size:
        raise ConfigError(f"encoder {encoder_id!r} reads {encoder_card.model['input_size']} px frames, the config"
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
        encoder=encoder_card.model, family=cfg.family, regularizer=cfg.regularizer_params(),
        latent_dim=cfg.latent_dim, action_dim=len(space.columns) if space else 0, context=cfg.clip_length,
        patch=cfg.patch, d_model=cfg.d_model, depth=cfg.depth, n_heads=cfg.n_heads, idm_width=cfg.idm_width)
    model.encoder.load_state_dict(load_model(encoder_id, "cpu").state_dict())
    place(model, device, cfg.channels_last, cfg.compile, [m for m in (model.idm, model.predictor) if m is not None])
    train_set, val_set = _split(index, "train", valid), _split(index, "val", valid)
    reader = open_reader(index.sources, cfg.input_size, cfg.cache_chunks, cfg.memory_gb, device)
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

    spec, state = _fit(cfg, model, step_fn, lambda: errors(val_set, val_pos),
                       _sampler(train_set, cfg, cfg.batch_size), max_steps, progress, "clips")
    if state is None:
        return cfg.model_id
    test_set = _split(index, "test", valid)
    card = {**_common_card(cfg, spec, model, state, device), **_data_card(index),
            "family": cfg.family, "knob": dict([cfg.knob]) if cfg.knob else {}, "encoder": encoder_id,
            "action_space": space.to_dict() if space else None,
            "metrics": {"val": errors(val_set, val_pos),
                        "test": errors(test_set, spread(len(test_set), cfg.eval_clips))}}
    return finish(cfg.model_id, model, card)


def controller_data(world_card: ModelCard, action_space: str, datasets=None, size=None, data_seed=None,
                    games=None) -> ClipIndex:
    """Transitions (clips of 2 frames) of a world model's data (or ``datasets``) and split, of
    ``games`` when given, with ``action_space`` actions attached, restricted to the steps that
    have one."""
    wc = world_card.config
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
    if world_card.config["family"] in ("zero", "action"):
        raise ConfigError(f"{cfg.world_model} has no latent actions to control"
                         f" (family {world_card.config['family']!r})")
    tag = [cfg.kind, cfg.action_space, cfg.world_model, *([tag_of(cfg.games)] if cfg.games else [])]
    cfg = cfg.replace(model_id=cfg.model_id or make_model_id("ctrl", tag, cfg.seed, cfg.identity()))
    with training_session(cfg.model_id):
        return _train_controller(cfg, world_card, max_steps, progress, force)


def _train_controller(cfg: ControllerConfig, world_card: ModelCard, max_steps: int | None, progress: bool,
                      force: bool) -> str:
    if _finished(cfg, force) is not None:
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
    place(model, device, cfg.channels_last, cfg.compile)
    reader = open_reader(index.sources, world.input_size, cfg.cache_chunks, cfg.memory_gb, device)

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

    spec, state = _fit(cfg, model, step_fn, eval_fn, _sampler(train_set, cfg, cfg.batch_size), max_steps, progress,
                       "transitions")
    if state is None:
        return cfg.model_id
    test_set = _split(index, "test")
    card = {**_common_card(cfg, spec, model, state, device), **_data_card(index),
            "world_model": cfg.world_model, "kind": cfg.kind, "action_space": space.to_dict(),
            "metrics": {"val": eval_fn(), "test": eval_fn(test_set, spread(len(test_set), cfg.eval_clips))}}
    return finish(cfg.model_id, model, card)
