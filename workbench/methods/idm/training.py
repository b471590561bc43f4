"""Training an ``IDMLatentSpatial`` from a :class:`TrainConfig` into the model library.

``train(config)`` builds the pair index, streams batches from the stores and hands its step and
validation functions to the training engine (:func:`workbench.engine.fit.fit`), which optimises the
summed per-head cross-entropy (missing labels ignored) with AdamW, validates every ``eval_every`` steps
(balanced accuracy per head per game), and checkpoints every ``checkpoint_every`` steps to
``<models>/<id>/checkpoint.pt`` (model, optimiser, sampler RNG, step). Running the same config
again resumes from the checkpoint and, on CPU, ends with the same weights as an uninterrupted
run: every random draw after initialisation comes from one checkpointed numpy Generator, and
torch runs on a fixed thread count (:mod:`workbench.engine.session`). One process at a time trains an id. When
training ends the weights and the card are written and the checkpoint removed; running a
finished config again returns the existing model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ...core.errors import ConfigError, DataError
from ...engine.card import ModelCard, provenance
from ...engine.device import default_device, place
from ...engine.fit import FitSpec, existing, finish, fit, per_item_draw, training_card
from ...engine.ids import make_model_id, tag_of
from ...frames.stream import pair_tensor
from .model import IDMLatentSpatial
from ...engine.library import load_card, load_model
from ...core.paths import check_id
from ...frames.augment import flip_plan, hflip
from .config import TrainConfig
from .inference import infer, mean_scores, score_table
from ...frames.pairs import PairIndex, balanced_weights, build_pair_index, default_heads, finetune_mask
from ...frames.sources import Source, resolve_source
from ...engine.session import training_session
from ...frames.memory import open_reader
from ...frames.stream import FrameReader, PairSampler

EVAL_BATCH = 256


@dataclass
class TrainResult:
    """What :func:`train` did: the model id, whether training finished, the step reached, the card."""

    model_id: str
    finished: bool
    step: int
    card: ModelCard | None = None


def default_model_id(cfg: TrainConfig, sources: list[Source]) -> str:
    """``<name>-<datasets>-<variants>-<games>-s<seed>-<hash>``, or
    ``<name>-<game>-<init model>-s<seed>-<hash>`` for a fine-tune (the library's one id rule,
    :func:`workbench.engine.ids.make_model_id`: the hash covers the config's identity and the
    engine version)."""
    if cfg.finetune:
        tags = [str(cfg.finetune["game"]), str(cfg.init_from)]
    else:
        tags = [".".join(s.dataset_id for s in sources), ".".join(dict.fromkeys(s.variant for s in sources)),
                tag_of(cfg.games)]
    return make_model_id(cfg.name, tags, cfg.seed, cfg.identity())


def prepare(config: TrainConfig) -> tuple[TrainConfig, PairIndex]:
    """The config with every default made explicit (data, heads, model id …) and its pair index.

    A model started from ``init_from`` inherits its architecture, heads, targets and block split
    (so its test pairs are the ones the start model never saw) and, unless given, its data,
    sampling (``balanced``) and augmentation (``hflip``, ``flip_pairs``); a fine-tune is
    restricted to its game unless ``games`` says otherwise.
    """
    cfg = config
    if cfg.init_from:
        init = load_card(cfg.init_from)
        ic = init.config
        cfg = cfg.replace(
            datasets=cfg.datasets or ic["datasets"], size=cfg.size or ic["size"],
            data_seed=ic["data_seed"] if cfg.data_seed is None else cfg.data_seed,
            heads=cfg.heads or list(init.extras["heads"]), targets=cfg.targets or dict(ic["targets"]),
            main_head=cfg.main_head or init.extras["main_head"],
            **{k: init.model[k] for k in ("input_size", "width", "embed_dim")},
            **{k: ic[k] for k in ("split_block", "split_fractions", "split_seed")},
            **{k: ic[k] for k in ("balanced", "hflip") if getattr(cfg, k) is None},
            **({"flip_pairs": ic["flip_pairs"]} if cfg.hflip is None else {}),
        )
    cfg = cfg.replace(balanced=bool(cfg.balanced), hflip=bool(cfg.hflip))
    if cfg.finetune and not cfg.games:
        cfg = cfg.replace(games=[cfg.finetune["game"]])
    sources = [resolve_source(d, cfg.size, cfg.data_seed) for d in cfg.datasets]
    heads = list(cfg.heads or default_heads(sources))
    main = cfg.main_head or heads[0]
    if main not in heads:
        raise ConfigError(f"main_head {main!r} is not a head ({heads})")
    cfg = cfg.replace(heads=heads, main_head=main)
    cfg = cfg.replace(model_id=check_id(cfg.model_id, "model id") if cfg.model_id else default_model_id(cfg, sources))
    index = build_pair_index(sources, heads, cfg.targets, cfg.games, cfg.split_block, cfg.split_fractions, cfg.split_seed)
    return cfg, index


def _loss(logits: dict[str, torch.Tensor], y: dict[str, np.ndarray]) -> torch.Tensor:
    """Sum over heads of the cross-entropy on the labeled pairs (heads with none in the batch skip:
    decided on the host labels, so the device is not waited for)."""
    terms = [F.cross_entropy(logits[h], torch.from_numpy(np.asarray(t, np.int64)).to(logits[h].device), ignore_index=-1)
             for h, t in y.items() if (np.asarray(t) >= 0).any()]
    return torch.stack(terms).sum()


def _spread(n: int, k: int) -> np.ndarray:
    """At most ``k`` evenly spaced positions out of ``n`` (a fixed, deterministic evaluation sample)."""
    return np.arange(n) if n <= k else np.linspace(0, n - 1, k).round().astype(np.int64)


def _logits(model: IDMLatentSpatial, index: PairIndex, reader: FrameReader, device, limit: int | None = None,
            progress: bool = False, desc: str = "eval") -> tuple[PairIndex, dict[str, np.ndarray]]:
    """``index`` (or ``limit`` evenly spaced pairs of it) and the model's logits per head on it."""
    if limit is not None:
        index = index.subset(_spread(len(index), limit))
    if not len(index):
        return index, {}
    return index, infer(model, reader, index.source, index.frame, EVAL_BATCH, device, progress, desc)[1]


