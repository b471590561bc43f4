"""The embedding layout: the one contract between the methods that produce embeddings (an IDM's
penultimate activations, a world model's latent actions, the next method's codes) and every
analysis that reads them (geometry, probes, KNN, calibration). A method that writes this layout
gets every analysis, page and notebook for free::

    dims      frame (one row per transition t -> t+1 of a dataset), dim
    embedding float32 (frame, dim), finite
    coords    game (str), episode (int), step (int), source_frame (int: index of t in its store),
              split (str: train / val / test under the producing model's block split)
    labels    one int8 (frame) variable per head named in ``attrs["heads"]``, the dataset's TRUE
              labels, attrs ``kind`` (categorical / binary) and ``classes``; -1 = unlabeled
    attrs     model_id (str), heads ({head: [class names]})

Methods add what they have beside it (predictions, logits, flow proxies, codes, continuous inputs).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..core.errors import DataError

COORDS = ("game", "episode", "step", "source_frame", "split")
SPLIT_NAMES = ("train", "val", "test")


def layout_problems(ds: xr.Dataset) -> list[str]:
    """What keeps ``ds`` from the embedding layout (empty when it follows it)."""
    problems = []
    if "embedding" not in ds:
        return ["no 'embedding' variable"]
    emb = ds["embedding"]
    if emb.dims != ("frame", "dim"):
        problems.append(f"embedding has dims {emb.dims}, not ('frame', 'dim')")
    if emb.dtype != np.float32:
        problems.append(f"embedding is {emb.dtype}, not float32")
    elif not np.isfinite(emb.values).all():
        problems.append("embedding holds NaN or inf")
    for name in COORDS:
        if name not in ds.coords or ds[name].dims != ("frame",):
            problems.append(f"no coordinate {name!r} along 'frame'")
    if "game" in ds.coords and ds["game"].dtype.kind not in "UO":
        problems.append(f"game is {ds['game'].dtype}, not strings")
    for name in ("episode", "step", "source_frame"):
        if name in ds.coords and ds[name].dtype.kind not in "iu":
            problems.append(f"{name} is {ds[name].dtype}, not integers")
    if "split" in ds.coords:
        unknown = sorted(set(np.unique(ds["split"].values).astype(str).tolist()) - set(SPLIT_NAMES))
        if unknown:
            problems.append(f"split values {unknown} are not {SPLIT_NAMES}")
    if not isinstance(ds.attrs.get("model_id"), str):
        problems.append("no model_id attribute")
    heads = ds.attrs.get("heads")
    if not isinstance(heads, dict):
        return problems + ["no heads attribute ({head: [class names]})"]
    for head, classes in heads.items():
        if head not in ds or ds[head].dims != ("frame",):
            problems.append(f"head {head!r} has no label variable along 'frame'")
            continue
        var = ds[head]
        if var.dtype != np.int8:
            problems.append(f"label {head!r} is {var.dtype}, not int8")
        if var.attrs.get("kind") not in ("categorical", "binary") or list(var.attrs.get("classes", [])) != list(classes):
            problems.append(f"label {head!r} lacks kind/classes attributes matching heads")
        values = np.asarray(var.values)
        if len(values) and (values.min() < -1 or values.max() >= len(classes)):
            problems.append(f"label {head!r} holds codes outside [-1, {len(classes) - 1}]")
    return problems


def check_layout(ds: xr.Dataset, what: str = "embeddings") -> xr.Dataset:
    """``ds`` when it follows the embedding layout; otherwise a one-line :class:`DataError`
    naming ``what`` and every problem."""
    problems = layout_problems(ds)
    if problems:
        raise DataError(f"{what} do not follow the embedding layout: {'; '.join(problems)}")
    return ds
