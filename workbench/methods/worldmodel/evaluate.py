"""Evaluations of latent-action world models (seed 002 §5–6) as pure functions returning
DataFrames: capacity (prediction error with IDM-inferred latents, one-step and rolled out),
future leakage (Table 1: error at an artificial scene cut vs the same position uncut) and
transfer with cycle consistency (Table 2).

Errors are mean absolute differences of representations (the training loss; the encoder
standardises every channel, so 1.0 is one standard deviation of the data) and, with
``pixels=True``, of the decoded frames against the decoded true representations (in [0, 1];
our stand-in for the paper's LPIPS, which needs weights we do not ship). Every function takes
model ids of the library (or ``(model, card)`` pairs) and draws its clips from the models'
own held-out split (``split="test"``) with a fixed seed, so models trained on the same data
are scored on the same clips.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ...core.errors import ConfigError, DataError
from ...engine.device import default_device
from ...engine.card import ModelCard
from ...engine.library import load_card, load_model
from ...frames.sources import resolve_source
from ...frames.split import SPLITS
from ...frames.actions import ActionSpace
from ...frames.clips import ClipIndex, build_clip_index
from ...frames.stream import FrameReader
from .model import LatentActionWorldModel
from .regularizers import KNOBS

EVAL_BATCH = 64
ModelRef = str | tuple[torch.nn.Module, Mapping]


def resolve_model(model: ModelRef, device: str | torch.device | None = None) -> tuple[torch.nn.Module, ModelCard]:
    """``(module in eval mode, card)`` of a library id or a ``(module, card)`` pair."""
    if isinstance(model, str):
        return load_model(model, device), load_card(model)
    net, card = model
    if device is not None:
        net = net.to(default_device(device))
    return net.eval(), ModelCard.of(card)


def spread(n: int, k: int) -> np.ndarray:
    """At most ``k`` evenly spaced positions out of ``n``: a fixed, deterministic sample."""
    return np.arange(n) if n <= k else np.linspace(0, n - 1, k).round().astype(np.int64)


@dataclass
class ClipBatch:
    """Clips of one split: the index, the reader, the chosen positions, their representations
    ``s (N, L, C, G, G)`` and (when the model reads actions) standardised actions ``(N, L-1, A)``."""

    index: ClipIndex
    reader: FrameReader
    positions: np.ndarray
    s: torch.Tensor
    actions: torch.Tensor | None = None


def clip_index_for(card: ModelCard, dataset: str | None = None, length: int | None = None, size: str | None = None,
                   data_seed: int | None = None, games: Sequence[str] | None = None) -> ClipIndex:
    """The clip index of a world model's data (or of ``dataset``) with its block split, of
    ``games`` when given (e.g. games the model never trained on: the split is per game, so a
    game's test clips are the same whichever games a model saw)."""
    cfg = card.config
    refs = [dataset] if dataset else cfg["datasets"]
    sources = [resolve_source(r, size if dataset else cfg["size"], data_seed if dataset else cfg["data_seed"])
               for r in refs]
    keep = games if games is not None else (None if dataset else cfg["games"])
    split = card.split
    return build_clip_index(sources, length or cfg["clip_length"], keep, split["split_block"],
                            split["split_fractions"], split["split_seed"])


@torch.no_grad()
def encode_clips(model: LatentActionWorldModel, reader: FrameReader, index: ClipIndex,
                 positions: np.ndarray) -> torch.Tensor:
    """Representations ``(N, L, C, G, G)`` of the clips at ``positions``, in batches."""
    parts = [model.encode(reader.batch(index, positions[b])) for b in _batches(len(positions))]
    return torch.cat(parts) if parts else torch.empty(0, index.length, *model.rep_shape)


def load_clips(model: LatentActionWorldModel, card: ModelCard, split: str = "test", n_clips: int = 128,
               dataset: str | None = None, length: int | None = None, size: str | None = None,
               data_seed: int | None = None, action_space: Mapping | None = None,
               games: Sequence[str] | None = None) -> ClipBatch:
    """Up to ``n_clips`` evenly spread clips of ``split`` (``all`` for every split), encoded;
    of ``games`` when given (see :func:`clip_index_for`).

    ``action_space`` (an :class:`ActionSpace` dict, default the card's for an action-conditioned
    model) keeps only clips whose every step has an action and attaches them standardised.
    """
    index = clip_index_for(card, dataset, length, size, data_seed, games)
    keep = np.ones(len(index), bool) if split == "all" else index.split == SPLITS.index(split)
    action_space = action_space or card.extras.get("action_space")
    if action_space:
        index = index.with_actions(action_space["name"])
        keep &= index.action_mask()
    if not keep.any():
        raise DataError(f"no {split} clips of {index.length} frames in {[s.dataset_id for s in index.sources]}"
                        " (a larger dataset size or a smaller split_block gives some)")
    index = index.subset(keep)
    positions = spread(len(index), n_clips)
    reader = FrameReader(index.sources, model.input_size, capacity=64)
    device = next(model.parameters()).device
    actions = None
    if action_space:
        space = ActionSpace(**action_space)
        actions = torch.from_numpy(space.standardize(index.clip_actions(positions))).to(device)
    return ClipBatch(index, reader, positions, encode_clips(model, reader, index, positions), actions)


def _batches(n: int):
    return [slice(i, i + EVAL_BATCH) for i in range(0, n, EVAL_BATCH)]


@torch.no_grad()
def infer_latents(model: LatentActionWorldModel, s: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
    """Deterministic latent actions ``(N, L-1, D)`` of clips ``s`` (IDM, zeros or embedded actions)."""
    model.eval()
    return torch.cat([model.latents(s[b], None if actions is None else actions[b])[0] for b in _batches(len(s))])


@torch.no_grad()
def teacher_forced(model: LatentActionWorldModel, s: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Predicted ``s_{t+1}`` ``(N, L-1, ...)`` from the true ``s_{0:t}`` and ``z_t`` (one step each)."""
    return torch.cat([model.predict(s[b, :-1], z[b]) for b in _batches(len(s))])


@torch.no_grad()
def rolled_out(model: LatentActionWorldModel, s0: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Autoregressive predictions ``(N, H, ...)`` from ``s0 (N, ...)`` driven by ``z (N, H, D)``."""
    return torch.cat([model.rollout(s0[b], z[b]) for b in _batches(len(s0))])


def l1(pred: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """Mean absolute error over the representation dims: ``(N, H)`` float64."""
    return (pred - target).abs().flatten(2).mean(-1).double().cpu().numpy()


@torch.no_grad()
def pixel_l1(model: LatentActionWorldModel, pred: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    """Mean absolute error of the decoded frames, in [0, 1]: ``(N, H)``."""
    a = model.decode(pred).astype(np.float32)
    b = model.decode(target).astype(np.float32)
    return np.abs(a - b).reshape(*pred.shape[:2], -1).mean(-1) / 255.0


def one_step_errors(model: LatentActionWorldModel, s: torch.Tensor, actions: torch.Tensor | None = None,
                    ablations: bool = True) -> dict[str, np.ndarray]:
    """Teacher-forced one-step errors ``(N, L-1)`` with the model's own latents (``model``) and,
    with ``ablations``, with zero latents (``zero``) and latents of other clips (``shuffled``:
    each clip gets the next clip's latents)."""
    z = infer_latents(model, s, actions)
    out = {"model": l1(teacher_forced(model, s, z), s[:, 1:])}
    if ablations and model.family != "zero":
        out["zero"] = l1(teacher_forced(model, s, torch.zeros_like(z)), s[:, 1:])
        out["shuffled"] = l1(teacher_forced(model, s, z.roll(1, dims=0)), s[:, 1:])
    return out


def describe_model(card: ModelCard) -> dict:
    """The leading columns of every table: model_id, family, knob (its field name), knob_value."""
    cfg = card.config
    knob = KNOBS.get(cfg["family"])
    return {"model_id": card.model_id, "family": cfg["family"], "knob": knob,
            "knob_value": cfg[knob] if knob else np.nan}


def capacity(models: Sequence[ModelRef], split: str = "test", n_clips: int = 128, dataset: str | None = None,
             pixels: bool = True, device: str | torch.device | None = None,
             games: Sequence[str] | None = None) -> pd.DataFrame:
    """Prediction error of each model with its own latents (IDM-inferred; zeros for the
    deterministic model; true actions for the action-conditioned one) — the paper's "capacity"
    (§5, Figure 4): lower error = more capacity.

    Rows per model: ``mode="one_step"`` for each position ``t`` (teacher forcing, context
    ``s_{0:t}``; ``horizon`` 1, ``step`` t) and ``mode="rollout"`` for each ``horizon`` h
    (autoregressive from ``s_0``). Columns: model_id, family, knob, knob_value, mode, step,
    horizon, n, error, pixel_error (NaN without ``pixels``).
    """
    rows = []
    for ref in models:
        model, card = resolve_model(ref, device)
        batch = load_clips(model, card, split, n_clips, dataset, games=games)
        z = infer_latents(model, batch.s, batch.actions)
        target = batch.s[:, 1:]
        predictions = {"one_step": teacher_forced(model, batch.s, z), "rollout": rolled_out(model, batch.s[:, 0], z)}
        for mode, pred in predictions.items():
            err = l1(pred, target)
            pix = pixel_l1(model, pred, target) if pixels else np.full_like(err, np.nan)
            for t in range(err.shape[1]):
                rows.append({**describe_model(card), "mode": mode, "step": t if mode == "one_step" else 0,
                             "horizon": 1 if mode == "one_step" else t + 1, "n": len(err),
                             "error": float(err[:, t].mean()), "pixel_error": float(pix[:, t].mean())})
    return pd.DataFrame(rows)


def partners(index: ClipIndex, positions: np.ndarray, pairing: str = "across", seed: int = 0) -> np.ndarray:
    """For each clip at ``positions``, another of them to splice or transfer with.

    ``across``: a clip of another game (falls back to ``within`` for one-game data);
    ``within``: a clip of the same game at least 8 clip lengths away (another episode or a
    distant part of it); ``any``: any other clip. Drawn with ``seed``; -1 where none exists.
    """
    if pairing not in ("across", "within", "any"):
        raise ConfigError(f"pairing must be across, within or any, got {pairing!r}")
    rng = np.random.default_rng(seed)
    game = index.game[positions]
    key = index.source[positions].astype(np.int64) * (1 << 40) + index.start[positions]
    if pairing == "across" and len(np.unique(game)) < 2:
        pairing = "within"
    out = np.full(len(positions), -1, np.int64)
    for i in range(len(positions)):
        if pairing == "across":
            ok = game != game[i]
        elif pairing == "within":
            ok = (game == game[i]) & (np.abs(key - key[i]) >= index.length * 8)
        else:
            ok = np.arange(len(positions)) != i
        candidates = np.flatnonzero(ok)
        if len(candidates):
            out[i] = rng.choice(candidates)
    return out


def future_leakage(models: Sequence[ModelRef], split: str = "test", n_clips: int = 128, dataset: str | None = None,
                   cut: int | None = None, pairing: str = "across", pixels: bool = True, seed: int = 0,
                   device: str | torch.device | None = None, games: Sequence[str] | None = None,
                   per_clip: bool = False) -> pd.DataFrame:
    """Future leakage under artificial scene cuts (§6, Table 1).

    Clip A's frames up to ``cut`` (default the middle) are followed by clip B's frames after it;
    the IDM sees the cut transition, so a model whose latent can carry the whole next frame
    predicts B's frame as well as A's own next frame. Reported: the one-step error at the cut
    position without (``error``) and with the cut (``error_cut``) and ``ratio`` = cut / no cut
    (well above 1: the latent cannot copy the future). The deterministic ``zero`` model, whose
    latent is always zero, is the reference where nothing can leak: its ratio is how much a cut
    raises the error on its own. One row per model; with ``per_clip`` one row per model and clip
    (``clip``: its position in the evaluated sample, ``game``), the errors of that clip — what a
    bootstrap over clips resamples.
    """
    rows = []
    for ref in models:
        model, card = resolve_model(ref, device)
        if model.family == "action":
            raise ConfigError(f"{card.model_id}: future leakage needs IDM latents or none (family 'action')")
        batch = load_clips(model, card, split, n_clips, dataset, games=games)
        k = (batch.s.shape[1] // 2 - 1) if cut is None else int(cut)
        if not 0 <= k < batch.s.shape[1] - 1:
            raise ConfigError(f"cut must be in [0, {batch.s.shape[1] - 2}], got {k}")
        other = partners(batch.index, batch.positions, pairing, seed)
        ok = other >= 0
        if not ok.any():  # e.g. one game's few test clips, none far enough from another
            continue
        s, spliced = batch.s[ok], batch.s[ok].clone()
        spliced[:, k + 1:] = batch.s[other[ok], k + 1:]
        result = {}
        for name, clips in (("", s), ("_cut", spliced)):
            pred = teacher_forced(model, clips, infer_latents(model, clips))[:, k:k + 1]
            result[f"error{name}"] = l1(pred, clips[:, k + 1:k + 2])[:, 0]
            result[f"pixel_error{name}"] = (pixel_l1(model, pred, clips[:, k + 1:k + 2])[:, 0] if pixels
                                            else np.full(len(clips), np.nan))
        rows.append(pd.DataFrame({**describe_model(card), "pairing": pairing, "cut": k, "clip": np.flatnonzero(ok),
                                  "game": batch.index.game_names()[batch.positions[ok]], **result}))
    clips = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return clips if per_clip else clip_means(clips, ["pairing", "cut"], {"ratio": ("error_cut", "error"),
                                                                         "pixel_ratio": ("pixel_error_cut", "pixel_error")})


def clip_means(clips: pd.DataFrame, keys: Sequence[str], ratios: Mapping[str, tuple[str, str]]) -> pd.DataFrame:
    """One row per model (and ``keys``) of per-clip scores: ``n`` clips, the mean of every error
    column, and each ``ratios`` column as the ratio of two of those means."""
    if clips.empty:
        return clips
    group = ["model_id", "family", "knob", "knob_value", *keys]
    errors = [c for c in clips.columns if "error" in c]
    out = clips.groupby(group, sort=False, dropna=False)[errors].mean().reset_index()
    out.insert(len(group), "n", clips.groupby(group, sort=False, dropna=False).size().to_numpy())
    for name, (top, bottom) in ratios.items():
        out[name] = out[top] / out[bottom]
    return out


@torch.no_grad()
def transfer_cycle(model: LatentActionWorldModel, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
    """The cycle of Table 2 on clips ``a``, ``b`` ``(N, L, ...)``: latents inferred on A drive B
    from ``b[:, 0]`` (``transferred``), are re-inferred on that prediction and drive A again from
    ``a[:, 0]`` (``cycled``); ``original`` is A driven by its own latents. Each ``(N, L-1, ...)``."""
    z_a = infer_latents(model, a)
    transferred = rolled_out(model, b[:, 0], z_a)
    z_back = infer_latents(model, torch.cat([b[:, :1], transferred], dim=1))
    return {"original": rolled_out(model, a[:, 0], z_a), "transferred": transferred,
            "cycled": rolled_out(model, a[:, 0], z_back)}


def cycle_consistency(models: Sequence[ModelRef], split: str = "test", n_clips: int = 128, dataset: str | None = None,
                      pairings: Sequence[str] = ("within", "across"), pixels: bool = True, seed: int = 0,
                      device: str | torch.device | None = None, games: Sequence[str] | None = None,
                      per_clip: bool = False) -> pd.DataFrame:
    """Action cycle consistency (§6, Table 2): rollout error on A over the whole clip with its
    own latents (``error``) and with the latents after the trip A -> B -> A (``error_cycle``),
    and ``ratio``. One row per model and pairing (``within`` a game, ``across`` games); with
    ``per_clip`` one per model, pairing and clip A (``clip``, ``game``), without ratios."""
    rows = []
    for ref in models:
        model, card = resolve_model(ref, device)
        if model.family in ("zero", "action"):
            raise ConfigError(f"{card.model_id}: cycle consistency needs IDM latents (family {model.family!r})")
        batch = load_clips(model, card, split, n_clips, dataset, games=games)
        for pairing in pairings:
            if pairing == "across" and len(np.unique(batch.index.game[batch.positions])) < 2:
                continue
            other = partners(batch.index, batch.positions, pairing, seed)
            ok = other >= 0
            if not ok.any():
                continue
            out = transfer_cycle(model, batch.s[ok], batch.s[other[ok]])
            target = batch.s[ok, 1:]
            result = {"error": l1(out["original"], target).mean(1), "error_cycle": l1(out["cycled"], target).mean(1)}
            if pixels:
                result.update(pixel_error=pixel_l1(model, out["original"], target).mean(1),
                              pixel_error_cycle=pixel_l1(model, out["cycled"], target).mean(1))
            rows.append(pd.DataFrame({**describe_model(card), "pairing": pairing, "clip": np.flatnonzero(ok),
                                      "game": batch.index.game_names()[batch.positions[ok]], **result}))
    clips = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return clips if per_clip else clip_means(clips, ["pairing"], {"ratio": ("error_cycle", "error")})