def _scores(index: PairIndex, logits: dict[str, np.ndarray]) -> dict:
    pred = {h: v.argmax(axis=1) for h, v in logits.items()}
    return score_table(index.y, pred, index.game, index.games) if logits else {}


def evaluate(model: IDMLatentSpatial, index: PairIndex, reader: FrameReader, device, limit: int | None = None,
             progress: bool = False, desc: str = "eval") -> dict:
    """Balanced accuracy per head per game on ``index`` (or ``limit`` evenly spaced pairs of it)."""
    return _scores(*_logits(model, index, reader, device, limit, progress, desc))


def validation_loss(index: PairIndex, logits: dict[str, np.ndarray], head: str,
                    balanced: bool = True) -> float | None:
    """What early stopping watches: ``head``'s validation error on ``logits`` — the balanced
    error rate (1 − balanced accuracy, each (game, class) cell weighted equally,
    :func:`~workbench.frames.pairs.balanced_weights`) when the training drew the cells so, else
    the plain error rate; None (no early stopping) without a labeled validation pair.

    Why not the cross-entropy the model trains on (measured on the demo recordings, ~130
    validation pairs a game): the summed loss of every head rose from the first evaluations (the
    auxiliary heads overfit) and so did the main head's own class-balanced cross-entropy (a head
    growing confident is punished for its misses), while its validation balanced accuracy kept
    climbing — Hero: 0.61 at the summed loss's best step 100, 0.82 at step 250 — so stopping on
    either kept near-chance models. The study reports balanced accuracy; the model is selected on
    it, on validation pairs only."""
    w = balanced_weights(index, head) if balanced else (index.y[head] >= 0).astype(np.float64)
    if w.sum() <= 0:
        return None
    wrong = np.asarray(logits[head]).argmax(axis=1) != index.y[head]
    return float((wrong * w).sum() / w.sum())


def _load_init(model: IDMLatentSpatial, init_from: str) -> None:
    source = load_model(init_from, "cpu")
    if source.config != model.config:
        raise ConfigError(f"init_from {init_from!r} has architecture/heads {source.config}, the config needs {model.config}")
    model.load_state_dict(source.state_dict())


