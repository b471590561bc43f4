"""Interactive notebook views: ipywidgets controls around plotly ``FigureWidget`` figures.

* :func:`points_table` — the 2-D projection of an embedding dataset as a table of points (the
  same columns as the study's ``points-<method>.csv``), the input of the explorer;
* :class:`EmbeddingExplorer` — projection method, colour by action or game, game filter; hovering
  (or clicking) a point shows the frame pair behind it, read from the dataset store with
  :func:`workbench.data.thumbnails.frame_pair_png`;
* :class:`CalibrationExplorer` — a percentile slider for the zero-label flow-percentile
  calibration (seed 000 §5) against the sweep curves and the automatic percentile;
* :class:`ImageBrowser` — a dropdown over groups of saved pictures (PNG/GIF files), e.g. the
  transfer filmstrips or planning rollouts of each world model of a seed 002 run.

All are ``ipywidgets.VBox`` subclasses: display them as the last expression of a cell. They
compute nothing themselves — every number comes from :mod:`workbench.analysis` — and building
them never blocks, so notebooks holding them also run headless under papermill.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import ipywidgets as widgets
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import xarray as xr

from ..analysis.calibration import VARIANTS, percentile_calibration, percentile_sweep
from ..analysis.geometry import project
from ..data.thumbnails import frame_pair_png
from ..core.paths import cache_dir
from .plots import ACTION_COLORS, game_colors

_SYMBOLS = ["circle", "triangle-up", "square", "diamond", "triangle-down", "cross", "x", "star"]


def points_table(emb: xr.Dataset, method: str = "tsne", head: str = "steer", max_points: int = 2000,
                 seed: int = 0, cache: str | Path | None = None) -> pd.DataFrame:
    """Project up to ``max_points`` random labeled frames of an embedding dataset to 2-D.

    ``method`` is ``tsne`` or ``umap`` (:func:`workbench.analysis.geometry.project`, cached in
    ``cache``, default ``<cache>/projections``). Columns: ``x``, ``y``, ``game``, ``action``
    (the class name of the true ``head`` label), ``source_frame`` (frame t of the pair in the
    dataset store), ``split``, ``episode``, ``step``, and ``row`` (the point's position along
    ``emb``'s ``frame`` dimension, e.g. to pick its embedding vector).
    """
    labeled = np.flatnonzero(np.asarray(emb[head].values) >= 0)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(labeled, min(max_points, len(labeled)), replace=False))
    sub = emb.isel(frame=pick)
    xy = project(sub["embedding"].values, method=method, seed=seed, cache_dir=cache or cache_dir() / "projections")
    classes = np.asarray(emb[head].attrs["classes"])
    return pd.DataFrame({
        "x": xy[:, 0], "y": xy[:, 1], "game": sub["game"].values.astype(str),
        "action": classes[sub[head].values.astype(int)], "source_frame": sub["source_frame"].values,
        "split": sub["split"].values.astype(str), "episode": sub["episode"].values, "step": sub["step"].values,
        "row": pick,
    })


class EmbeddingExplorer(widgets.VBox):
    """Scatter of projected embedding points with the frame pair of the point under the mouse.

    ``points`` is one :func:`points_table` or a mapping ``method -> table`` (then a dropdown
    switches between them); ``store`` is the dataset store the embedding came from (its
    ``source_frame`` indices point into it). Colour is by action (seed 000's LEFT blue / NEUTRAL
    grey / RIGHT red) or by game; the marker shape is always the game.
    """

    def __init__(self, points: pd.DataFrame | Mapping[str, pd.DataFrame], store: str | Path,
                 thumb_size: int = 144, title: str = ""):
        self.points = {"projection": points} if isinstance(points, pd.DataFrame) else dict(points)
        self.store, self.thumb_size = Path(store), thumb_size
        self.all_games = list(dict.fromkeys(g for df in self.points.values() for g in df["game"].astype(str)))
        self.method = widgets.Dropdown(options=list(self.points), description="projection")
        self.color_by = widgets.ToggleButtons(options=["action", "game"], description="colour by")
        self.games = widgets.SelectMultiple(options=self.all_games, value=tuple(self.all_games), description="games",
                                            rows=min(len(self.all_games), 7))
        self.figure = go.FigureWidget(layout={
            "title": title or None, "width": 640, "height": 500, "hovermode": "closest", "template": "plotly_white",
            "xaxis": {"visible": False}, "yaxis": {"visible": False}, "margin": {"l": 10, "r": 10, "t": 40, "b": 10}})
        self.caption = widgets.HTML("hover over a point to see the frame pair (t, t+1) behind it")
        self.image = widgets.Image(format="png")
        for control in (self.method, self.color_by, self.games):
            control.observe(lambda _: self.redraw(), names="value")
        super().__init__([widgets.HBox([self.method, self.color_by, self.games]),
                          widgets.HBox([self.figure, widgets.VBox([self.caption, self.image])])])
        self.redraw()

    def redraw(self) -> None:
        """Rebuild the scatter for the current projection, colouring and game selection."""
        df = self.points[self.method.value]
        df = df[df["game"].astype(str).isin(self.games.value)]
        by = self.color_by.value
        colors = ACTION_COLORS if by == "action" else game_colors(self.all_games)
        symbol = {g: _SYMBOLS[i % len(_SYMBOLS)] for i, g in enumerate(self.all_games)}
        traces = []
        for group, part in df.groupby(by, sort=False):
            traces.append(go.Scattergl(
                x=part["x"], y=part["y"], mode="markers", name=str(group),
                marker={"color": colors.get(str(group), "#444444"), "size": 6, "opacity": 0.7,
                        "symbol": [symbol[g] for g in part["game"].astype(str)]},
                customdata=np.column_stack([part["source_frame"], part["game"].astype(str), part["action"]]),
                hovertemplate="%{customdata[1]} · %{customdata[2]}<br>frame %{customdata[0]}<extra></extra>"))
        self.figure.data = ()
        self.figure.add_traces(traces)
        for trace in self.figure.data:
            trace.on_hover(self._on_point)
            trace.on_click(self._on_point)
        if len(df):
            first = df.iloc[0]
            self.show(int(first["source_frame"]), f"{first['game']} · {first['action']}")

    def _on_point(self, trace, points, _state) -> None:
        if points.point_inds:
            frame, game, action = trace.customdata[points.point_inds[0]]
            self.show(int(frame), f"{game} · {action}")

    def show(self, frame: int, label: str = "") -> None:
        """Show the frame pair (``frame``, ``frame + 1``) of the store, with a caption."""
        self.image.value = frame_pair_png(self.store, frame, size=self.thumb_size)
        self.caption.value = f"<b>{label}</b> &nbsp; frames {frame} → {frame + 1}"


class CalibrationExplorer(widgets.VBox):
    """Zero-label calibration of a LEFT/NEUTRAL/RIGHT head with a percentile slider.

    Left: balanced accuracy against the neutral-threshold percentile per game
    (:func:`~workbench.analysis.calibration.percentile_sweep`), the automatic percentile of each
    game as a star, the slider's percentile as a dashed line. Right: the per-game table at the
    slider's percentile (:func:`~workbench.analysis.calibration.percentile_calibration`) next to
    the zero-shot IDM. ``variant`` picks the (gate, side) pair; ``flow_sign`` as in the analysis.
    """

    def __init__(self, emb: xr.Dataset, head: str = "steer", percentile: float = 67.0,
                 percentiles: Sequence[float] = range(30, 100, 5), flow_sign: Mapping[str, int] | None = None,
                 seed: int = 0):
        self.emb, self.head, self.flow_sign, self.seed = emb, head, flow_sign, seed
        self.sweep = percentile_sweep(emb, head, percentiles, flow_sign=flow_sign, seed=seed)
        self.auto = percentile_calibration(emb, head, "auto", flow_sign=flow_sign, seed=seed)
        self.variant = widgets.Dropdown(options=[(f"{g} gate · {s} side", (g, s)) for g, s in VARIANTS],
                                        value=VARIANTS[0], description="variant")
        self.percentile = widgets.FloatSlider(value=percentile, min=1, max=99, step=1, description="percentile",
                                              continuous_update=False)
        self.figure = go.FigureWidget(layout={
            "width": 560, "height": 380, "template": "plotly_white", "xaxis": {"title": "neutral-threshold percentile"},
            "yaxis": {"title": "balanced accuracy (test)", "range": [0, 1]}, "margin": {"t": 30}})
        self.table = widgets.HTML()
        self.variant.observe(lambda _: self.redraw(), names="value")
        self.percentile.observe(lambda _: self.update(), names="value")
        super().__init__([widgets.HBox([self.variant, self.percentile]), widgets.HBox([self.figure, self.table])])
        self.redraw()

    def _rows(self, table: pd.DataFrame) -> pd.DataFrame:
        gate, side = self.variant.value
        return table[(table["gate"] == gate) & (table["side"] == side)]

    def redraw(self) -> None:
        """Redraw the sweep curves and automatic percentiles of the selected variant."""
        sweep, auto = self._rows(self.sweep), self._rows(self.auto)
        colors = game_colors(list(dict.fromkeys(sweep["game"])))
        traces = []
        for game, part in sweep.groupby("game", sort=False):
            traces.append(go.Scatter(x=part["percentile"], y=part["balanced_accuracy"], mode="lines+markers",
                                     name=game, line={"color": colors[game]}))
        for _, row in auto.iterrows():
            traces.append(go.Scatter(x=[row["percentile"]], y=[row["balanced_accuracy"]], mode="markers",
                                     name=f"{row['game']} auto", showlegend=False,
                                     marker={"symbol": "star", "size": 14, "color": colors.get(row["game"])}))
        self.figure.data = ()
        self.figure.add_traces(traces)
        self.update()

    def update(self) -> None:
        """Recompute the table at the slider's percentile and move the marker line."""
        p = self.percentile.value
        current = self._rows(percentile_calibration(self.emb, self.head, p, flow_sign=self.flow_sign, seed=self.seed))
        auto = self._rows(self.auto).set_index("game")
        table = current.set_index("game")[["threshold", "balanced_accuracy", "zero_shot"]].rename(
            columns={"balanced_accuracy": f"p{p:g}"})
        table["auto percentile"] = auto["percentile"]
        table["auto"] = auto["balanced_accuracy"]
        self.table.value = table.to_html(float_format="{:.3f}".format, na_rep="–")
        self.figure.layout.shapes = [{"type": "line", "x0": p, "x1": p, "y0": 0, "y1": 1, "yref": "paper",
                                      "line": {"dash": "dash", "color": "black"}}]


class ImageBrowser(widgets.VBox):
    """Pick a group (e.g. a model) from a dropdown; its pictures are shown one under the other,
    each with its file name. ``images`` maps a group name to PNG/GIF files (GIFs animate);
    ``width`` caps the displayed width in pixels."""

    def __init__(self, images: Mapping[str, Sequence[str | Path]], description: str = "model",
                 width: int | None = None):
        self.images = {name: [Path(p) for p in paths] for name, paths in images.items()}
        if not self.images:
            raise ValueError("ImageBrowser: no pictures to browse")
        self.width = width
        self.group = widgets.Dropdown(options=list(self.images), description=description)
        self.pictures = widgets.VBox()
        self.group.observe(lambda _: self.redraw(), names="value")
        super().__init__([self.group, self.pictures])
        self.redraw()

    def redraw(self) -> None:
        """Show the selected group's pictures."""
        items = []
        for path in self.images[self.group.value]:
            image = widgets.Image(value=path.read_bytes(), format=path.suffix.lstrip(".").lower())
            if self.width:
                image.layout.max_width = f"{self.width}px"
            items += [widgets.HTML(f"<code>{path.name}</code>"), image]
        self.pictures.children = items
