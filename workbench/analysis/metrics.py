"""Balanced accuracy of the IDM's own predictions, per game and head (seed 000's metric).

Works on the embedding dataset of :func:`workbench.methods.idm.embed.extract_embeddings`: true labels
``<head>`` (int8, -1 = unlabeled), predictions ``pred_<head>``, coords ``game`` and ``split``.
The helpers here (heads, row selection, balanced accuracy) are shared by the other analyses.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..core.errors import DataError


def head_classes(ds: xr.Dataset) -> dict[str, list[str]]:
    """Head name -> class names: ``ds.attrs["heads"]``, else every 1-D categorical/binary label
    variable that is neither a prediction (``pred_*``) nor a flow proxy (``flow_*``)."""
    if "heads" in ds.attrs:
        return {h: list(c) for h, c in ds.attrs["heads"].items()}
    return {
        name: list(var.attrs.get("classes", [])) or ["0", "1"]
        for name, var in ds.data_vars.items()
        if var.attrs.get("kind") in ("categorical", "binary") and var.dims == ("frame",)
        and not str(name).startswith(("pred_", "flow_"))
    }


def split_mask(ds: xr.Dataset, split: str | Iterable[str] | None) -> np.ndarray:
    """Boolean (frame,) mask of rows in ``split`` (a name or several); all rows when ``None``."""
    n = ds.sizes["frame"]
    if split is None:
        return np.ones(n, bool)
    wanted = [split] if isinstance(split, str) else list(split)
    return np.isin(np.asarray(ds["split"].values).astype(str), wanted)


def require_rows(ds: xr.Dataset, split: str | Iterable[str] | None, purpose: str) -> np.ndarray:
    """:func:`split_mask`, raising a helpful error when ``split`` selects no row at all (e.g. a
    dataset extracted with ``split="test"`` asked for its train frames)."""
    mask = split_mask(ds, split)
    if not mask.any():
        raise DataError(f"{purpose} needs {split!r} rows and the dataset has none (splits present:"
                        f" {sorted(set(np.asarray(ds['split'].values).astype(str)))});"
                        " extract the embeddings with split='all'")
    return mask


def use_torch(backend: str, size: int, threshold: int) -> bool:
    """Whether ``backend`` (``"auto"``, ``"torch"`` or ``"sklearn"``) means torch for a problem of
    ``size``: ``auto`` chooses torch on a GPU, or from ``threshold`` up (below it, sklearn gives
    the numbers the analyses gave before they had a torch path)."""
    if backend not in ("auto", "torch", "sklearn"):
        raise ValueError(f"backend must be 'auto', 'torch' or 'sklearn', got {backend!r}")
    if backend == "auto":
        import torch

        return torch.cuda.is_available() or size >= threshold
    return backend == "torch"


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``y_true`` (sklearn's definition, without its
    warnings); NaN for no rows. Codes are non-negative ints."""
    y_true = np.asarray(y_true, np.int64)
    y_pred = np.asarray(y_pred, np.int64)
    if not len(y_true):
        return float("nan")
    k = int(max(y_true.max(), y_pred.max())) + 1
    total = np.bincount(y_true, minlength=k)
    hit = np.bincount(y_true[y_true == y_pred], minlength=k)
    present = total > 0
    return float(np.mean(hit[present] / total[present]))


def chance_level(y_true: np.ndarray) -> float:
    """Balanced accuracy of any predictor that ignores its input: 1/K for the K classes present."""
    return 1.0 / len(np.unique(y_true)) if len(y_true) else float("nan")


def accuracy_table(
    ds: xr.Dataset,
    heads: Sequence[str] | None = None,
    split: str | Iterable[str] | None = None,
    pred: str = "pred_{head}",
) -> pd.DataFrame:
    """Balanced accuracy of ``pred`` (a variable name pattern) against the true labels.

    One row per game and head, over that game's labeled rows in ``split``: columns ``game``,
    ``head``, ``n`` (labeled rows), ``n_classes`` (K classes present), ``chance`` (1/K),
    ``accuracy``, ``balanced_accuracy``. ``pred="flow_steer"`` scores the flow proxy instead.
    """
    game = np.asarray(ds["game"].values).astype(str)
    in_split = split_mask(ds, split)
    rows = []
    for head in heads or list(head_classes(ds)):
        y = np.asarray(ds[head].values, np.int64)
        p = np.asarray(ds[pred.format(head=head)].values, np.int64)
        for g in dict.fromkeys(game):
            sel = (game == g) & in_split & (y >= 0)
            t, q = y[sel], p[sel]
            rows.append({
                "game": g, "head": head, "n": int(sel.sum()), "n_classes": len(np.unique(t)),
                "chance": chance_level(t),
                "accuracy": float(np.mean(t == q)) if len(t) else float("nan"),
                "balanced_accuracy": balanced_accuracy(t, q),
            })
    return pd.DataFrame(rows, columns=["game", "head", "n", "n_classes", "chance", "accuracy", "balanced_accuracy"])
