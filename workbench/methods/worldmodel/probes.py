"""Latent actions of every frame pair of a dataset, and probes on them: how well are each game's
true actions (steer, keys, …) decoded from the latent action ``z_t = g(s_t, s_{t+1})``?

:func:`latent_actions` returns the same layout as :func:`workbench.methods.idm.extract_embeddings`
(``embedding`` = the latent action), so every embedding analysis — geometry, the cross-game
KNN matrix, :func:`workbench.analysis.probes.linear_probe` — runs on it unchanged.
:func:`latent_probes` scores per game a linear probe (that module's, per-game variant) and a KNN
probe, both cross-validated over 64-frame blocks (:func:`workbench.analysis.probes.block_groups`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
import xarray as xr
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from ...core.errors import ConfigError
from ...analysis.metrics import balanced_accuracy, chance_level, head_classes
from ...analysis.probes import block_groups, linear_probe, out_of_fold
from ...frames.pairs import build_pair_index, default_heads
from ...frames.sources import resolve_source
from ...frames.split import SPLITS
from ...frames.stream import FrameReader
from ...frames.actions import INPUT_CONTINUOUS
from .evaluate import ModelRef, resolve_model


@torch.no_grad()
def latent_actions(model: ModelRef, dataset: str | None = None, split: str = "all", size: str | None = None,
                   data_seed: int | None = None, batch_size: int = 256, device: str | torch.device | None = None,
                   progress: bool = False) -> xr.Dataset:
    """Deterministic latent actions (noisy: the mean; discrete: the code) of every pair ``t -> t+1``.

    ``dataset`` defaults to the model's own data; the split is the model's block split. Returns
    ``embedding`` float32 (frame, dim); coords game, episode, step, source_frame, split, source
    (dataset id); the true labels of every categorical/binary head (int8, -1 = unlabeled; attrs
    kind, classes) and the continuous inputs present (e.g. ``mouse_dx``); ``code`` (int16) for a
    discrete model; attrs model_id, family, heads.
    """
    net, card = resolve_model(model, device)
    if net.family in ("zero", "action"):
        raise ConfigError(f"{card['model_id']} has no IDM latents (family {net.family!r})")
    if split not in (*SPLITS, "all"):
        raise ConfigError(f"split must be one of {(*SPLITS, 'all')}, got {split!r}")
    cfg = card["config"]
    refs = [dataset] if dataset else cfg["datasets"]
    sources = [resolve_source(r, size if dataset else cfg["size"], data_seed if dataset else cfg["data_seed"])
               for r in refs]
    heads = default_heads(sources)
    index = build_pair_index(sources, heads, None, None if dataset else cfg["games"], cfg["split_block"],
                             cfg["split_fractions"], cfg["split_seed"], labeled_only=False)
    if split != "all":
        index = index.subset(index.split == SPLITS.index(split))
    reader = FrameReader(index.sources, net.input_size, capacity=4)
    order = np.lexsort((index.frame, index.source))
    z = np.empty((len(index), net.latent_dim), np.float32)
    codes = np.full(len(index), -1, np.int16)
    for start in tqdm(range(0, len(order), batch_size), desc="latent actions", disable=not progress):
        sel = order[start:start + batch_size]
        first, second = reader.pairs(index.source[sel], index.frame[sel])
        latent = net.latents(net.encode(np.stack([first, second], axis=1)))[0][:, 0]
        z[sel] = latent.float().cpu().numpy()
        if net.family == "discrete":
            codes[sel] = net.regularizer.quantize(latent)[1].cpu().numpy()

    out = xr.Dataset(
        {"embedding": (("frame", "dim"), z)},
        coords={"game": ("frame", index.game_names()),
                "source": ("frame", np.asarray([s.dataset_id for s in index.sources])[index.source]),
                "source_frame": ("frame", index.frame), "split": ("frame", np.asarray(SPLITS)[index.split])},
        attrs={"model_id": card["model_id"], "family": net.family, "heads": dict(index.heads)},
    )
    episode, step = np.empty(len(index), np.int64), np.empty(len(index), np.int64)
    continuous: dict[str, np.ndarray] = {}
    for s, src in enumerate(index.sources):
        rows = index.source == s
        frames = index.frame[rows]
        data = src.open().drop_vars("frames")
        episode[rows], step[rows] = data["episode"].values[frames], data["step"].values[frames]
        for name in INPUT_CONTINUOUS:
            if name in data:
                continuous.setdefault(name, np.full(len(index), np.nan, np.float32))[rows] = data[name].values[frames]
    out.coords["episode"], out.coords["step"] = ("frame", episode), ("frame", step)
    for head, classes in index.heads.items():
        out[head] = ("frame", index.y[head].astype(np.int8), {"kind": index.kinds[head], "classes": list(classes)})
    for name, values in continuous.items():
        out[name] = ("frame", values, {"kind": "continuous"})
    if net.family == "discrete":
        out["code"] = ("frame", codes)
    return out


def knn_out_of_fold(x: np.ndarray, y: np.ndarray, groups: np.ndarray, k: int = 10, n_splits: int = 5) -> np.ndarray:
    """Out-of-fold KNN (standardised features, Euclidean) predictions under GroupKFold; -1 where
    a fold cannot be scored (see :func:`workbench.analysis.probes.out_of_fold`)."""
    return out_of_fold(x, y, groups, n_splits, estimator=lambda n_train: make_pipeline(
        StandardScaler(), KNeighborsClassifier(n_neighbors=min(k, n_train))))


def latent_probes(ds: xr.Dataset, heads: Sequence[str] | None = None, k: int = 10, n_splits: int = 5,
                  block: int = 64) -> pd.DataFrame:
    """Per game and head: balanced accuracy of a linear and a KNN probe decoding the true action
    from the latent action, cross-validated over ``block``-frame groups within each game.

    Columns: game, head, probe (``linear``/``knn``), n, chance, balanced_accuracy (NaN where a
    game has one class or one block).
    """
    heads = list(heads or head_classes(ds))
    linear = linear_probe(ds, heads, variants=("per_game",), n_splits=n_splits, block=block)
    linear = linear.drop(columns="variant").assign(probe="linear")
    x_all = np.asarray(ds["embedding"].values, np.float32)
    game = np.asarray(ds["game"].values).astype(str)
    groups = block_groups(ds, block)
    rows = []
    for head in heads:
        y_all = np.asarray(ds[head].values, np.int64)
        for name in dict.fromkeys(game):
            sel = (game == name) & (y_all >= 0)
            pred = knn_out_of_fold(x_all[sel], y_all[sel], groups[sel], k, n_splits)
            ok = (pred >= 0).all() and sel.any()
            rows.append({"game": name, "head": head, "probe": "knn", "n": int(sel.sum()),
                         "chance": chance_level(y_all[sel]),
                         "balanced_accuracy": balanced_accuracy(y_all[sel], pred) if ok else float("nan")})
    columns = ["game", "head", "probe", "n", "chance", "balanced_accuracy"]
    return pd.concat([linear[columns], pd.DataFrame(rows, columns=columns)], ignore_index=True)

