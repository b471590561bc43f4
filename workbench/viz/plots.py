"""Plotting functions shared by the study report, the notebooks and the dashboard.

Each function takes arrays/DataFrames produced by :mod:`workbench.analysis` and returns a
HoloViews object; the report renders it to PNG with the matplotlib backend
(:func:`save_figure`), the dashboard and notebooks show the same object with Bokeh. Nothing
here computes an analysis.

Sizing: in Bokeh a figure fills the width of its page (``responsive``) at a fixed height; a PNG is
:data:`REPORT_INCHES` wide. Legends sit outside the axes in both, so they never hide data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping, Sequence

import holoviews as hv
import numpy as np
import pandas as pd

from ..core.paths import atomic_write

#: Seed 000's colours: LEFT blue, RIGHT red, NEUTRAL grey.
ACTION_COLORS = {"LEFT": "#1f77b4", "NEUTRAL": "#9e9e9e", "RIGHT": "#d62728", "UNLABELED": "#dddddd"}
_MPL_MARKERS = ["o", "^", "s", "D", "v", "P", "X", "*"]
_BOKEH_MARKERS = ["circle", "triangle", "square", "diamond", "inverted_triangle", "plus", "x", "star"]
#: Bokeh tools of the embedding figures: hover names a point, box/lasso select picks frames.
SCATTER_TOOLS = ["hover", "box_select", "lasso_select"]
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
#: Width of a report PNG (inches; 990 px at :func:`save_figure`'s 110 dpi), legend included.
REPORT_INCHES = 9
#: A legend outside the axes, to their right (both backends).
LEGEND = {"legend_position": "right"}


def _page(height: int, min_width: int = 360) -> dict:
    """Bokeh sizing: as wide as the page (``responsive``), ``height`` px tall."""
    return {"responsive": True, "height": height, "min_width": min_width}


def _report(aspect: float, width: float = REPORT_INCHES) -> dict:
    """Matplotlib sizing: ``width`` inches wide, axes ``aspect`` times wider than tall."""
    return {"fig_inches": width, "aspect": aspect}


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


def category_colors(color_by: str, games: Sequence[str]) -> dict[str, str]:
    """Colour of each category when points are coloured by ``"action"`` or by ``"game"``."""
    return dict(ACTION_COLORS) if color_by == "action" else game_colors(games)


def _points_frame(xy: np.ndarray, action: Sequence[str], game: Sequence[str],
                  hover: Mapping[str, Sequence] | None) -> pd.DataFrame:
    xy = np.asarray(xy)
    df = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "action": np.asarray(action, str), "game": np.asarray(game, str)})
    for name, values in (hover or {}).items():
        df[name] = np.asarray(values)
    return df


def embedding_scatter(xy: np.ndarray, action: Sequence[str], game: Sequence[str], color_by: str = "action",
                      title: str = "", size: float = 4, alpha: float = 0.6,
                      hover: Mapping[str, Sequence] | None = None, select: Callable | None = None) -> hv.Overlay:
    """2-D projection ``xy (n, 2)`` coloured by action (or game), one marker per game.

    The counterpart of seed 000's Figures 1–2: are frames of different games interleaved within
    each action cluster? ``action`` and ``game`` are per-point strings; ``hover`` adds per-point
    columns to the Bokeh tooltip (e.g. ``{"source_frame": ...}`` so a point names its frame);
    ``select`` is called on box/lasso selections in Bokeh (see :func:`link_selection`).
    """
    _ensure_extensions()
    df = _points_frame(xy, action, game, hover)
    games = list(dict.fromkeys(df.game))
    cmap = category_colors(color_by, games)
    vdims = ["action", "game", *(hover or {})]
    layers = []
    for i, g in enumerate(games):
        pts = hv.Points(df[df.game == g], ["x", "y"], vdims, label=g)
        layers.append(_style(
            pts, {"color": color_by, "cmap": cmap, "alpha": alpha},
            bokeh={"size": size, "tools": SCATTER_TOOLS, "marker": _BOKEH_MARKERS[i % len(_BOKEH_MARKERS)]},
            mpl={"s": size * 3, "marker": _MPL_MARKERS[i % len(_MPL_MARKERS)]},
        ))
    markers = {g: _BOKEH_MARKERS[i % len(_BOKEH_MARKERS)] for i, g in enumerate(games)}
    if color_by == "game":
        entries = [(g, cmap[g], markers[g]) for g in games]
    else:
        present = set(df[color_by])
        entries = [(c, color, "circle") for c, color in cmap.items() if c in present]
        entries += [(g, "#616161", markers[g]) for g in games]
    figure = _style(hv.Overlay(layers), {"title": title, "xaxis": None, "yaxis": None, **LEGEND},
                    bokeh={**_page(460), "hooks": [_bokeh_legend(entries)]},
                    mpl={**_report(1.5, 7.5), "hooks": [_mpl_legend(entries)]})
    if select is not None:
        link_selection(figure, select)
    return figure


def link_selection(source, select: Callable) -> None:
    """Call ``select(bounds=(x0, y0, x1, y1))`` on a box selection and ``select(polygon=(m, 2)
    array)`` on a lasso selection of ``source``'s points in a Bokeh plot (server or notebook);
    :func:`workbench.analysis.selection.points_in_region` turns either into row indices."""
    box, lasso = hv.streams.BoundsXY(source=source), hv.streams.Lasso(source=source)
    box.add_subscriber(lambda bounds: select(bounds=bounds))
    lasso.add_subscriber(lambda geometry: select(polygon=geometry))


def _bokeh_legend(entries: Sequence[tuple[str, str, str]]):
    """A Bokeh hook giving :func:`embedding_scatter` the legend its PNG has, from
    ``(label, colour, marker)`` entries: the colours' categories, then one marker per game.

    Bokeh cannot group a colour-mapped legend across the per-game layers (each has its own data
    source), so the hook replaces those entries with legend-only glyphs.
    """
    def hook(plot, element):
        from bokeh.models import LegendItem

        fig = plot.state
        if fig.legend:
            fig.legend[0].items = [
                LegendItem(label=label, renderers=[fig.scatter([np.nan], [np.nan], color=color, marker=marker, size=8)])
                for label, color, marker in entries]

    return hook


def _mpl_legend(entries: Sequence[tuple[str, str, str]]):
    """The matplotlib counterpart of :func:`_bokeh_legend`: one legend of ``(label, colour, Bokeh
    marker)`` entries outside the axes, replacing the colour legend HoloViews draws inside them."""
    markers = dict(zip(_BOKEH_MARKERS, _MPL_MARKERS))

    def hook(plot, element):
        from matplotlib.legend import Legend
        from matplotlib.lines import Line2D

        ax = plot.handles["axis"]
        for legend in ax.findobj(Legend):
            legend.remove()
        handles = [Line2D([], [], linestyle="", marker=markers.get(marker, "o"), markersize=7, color=color,
                          label=label) for label, color, marker in entries]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False)

    return hook


def _fit_bars(plot, element):
    """Matplotlib hook: x limits around every bar (HoloViews' grouped bars overrun the edges)."""
    ax = plot.handles["axis"]
    if not ax.patches:
        return
    lo = min(p.get_x() for p in ax.patches)
    hi = max(p.get_x() + p.get_width() for p in ax.patches)
    ax.set_xlim(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo))


