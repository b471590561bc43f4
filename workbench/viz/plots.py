"""Plotting functions shared by the study report, the notebooks and the dashboard.

Each function takes arrays/DataFrames produced by :mod:`workbench.analysis` and returns a
HoloViews object; the report renders it to PNG with the matplotlib backend
(:func:`save_figure`), the dashboard and notebooks show the same object with Bokeh. Nothing
here computes an analysis.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Mapping, Sequence

import holoviews as hv
import numpy as np
import pandas as pd

#: Seed 000's colours: LEFT blue, RIGHT red, NEUTRAL grey.
ACTION_COLORS = {"LEFT": "#1f77b4", "NEUTRAL": "#9e9e9e", "RIGHT": "#d62728", "UNLABELED": "#dddddd"}
_MPL_MARKERS = ["o", "^", "s", "D", "v", "P", "X", "*"]
_BOKEH_MARKERS = ["circle", "triangle", "square", "diamond", "inverted_triangle", "plus", "x", "star"]
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _ensure_extensions() -> None:
    """Load the plotting backends once (both, so one object renders to PNG and in the browser)."""
    if not hv.Store.renderers.get("matplotlib") or not hv.Store.renderers.get("bokeh"):
        import matplotlib

        if not os.environ.get("MPLBACKEND"):
            matplotlib.use("Agg")
        hv.extension("bokeh", "matplotlib", logo=False)


def _style(obj, common: Mapping | None = None, bokeh: Mapping | None = None, mpl: Mapping | None = None):
    """Apply options valid in both backends (``common``) plus backend-specific ones."""
    common = dict(common or {})
    obj = obj.opts(**common, **dict(bokeh or {}), backend="bokeh")
    return obj.opts(**common, **dict(mpl or {}), backend="matplotlib")


def game_colors(games: Sequence[str]) -> dict[str, str]:
    return {g: _PALETTE[i % len(_PALETTE)] for i, g in enumerate(games)}


def embedding_scatter(xy: np.ndarray, action: Sequence[str], game: Sequence[str], color_by: str = "action",
                      title: str = "", size: float = 4, alpha: float = 0.6) -> hv.Overlay:
    """2-D projection ``xy (n, 2)`` coloured by action (or game), one marker per game.

    The counterpart of seed 000's Figures 1–2: are frames of different games interleaved within
    each action cluster? ``action`` and ``game`` are per-point strings.
    """
    _ensure_extensions()
    df = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "action": np.asarray(action, str), "game": np.asarray(game, str)})
    games = list(dict.fromkeys(df.game))
    cmap = ACTION_COLORS if color_by == "action" else game_colors(games)
    layers = []
    for i, g in enumerate(games):
        pts = hv.Points(df[df.game == g], ["x", "y"], ["action", "game"], label=g)
        layers.append(_style(
            pts, {"color": color_by, "cmap": cmap, "alpha": alpha},
            bokeh={"size": size, "tools": ["hover"], "marker": _BOKEH_MARKERS[i % len(_BOKEH_MARKERS)]},
            mpl={"s": size * 3, "marker": _MPL_MARKERS[i % len(_MPL_MARKERS)]},
        ))
    return _style(hv.Overlay(layers), {"title": title, "xaxis": None, "yaxis": None, "legend_position": "right"},
                  bokeh={"width": 560, "height": 460}, mpl={"fig_inches": (6.5, 5)})


def matrix_heatmap(matrix: pd.DataFrame, title: str = "", xlabel: str = "neighbours from",
                   ylabel: str = "frames of", vmin: float = 0.0, vmax: float = 1.0) -> hv.HeatMap:
    """Heatmap of a game × game table (e.g. the cross-game KNN matrix, seed 000 Fig. 3).

    Values are printed in the cells of the PNG and shown on hover in the browser.
    """
    _ensure_extensions()
    long = matrix.rename_axis(index="row", columns="col").stack().rename("value").reset_index()
    long["value"] = long["value"].round(2)
    heat = hv.HeatMap(long, ["col", "row"], "value")
    return _style(heat, {"cmap": "viridis", "clim": (vmin, vmax), "colorbar": True, "xlabel": xlabel,
                         "ylabel": ylabel, "title": title, "invert_yaxis": True, "xrotation": 45},
                  bokeh={"tools": ["hover"], "width": 540, "height": 460},
                  mpl={"fig_inches": (6.5, 5), "show_values": True})


def curves(df: pd.DataFrame, x: str, y: str, by: str, title: str = "", marks: Mapping[str, float] | None = None,
           error: str | None = None, xlabel: str | None = None, ylabel: str | None = None) -> hv.Overlay:
    """One line per ``by`` group of ``y`` against ``x`` (e.g. accuracy vs percentile per game).

    ``marks`` draws a dashed vertical line per group (the automatic percentile); ``error`` names
    a column of ± half-widths drawn as a band (few-shot mean ± std).
    """
    _ensure_extensions()
    groups = list(dict.fromkeys(df[by]))
    colors = game_colors(groups)
    layers = []
    for g in groups:
        part = df[df[by] == g].sort_values(x)
        layers.append(_style(hv.Curve(part, x, y, label=str(g)), {"color": colors[g]}))
        layers.append(_style(hv.Scatter(part, x, y), {"color": colors[g]}))
        if error:
            layers.append(_style(hv.Spread(part, x, [y, error]), {"color": colors[g], "alpha": 0.2}))
        if marks and g in marks and np.isfinite(marks[g]):
            layers.append(_style(hv.VLine(marks[g]), {"color": colors[g]}, bokeh={"line_dash": "dashed"},
                                 mpl={"linestyle": "dashed"}))
    return _style(hv.Overlay(layers), {"title": title, "xlabel": xlabel or x, "ylabel": ylabel or y,
                                        "legend_position": "right"},
                  bokeh={"width": 600, "height": 380}, mpl={"fig_inches": (7, 4)})


def grouped_bars(df: pd.DataFrame, group: str, category: str, value: str, title: str = "",
                 chance: float | None = None, ylabel: str | None = None) -> hv.Overlay:
    """Bars of ``value`` per ``group`` (e.g. game) and ``category`` (e.g. method), with a chance line."""
    _ensure_extensions()
    bars = _style(hv.Bars(df, [group, category], value), {"title": title, "ylabel": ylabel or value, "ylim": (0, 1),
                                                          "xrotation": 90},
                  bokeh={"width": 680, "height": 400, "tools": ["hover"], "color": category, "cmap": _PALETTE},
                  mpl={"fig_inches": (8, 4.5)})
    line = _style(hv.HLine(np.nan if chance is None else chance), {"color": "black"},
                  bokeh={"line_dash": "dotted"}, mpl={"linestyle": "dotted"})
    return bars * line


def save_figure(obj, path: Path, dpi: int = 110) -> Path:
    """Render ``obj`` to a PNG with the matplotlib backend, atomically (temp file + rename)."""
    _ensure_extensions()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".png")
    os.close(fd)
    try:
        hv.save(obj, tmp, backend="matplotlib", dpi=dpi, fmt="png")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
