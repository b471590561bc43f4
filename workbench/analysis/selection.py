"""Picking frames out of a projection: which points lie in a box or lasso, and what those frames are.

Shared by the dashboard's linked selection and notebooks that want the same answer for a region
of a t-SNE/UMAP plot: :func:`points_in_region` turns a selection geometry into row indices,
:func:`frame_table` describes the chosen frames (coordinates and decoded labels) from the lazy
dataset, reading only the label variables.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr


def points_in_region(xy: np.ndarray, bounds: Sequence[float] | None = None,
                     polygon: np.ndarray | None = None) -> np.ndarray:
    """Indices (sorted, int64) of the rows of ``xy (n, 2)`` inside a selection.

    ``bounds`` is a box ``(x0, y0, x1, y1)`` (a box-select), ``polygon`` an ``(m, 2)`` array of
    vertices (a lasso); with both, a point must lie in both; with neither, nothing is selected.
    Points on the box's edge count as inside.
    """
    xy = np.asarray(xy, np.float64)
    if bounds is None and polygon is None:
        return np.zeros(0, np.int64)
    inside = np.ones(len(xy), bool)
    if bounds is not None:
        x0, y0, x1, y1 = bounds
        inside &= (xy[:, 0] >= min(x0, x1)) & (xy[:, 0] <= max(x0, x1))
        inside &= (xy[:, 1] >= min(y0, y1)) & (xy[:, 1] <= max(y0, y1))
    if polygon is not None:
        from matplotlib.path import Path

        vertices = np.asarray(polygon, np.float64)
        if len(vertices) < 3:
            return np.zeros(0, np.int64)
        inside &= Path(vertices).contains_points(xy)
    return np.flatnonzero(inside).astype(np.int64)


def frame_table(ds: xr.Dataset, frames: Sequence[int]) -> pd.DataFrame:
    """One row per frame of ``ds``: ``frame``, ``game``, ``episode``, ``step`` and every
    per-frame label (categorical codes decoded to class names, ``UNLABELED`` for -1; binary as
    0/1; continuous as floats; ``flow_*`` statistics when flow was computed).

    Only the 1-D variables are read (the lazy dataset's frames stay on disk).
    """
    frames = np.asarray(frames, np.int64)
    out = pd.DataFrame({"frame": frames})
    for coord in ("game", "episode", "step"):
        if coord in ds.coords:
            out[coord] = np.asarray(ds[coord].isel(frame=frames).values)
    for name, var in ds.data_vars.items():
        if var.dims != ("frame",):
            continue
        values = np.asarray(var.isel(frame=frames).values)
        classes = var.attrs.get("classes")
        if var.attrs.get("kind") == "categorical" and classes:
            names = np.asarray([*classes, "UNLABELED"], dtype=object)
            values = names[np.where(values >= 0, values, len(classes)).astype(np.int64)]
        out[name] = values
    if "game" in out:
        out["game"] = out["game"].astype(str)
    return out