def _log_panel(aspect: float):
    """Matplotlib hook for a log-x panel: axes ``aspect`` times wider than tall (HoloViews' ``aspect``
    is in data units on log axes, where matplotlib then overrides the x limits, with a warning),
    ticks only at the plotted knob values."""
    def hook(plot, element):
        from matplotlib.ticker import FuncFormatter, NullFormatter

        ax = plot.handles["axis"]
        ax.set_aspect("auto")  # drop the data aspect: the box aspect below gives the shape
        ax.set_box_aspect(1 / aspect)
        lo, hi = ax.get_xlim()  # the knob's range: pad it by 8 % of its decades, so end markers show
        pad = max((hi / lo) ** 0.08, 1.2)
        ax.set_xlim(lo / pad, hi * pad)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())

    return hook


def embedding_density(xy: np.ndarray, action: Sequence[str], game: Sequence[str], color_by: str = "action",
                      title: str = "", hover: Mapping[str, Sequence] | None = None, select: Callable | None = None):
    """:func:`embedding_scatter` for large point sets (Bokeh only): a datashaded image.

    Glyph-per-point plots become slow to ship and draw past some 20k points
    (:data:`DATASHADE_ABOVE`); here datashader aggregates the points per pixel on the server
    (colour = the mix of categories in the pixel), ``dynspread`` keeps isolated points visible,
    and the image is re-aggregated on zoom. Hovering a pixel shows the columns of one point drawn
    into it (datashader's ``selector``), so every coloured pixel still names a frame; HoloViews
    draws the legend of the categories.
    """
    import datashader as ds
    from holoviews.operation.datashader import datashade, dynspread

    _ensure_extensions()
    df = _points_frame(xy, action, game, hover)
    cmap = category_colors(color_by, list(dict.fromkeys(df.game)))
    present = [c for c in cmap if c in set(df[color_by])]
    df[color_by] = pd.Categorical(df[color_by], categories=present)
    points = hv.Points(df, ["x", "y"], [c for c in df.columns if c not in ("x", "y")])
    if select is not None:
        link_selection(points, select)  # the datashaded image's plot reports selections of its input
    shaded = dynspread(datashade(points, aggregator=ds.count_cat(color_by), color_key=cmap,
                                 selector=ds.first("x")), threshold=0.6, max_px=3)
    return shaded.opts(tools=SCATTER_TOOLS, title=title, xaxis=None, yaxis=None, **LEGEND, **_page(460))


