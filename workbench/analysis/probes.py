"""Linear probes on the IDM's penultimate embedding: is the action information *present*
(seed 000 §3), whatever the model's own decision boundary does?

A probe is ``StandardScaler`` + ``LogisticRegression`` (class-balanced, so it optimises the
metric it is scored with), scored by balanced accuracy from out-of-fold predictions of a
``GroupKFold`` whose groups are 64-frame blocks of the source video within each game — adjacent
frames are nearly identical, so letting them fall on both sides of a fold would leak.

Two variants: ``joint`` (one probe trained on all games, scored per game — one boundary for all)
and ``per_game`` (a probe per game — each game its own boundary); on request the control
``shuffled`` (a per-game probe fitted on labels permuted within the game: what a probe reads
from no information, about chance).

Beside an IDM's zero-shot accuracy, fit and score probes on frames the IDM never trained on
(:data:`HELD_OUT`: its validation and test splits, scored on test): on its training frames an
embedding can memorise labels, and a probe there measures memory, not information.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ..core.errors import ConfigError
from .linear import TorchLogisticProbe
from .metrics import balanced_accuracy, chance_level, head_classes, split_mask, use_torch

VARIANTS = ("joint", "per_game")
#: Variants run only on request: controls.
CONTROLS = ("shuffled",)
#: ``linear_probe`` keywords of the held-out protocol: cross-validated over the blocks of the
#: IDM's validation and test frames, scored on its test frames.
HELD_OUT = {"split": ("val", "test"), "score_split": "test"}
#: ``backend="auto"`` fits probes through torch (:mod:`.linear`) on a GPU, or on the CPU from this
#: many frames; below, sklearn (the numbers of before).
TORCH_ABOVE = 200_000


def one_blas_thread() -> threadpool_limits:
    """A context limiting BLAS to one thread. Logistic-regression fits on a few thousand × 256
    rows are latency-bound: a multi-threaded BLAS spends more on waking its threads than on the
    work (measured on 2 cores: 2.8 s per fit with 2 OpenBLAS threads, 0.39 s with 1)."""
    return threadpool_limits(limits=1, user_api="blas")


def make_probe(C: float = 1.0, class_weight: str | None = "balanced", max_iter: int = 1000,
               backend: str = "sklearn", device=None) -> Pipeline | TorchLogisticProbe:
    """The probe: standardise each embedding dimension, then multinomial logistic regression
    (sklearn; or with ``backend="torch"`` the same objective through torch on ``device``)."""
    if backend == "torch":
        return TorchLogisticProbe(C=C, class_weight=class_weight, max_iter=max_iter, device=device)
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, class_weight=class_weight, max_iter=max_iter))


def block_groups(ds: xr.Dataset, block: int = 64) -> np.ndarray:
    """Group id (int64, frame) of each row: its game and ``source_frame // block``."""
    _, game = np.unique(np.asarray(ds["game"].values).astype(str), return_inverse=True)
    blocks = np.asarray(ds["source_frame"].values, np.int64) // block
    return game * (int(blocks.max()) + 1) + blocks


def out_of_fold(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_splits: int = 5, estimator=None,
                **probe) -> np.ndarray:
    """Out-of-fold probe predictions (int64, len(y)) under GroupKFold over ``groups``; -1 for
    the rows of a fold whose training part holds fewer than 2 classes (rare classes can sit in
    few blocks), and for every row when there are fewer than 2 groups or 2 classes at all.

    ``estimator(n_train)`` builds the classifier for a fold (default: :func:`make_probe` with ``probe``).
    """
    out = np.full(len(y), -1, np.int64)
    n_groups = len(np.unique(groups))
    if n_groups < 2 or len(np.unique(y)) < 2:
        return out
    with one_blas_thread():
        for train, test in GroupKFold(n_splits=min(n_splits, n_groups)).split(x, y, groups):
            if len(np.unique(y[train])) < 2:
                continue
            model = estimator(len(train)) if estimator is not None else make_probe(**probe)
            out[test] = model.fit(x[train], y[train]).predict(x[test])
    return out