def train(config: TrainConfig, max_steps: int | None = None, progress: bool = True, force: bool = False) -> TrainResult:
    """Train (or resume, or return the finished) model of ``config``; see the module docstring.

    ``max_steps`` stops after that many steps in total with a checkpoint (for a session with a
    time budget, and for tests); the next call resumes. ``force`` deletes an existing model or
    checkpoint of the same id first. A finished model whose card holds a different config is an
    error: give the new config its own ``model_id``.
    """
    cfg, index = prepare(config)
    with training_session(cfg.model_id):
        return _train(cfg, index, max_steps, progress, force)


def _train(cfg: TrainConfig, index: PairIndex, max_steps: int | None, progress: bool, force: bool) -> TrainResult:
    model_id = cfg.model_id
    card = existing(model_id, lambda c: TrainConfig.from_dict(c).identity() == cfg.identity(), force)
    if card is not None:
        return TrainResult(model_id, True, card.training["steps"], card)

    device = default_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = IDMLatentSpatial({h: len(c) for h, c in index.heads.items()}, cfg.input_size, cfg.width, cfg.embed_dim)
    if cfg.init_from:
        _load_init(model, cfg.init_from)
    place(model, device, cfg.channels_last, cfg.compile)

    train_mask = index.split == 0
    if cfg.finetune:
        ft = cfg.finetune
        train_mask &= finetune_mask(index, ft["game"], cfg.main_head, ft.get("k_per_class"), ft.get("fraction"),
                                    ft.get("seed", cfg.seed))
    train_set = index.subset(train_mask)
    if not len(train_set):
        raise DataError(f"model {model_id}: no labeled train pairs (games {index.games})")
    weights = balanced_weights(train_set, cfg.main_head) if cfg.balanced else np.ones(len(train_set))
    sampler = PairSampler(train_set.source, train_set.frame, weights, [s.chunk for s in index.sources],
                          cfg.batch_size, cfg.chunks_per_batch)
    plan = flip_plan(index.heads, index.kinds, cfg.flip_pairs) if cfg.hflip else None
    reader = open_reader(index.sources, cfg.input_size, cfg.cache_chunks, cfg.memory_gb, device)
    val_set = index.subset(index.split == 1)

    def step_fn(pos: np.ndarray, rng: np.random.Generator) -> tuple[torch.Tensor, dict]:
        first, second = reader.pairs(train_set.source[pos], train_set.frame[pos])
        y = {h: v[pos] for h, v in train_set.y.items()}
        if plan is not None:
            first, second, y = hflip(first, second, y, per_item_draw(rng.random, len(pos)) < 0.5, plan)
        logits = model(pair_tensor(first, second, device))
        return _loss(logits, y), {}

    def eval_fn() -> tuple[dict, float | None]:
        val_index, logits = _logits(model, val_set, reader, device, cfg.eval_pairs)
        val = mean_scores(_scores(val_index, logits))
        return val, (validation_loss(val_index, logits, cfg.main_head, cfg.balanced) if cfg.patience and logits
                     else None)

    spec = FitSpec.of(cfg, "pairs")
    state, done = fit(spec, model, step_fn, eval_fn, sampler, max_steps, progress)
    if not done:
        return TrainResult(model_id, False, state["step"])

    metrics = {
        "train": evaluate(model, train_set, reader, device, cfg.eval_pairs),
        "val": evaluate(model, val_set, reader, device, progress=progress, desc="val"),
        "test": evaluate(model, index.subset(index.split == 2), reader, device, progress=progress, desc="test"),
    }
    finish(model_id, model, _card(cfg, spec, model, index, train_set, metrics, state, device))
    return TrainResult(model_id, True, state["step"], load_card(model_id))


def _card(cfg: TrainConfig, spec: FitSpec, model: IDMLatentSpatial, index: PairIndex, train_set: PairIndex,
          metrics: dict, state: dict, device: torch.device) -> dict:
    return {
        "model_id": cfg.model_id,
        **training_card(spec, model, state, device),
        "heads": {h: {"classes": c, "kind": index.kinds[h], "target": index.targets[h]} for h, c in index.heads.items()},
        "main_head": cfg.main_head,
        "games": index.games,
        "init_from": cfg.init_from,
        "data": [{"dataset_id": s.dataset_id, "variant": s.variant, "store": str(s.path), "n_frames": s.n_frames}
                 for s in index.sources],
        "labeled_pairs": index.counts(),
        "train_pairs_used": len(train_set),
        "metrics": metrics,
        "config": cfg.to_dict(),
        **provenance("torch", "scikit-learn", "opencv-python-headless"),
    }