#: Point count above which :func:`embedding_view` draws a datashaded image.
DATASHADE_ABOVE = 20_000


def embedding_view(xy: np.ndarray, action: Sequence[str], game: Sequence[str], color_by: str = "action",
                   title: str = "", hover: Mapping[str, Sequence] | None = None, select: Callable | None = None):
    """The interactive embedding figure: :func:`embedding_scatter` up to :data:`DATASHADE_ABOVE`
    points, :func:`embedding_density` above; ``select`` as in :func:`link_selection`."""
    plot = embedding_density if len(xy) > DATASHADE_ABOVE else embedding_scatter
    return plot(xy, action, game, color_by=color_by, title=title, hover=hover, select=select)

def matrix_heatmap(matrix: pd.DataFrame, title: str = "", xlabel: str = "neighbours from",
                   ylabel: str = "frames of", vmin: float = 0.0, vmax: float = 1.0) -> hv.HeatMap:
    """Heatmap of a game × game table (e.g. the cross-game KNN matrix, seed 000 Fig. 3).

    Values are printed in the cells of the PNG and shown on hover in the browser.
    """
    _ensure_extensions()
    # Cells sit at integer positions with named ticks, the first row on top: with categorical axes
    # matplotlib HeatMaps put the values of unsorted row names against the wrong labels.
    rows, cols = [str(r) for r in matrix.index], [str(c) for c in matrix.columns]
    long = matrix.set_axis(rows).set_axis(cols, axis=1).rename_axis(index="row", columns="col").stack(
        future_stack=True).rename("value").reset_index()
    long["value"] = long["value"].round(2)
    long["x"] = long["col"].map({c: i for i, c in enumerate(cols)})
    long["y"] = long["row"].map({r: len(rows) - 1 - i for i, r in enumerate(rows)})
    heat = hv.HeatMap(long, ["x", "y"], ["value", "row", "col"])
    return _style(heat, {"cmap": "viridis", "clim": (vmin, vmax), "colorbar": True, "xlabel": xlabel,
                         "ylabel": ylabel, "title": title, "xrotation": 45, "xticks": list(enumerate(cols)),
                         "yticks": [(len(rows) - 1 - i, r) for i, r in enumerate(rows)]},
                  bokeh={"tools": ["hover"], **_page(460)},
                  mpl={"fig_inches": (6.5, 5), "show_values": True})