def linear_probe(
    ds: xr.Dataset,
    heads: Sequence[str] | None = None,
    variants: Sequence[str] = VARIANTS,
    split: str | Iterable[str] | None = None,
    n_splits: int = 5,
    block: int = 64,
    score_split: str | Iterable[str] | None = None,
    seed: int = 0,
    return_predictions: bool = False,
    backend: str = "auto",
    device=None,
    **probe,
):
    """Cross-validated probe accuracy per game, head and variant.

    Uses the labeled rows of ``split`` (default all) and scores the out-of-fold predictions of
    those in ``score_split`` (default all used; ``**HELD_OUT`` for the held-out protocol).
    ``probe`` goes to :func:`make_probe` (``C``, ``class_weight``, ``max_iter``). Columns:
    ``game``, ``head``, ``variant``, ``n`` (scored rows), ``chance`` (1/K of the classes
    present), ``balanced_accuracy`` (NaN where a game has a single class or block). ``seed``: the
    ``shuffled`` control's permutation. ``return_predictions``: also the scored rows' out-of-fold
    predictions (``row``: position in ``ds``, ``head``, ``variant``, ``pred``; -1 = not predicted).
    ``backend``: ``"sklearn"``, ``"torch"`` (on ``device``, default CUDA when available; chunked on
    the CPU), or ``"auto"``: torch on a GPU or from :data:`TORCH_ABOVE` frames.
    """
    unknown = set(variants) - set(VARIANTS) - set(CONTROLS)
    if unknown:
        raise ConfigError(f"unknown probe variants {sorted(unknown)}; known: {VARIANTS}")
    x_all = np.asarray(ds["embedding"].values, np.float32)
    if use_torch(backend, len(x_all), TORCH_ABOVE):
        probe.update(backend="torch", device=device)
    game = np.asarray(ds["game"].values).astype(str)
    groups = block_groups(ds, block)
    in_split = split_mask(ds, split)
    scored = split_mask(ds, score_split)
    rows, predictions = [], []
    rng = np.random.default_rng(seed)
    for head in heads or list(head_classes(ds)):
        y_all = np.asarray(ds[head].values, np.int64)
        keep = in_split & (y_all >= 0)
        x, y, g, grp, sc = x_all[keep], y_all[keep], game[keep], groups[keep], scored[keep]
        position = np.flatnonzero(keep)
        games = list(dict.fromkeys(g))
        preds = {}
        if "joint" in variants:
            preds["joint"] = out_of_fold(x, y, grp, n_splits, **probe)
        def per_game(labels: np.ndarray) -> np.ndarray:
            pred = np.empty(len(y), np.int64)
            for name in games:
                sel = g == name
                pred[sel] = out_of_fold(x[sel], labels[sel], grp[sel], n_splits, **probe)
            return pred
        if "per_game" in variants:
            preds["per_game"] = per_game(y)
        if "shuffled" in variants:  # labels permuted within each game
            shuffled = y.copy()
            for name in games:
                shuffled[g == name] = rng.permutation(y[g == name])
            preds["shuffled"] = per_game(shuffled)
        for variant, pred in preds.items():
            predictions.append(pd.DataFrame({"row": position[sc], "head": head, "variant": variant, "pred": pred[sc]}))
            for name in games:
                sel = (g == name) & sc
                ok = pred[sel] >= 0
                rows.append({
                    "game": name, "head": head, "variant": variant, "n": int(sel.sum()),
                    "chance": chance_level(y[sel]),
                    "balanced_accuracy": balanced_accuracy(y[sel], pred[sel]) if ok.all() else float("nan"),
                })
    table = pd.DataFrame(rows, columns=["game", "head", "variant", "n", "chance", "balanced_accuracy"])
    if not return_predictions:
        return table
    return table, (pd.concat(predictions, ignore_index=True) if predictions
                   else pd.DataFrame(columns=["row", "head", "variant", "pred"]))