def curves(df: pd.DataFrame, x: str, y: str, by: str, title: str = "", marks: Mapping[str, float] | None = None,
           error: str | None = None, xlabel: str | None = None, ylabel: str | None = None,
           cursor: float | None = None) -> hv.Overlay:
    """One line per ``by`` group of ``y`` against ``x`` (e.g. accuracy vs percentile per game).

    ``marks`` draws a dashed vertical line per group (the automatic percentile); ``error`` names
    a column of ± half-widths drawn as a band (few-shot mean ± std); ``cursor`` a solid black
    vertical line (e.g. the percentile a slider is at).
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
    if cursor is not None:
        layers.append(_style(hv.VLine(cursor), {"color": "black"}))
    return _style(hv.Overlay(layers), {"title": title, "xlabel": xlabel or x, "ylabel": ylabel or y, **LEGEND},
                  bokeh=_page(380), mpl=_report(2))


def error_vs_strength(points: pd.DataFrame, references: pd.DataFrame | None = None, title: str = "",
                      ylabel: str = "error") -> hv.Layout:
    """Prediction error against regularisation strength, one panel per regulariser (seed 002,
    Figure 4), the knob on a log axis.

    ``points``: columns ``panel`` (family), ``knob`` (its name, the x label), ``knob_value``,
    ``line`` (e.g. one-step, rollout) and ``error``. ``references``: columns ``line``, ``label``
    (e.g. ``free`` and ``zero``, the unconstrained and deterministic endpoints) and ``error``,
    drawn as dashed horizontal lines in every panel.
    """
    _ensure_extensions()
    lines = list(dict.fromkeys(points["line"]))
    refs = references if references is not None else pd.DataFrame(columns=["line", "label", "error"])
    colors = game_colors(lines)
    dashes = ["dashed", "dotted", "dashdot"]
    ref_labels = list(dict.fromkeys(refs["label"]))
    panels = []
    groups = list(points.groupby("panel", sort=False))
    for i, (panel, part) in enumerate(groups):
        lo, hi = float(part["knob_value"].min()), float(part["knob_value"].max())
        lo, hi = (lo / 2, hi * 2) if lo == hi else (lo, hi)
        layers = []
        for line in lines:
            sub = part[part["line"] == line].sort_values("knob_value")
            if len(sub):
                layers += [_style(hv.Curve(sub, "knob_value", "error", label=str(line)), {"color": colors[line]}),
                           _style(hv.Scatter(sub, "knob_value", "error"), {"color": colors[line]})]
        for ref in refs.itertuples(index=False):
            dash = dashes[ref_labels.index(ref.label) % len(dashes)]
            layers.append(_style(hv.Curve([(lo, ref.error), (hi, ref.error)], "knob_value", "error",
                                          label=f"{ref.label} · {ref.line}"),
                                 {"color": colors.get(ref.line, "black")}, bokeh={"line_dash": dash},
                                 mpl={"linestyle": dash}))
        legend = LEGEND if i == len(groups) - 1 else {"show_legend": False}  # the lines are the same in every panel
        panels.append(_style(hv.Overlay(layers), {"title": f"{panel}", "xlabel": str(part["knob"].iloc[0]),
                                                  "ylabel": ylabel, "logx": True,
                                                  "xticks": sorted(set(part["knob_value"].astype(float))), **legend},
                             bokeh=_page(320, 260), mpl={**_report(1.3, 3.4), "hooks": [_log_panel(1.3)]}))
    layout = hv.Layout(panels).cols(3)
    layout = layout.opts(shared_axes=False, backend="bokeh").opts(shared_axes=False, sublabel_format="",
                                                                  backend="matplotlib")
    return layout.opts(title=title, backend="matplotlib") if title else layout


def grouped_bars(df: pd.DataFrame, group: str, category: str, value: str, title: str = "",
                 chance: float | None = None, ylabel: str | None = None) -> hv.Overlay:
    """Bars of ``value`` per ``group`` (e.g. game) and ``category`` (e.g. method), with a chance line.

    Groups and categories keep the order of ``df``; each category has one colour, named in a legend
    outside the axes (the browser also labels every bar).
    """
    _ensure_extensions()
    categories = list(dict.fromkeys(df[category]))
    colors = game_colors(categories)
    bars = hv.Bars(df, [group, hv.Dimension(category, values=categories)], value)
    bars = _style(bars, {"ylabel": ylabel or value, "ylim": (0, 1), "show_legend": True},
                  bokeh={"tools": ["hover"], "color": category, "cmap": colors, "xrotation": 90},
                  mpl={"multi_level": False, "color": hv.dim(category).categorize(colors), "padding": 0,
                       "xrotation": 30, **LEGEND})
    line = _style(hv.HLine(np.nan if chance is None else chance), {"color": "black"},
                  bokeh={"line_dash": "dotted"}, mpl={"linestyle": "dotted"})
    return _style(bars * line, {"title": title, **LEGEND}, bokeh=_page(400), mpl={**_report(2.6), "hooks": [_fit_bars]})



def frame_flow(frame: np.ndarray, flow_grid: np.ndarray, show: str = "arrows", title: str = "") -> hv.Overlay:
    """One frame ``(y, x, rgb)`` with its optical flow to the next frame.

    ``flow_grid (gy, gx, 2)`` holds the mean (dx, dy) in px/frame of each grid cell (image
    coordinates: dy points down). ``show="arrows"`` draws one arrow per cell (lengths rescaled to
    the cell spacing, px/frame on hover); ``"magnitude"`` a translucent heatmap of |flow| per cell.
    """
    _ensure_extensions()
    if show not in ("arrows", "magnitude"):
        raise ValueError(f"show must be 'arrows' or 'magnitude', got {show!r}")
    h, w = frame.shape[:2]
    gy, gx = flow_grid.shape[:2]
    image = _style(hv.RGB(np.asarray(frame), bounds=(0, 0, w, h)), {"xaxis": None, "yaxis": None})
    dx, dy = np.asarray(flow_grid[..., 0], float), np.asarray(flow_grid[..., 1], float)
    if show == "magnitude":
        overlay = _style(hv.Image(np.hypot(dx, dy), bounds=(0, 0, w, h), vdims="flow px/frame"),
                         {"cmap": "magma", "alpha": 0.55, "colorbar": True}, bokeh={"tools": ["hover"]})
    else:
        cx, cy = np.meshgrid((np.arange(gx) + 0.5) * w / gx, h - (np.arange(gy) + 0.5) * h / gy)
        field = pd.DataFrame({"x": cx.ravel(), "y": cy.ravel(), "angle": np.arctan2(-dy, dx).ravel(),
                              "px_per_frame": np.hypot(dx, dy).ravel()})
        overlay = _style(hv.VectorField(field, ["x", "y"], ["angle", "px_per_frame"]),
                         {"color": "#ffeb3b", "magnitude": "px_per_frame"},
                         bokeh={"line_width": 2.5, "tools": ["hover"]}, mpl={"linewidth": 2})
    return _style(image * overlay, {"title": title}, bokeh={"width": 420, "height": int(420 * h / w)},
                  mpl={"fig_inches": (4, 4 * h / w)})

def save_figure(obj, path: Path, dpi: int = 110) -> Path:
    """Render ``obj`` to a PNG with the matplotlib backend, atomically (temp file + rename)."""
    _ensure_extensions()
    return atomic_write(path, lambda tmp: hv.save(obj, tmp, backend="matplotlib", dpi=dpi, fmt="png"))



def _agent_panels(df: pd.DataFrame, sort: str, layers: Callable[[pd.DataFrame, str, str], list], title: str,
                  common: Mapping):
    """One overlay per game (stacked in one column when several) of ``layers(rows, agent, colour)``
    for each agent's rows sorted by ``sort``; ``common`` holds the axis labels and limits."""
    def draw(rows: pd.DataFrame, game: str) -> hv.Overlay:
        agents = list(dict.fromkeys(rows["agent"]))
        colors = game_colors(agents)
        overlay = hv.Overlay([layer for agent in agents for layer in
                              layers(rows[rows["agent"] == agent].sort_values(sort), agent, colors[agent])])
        return _style(overlay, {"title": title or str(game), **LEGEND, **common}, bokeh=_page(340, 300),
                      mpl=_report(1.6, 4.5))

    games = list(dict.fromkeys(df["game"]))
    if len(games) == 1:
        return draw(df, games[0])
    return hv.Layout([draw(df[df["game"] == g], g) for g in games]).cols(1)  # legends right of each panel


def kaplan_meier_curves(curves: pd.DataFrame, title: str = ""):
    """Kaplan–Meier survival step curves, one per agent, from
    :func:`workbench.analysis.levels.survival_curves` (one panel per game), each drawn to the
    episode cap; filled crosses mark the times where episodes were censored (survived to there)."""
    _ensure_extensions()

    def layers(part: pd.DataFrame, agent: str, color: str) -> list:
        cap = float(part["cap"].iloc[0])
        line = pd.concat([part[part["time"] <= cap], part.tail(1).assign(time=cap)])[["time", "survival"]]
        marks = part[part["censored"] > 0]
        return [_style(hv.Curve(line, "time", "survival", label=str(agent)),
                       {"color": color, "interpolation": "steps-post"}),
                _style(hv.Scatter(marks, "time", ["survival", "censored"]), {"color": color},
                       bokeh={"marker": "cross", "size": 9, "tools": ["hover"]}, mpl={"marker": "P", "s": 40})]

    return _agent_panels(curves, "time", layers, title,
                         {"xlabel": "steps", "ylabel": "survival S(t)", "ylim": (0, 1.05)})


def magnitude_functions(curves: pd.DataFrame, title: str = ""):
    """Mean magnitude functions M(t) per agent from :func:`workbench.analysis.levels.magnitude_curves`
    (one panel per game) against t / t_ref, the area under each (the Curiosity score E) shaded and
    named in the legend."""
    _ensure_extensions()

    def layers(part: pd.DataFrame, agent: str, color: str) -> list:
        label = f"{agent} (E = {part['curiosity_auc'].iloc[0]:.1f})"
        return [_style(hv.Area(part, "t_over_ref", "magnitude"), {"color": color, "alpha": 0.12}),
                _style(hv.Curve(part, "t_over_ref", "magnitude", label=label), {"color": color})]

    return _agent_panels(curves, "t_over_ref", layers, title, {"xlabel": "scale t / t_ref", "ylabel": "magnitude |tX|"})
