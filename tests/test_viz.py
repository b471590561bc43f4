"""Plots render in both backends: PNG files for the report, Bokeh models for the dashboard."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import pytest

from workbench.viz.plots import curves, embedding_scatter, grouped_bars, matrix_heatmap, save_figure

RNG = np.random.default_rng(0)


@pytest.fixture(params=["scatter", "heatmap", "curves", "bars"])
def figure(request):
    if request.param == "scatter":
        return embedding_scatter(RNG.normal(size=(200, 2)), RNG.choice(["LEFT", "NEUTRAL", "RIGHT"], 200),
                                 RNG.choice(["Enduro", "CarRacing"], 200), title="t-SNE")
    if request.param == "heatmap":
        games = ["SpaceInvaders", "Asterix", "Hero"]
        return matrix_heatmap(pd.DataFrame(RNG.random((3, 3)), index=games, columns=games), title="KNN")
    if request.param == "curves":
        df = pd.DataFrame({"percentile": np.tile(np.arange(30, 100, 5), 2), "accuracy": RNG.random(28),
                           "game": np.repeat(["A", "B"], 14), "std": 0.05})
        return curves(df, "percentile", "accuracy", "game", marks={"A": 67.0, "B": 55.0}, error="std")
    df = pd.DataFrame({"game": ["A", "A", "B", "B"], "method": ["zero-shot", "few-shot"] * 2, "acc": [.5, .7, .6, .8]})
    return grouped_bars(df, "game", "method", "acc", chance=1 / 3)


def test_png_for_report(figure, tmp_path):
    path = save_figure(figure, tmp_path / "report" / "fig.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert [p.name for p in path.parent.iterdir()] == ["fig.png"]  # no temp file left


def test_bokeh_for_dashboard(figure):
    from bokeh.models import Model

    model = hv.render(figure, backend="bokeh")
    assert isinstance(model, Model)


def _bars(n_games: int = 7, methods=("single", "joint_v1", "joint_v2", "joint_v3", "few-shot k=10")):
    games = [f"game{i}" for i in range(n_games)]
    return pd.DataFrame([(g, m, 0.95) for g in games for m in methods], columns=["game", "method", "acc"])


def test_bar_legend_lies_outside_the_bars_in_the_png():
    """Before: the legend sat inside the axes over the tallest bars (or there was none in the PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = hv.render(grouped_bars(_bars(), "game", "method", "acc", chance=1 / 3), backend="matplotlib")
    FigureCanvasAgg(fig).draw()  # what save_figure draws
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    legend = ax.get_legend()
    assert legend is not None and [t.get_text() for t in legend.get_texts()] == [
        "single", "joint_v1", "joint_v2", "joint_v3", "few-shot k=10"]
    box = legend.get_window_extent(renderer)
    bars = [p.get_window_extent(renderer) for p in ax.patches]
    assert len(bars) == 35 and not any(box.overlaps(b) for b in bars)
    assert not box.overlaps(ax.get_window_extent(renderer))  # outside the axes, not only beside these bars
    axes_box = ax.get_window_extent(renderer)
    assert all(axes_box.x0 <= b.x0 and b.x1 <= axes_box.x1 for b in bars)  # no bar cut off at the edges
    assert axes_box.width > 0.6 * fig.bbox.width  # the axes, not the legend, take the width


@pytest.mark.parametrize("figure_kind", ["bars", "curves", "scatter", "heatmap"])
def test_bokeh_figures_fill_the_page_width_with_the_legend_outside(figure_kind):
    df = pd.DataFrame({"x": [1, 2, 1, 2], "y": [.1, .2, .3, .4], "g": ["a", "a", "b", "b"]})
    figure = {"bars": lambda: grouped_bars(_bars(), "game", "method", "acc", chance=1 / 3),
              "curves": lambda: curves(df, "x", "y", "g"),
              "scatter": lambda: embedding_scatter(RNG.normal(size=(20, 2)), ["LEFT"] * 20, ["A", "B"] * 10),
              "heatmap": lambda: matrix_heatmap(pd.DataFrame(RNG.random((2, 2)), index=["a", "b"], columns=["a", "b"]))}
    model = hv.render(figure[figure_kind](), backend="bokeh")
    assert model.sizing_mode == "stretch_width" and model.width_policy != "fixed"
    assert not [item for item in model.center if type(item).__name__ == "Legend"]  # no legend over the data
    if figure_kind != "heatmap":
        assert [item for item in model.right if type(item).__name__ == "Legend"]


def test_bars_keep_the_category_order_of_the_data():
    """Before: Bokeh ordered the bars within a group differently from the data and the legend."""
    model = hv.render(grouped_bars(_bars(2, ("b", "a")), "game", "method", "acc"), backend="bokeh")
    assert [tuple(f) for f in model.x_range.factors] == [("game0", "b"), ("game0", "a"), ("game1", "b"),
                                                          ("game1", "a")]


def test_the_calibration_sweep_is_one_figure_for_report_and_page_the_page_adds_its_cursor(tmp_path):
    from workbench.methods.idm.report import STUDY, sweep_figure
    from workbench.study.results import Scope

    percentiles = np.arange(10, 100, 10)
    sweep = pd.DataFrame({"percentile": np.tile(percentiles, 2), "balanced_accuracy": RNG.random(18),
                          "game": np.repeat(["Enduro", "CarRacing"], 9), "gate": "flow", "side": "model"})
    sweep = pd.concat([sweep, sweep.assign(side="truth")])  # only the IDM side is drawn
    sweep.to_csv(tmp_path / "percentile_sweep.csv", index=False)
    pd.DataFrame({"game": ["Enduro", "CarRacing"], "percentile": [60.0, 70.0], "gate": "flow",
                  "side": "model"}).to_csv(tmp_path / "percentile_auto.csv", index=False)
    scope = Scope(tmp_path, {})

    def vlines(fig):
        return sorted((float(el.data), el.opts.get("style", "bokeh").kwargs.get("color")) for el in fig
                      if isinstance(el, hv.VLine))

    (report,) = STUDY.result("percentile_sweep").figures(scope).values()
    assert [x for x, _ in vlines(report)] == [60.0, 70.0]  # the automatic percentiles, dashed
    page = sweep_figure(scope, cursor=45.0)
    assert (45.0, "black") in vlines(page) and len(vlines(page)) == 3 and "black: slider" in page.opts["title"]
    assert sum(isinstance(el, hv.Curve) for el in page) == 2  # one line per game
    assert sweep_figure(Scope(tmp_path / "none", {})) is None


def test_log_panels_keep_every_knob_value_inside_the_axes_without_warnings():
    """Before: HoloViews' aspect fixed a data aspect on the log axes, so matplotlib overrode the x
    limits with "Ignoring fixed x limits" (once a panel) and the knobs sat in a corner."""
    import warnings

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from workbench.viz.plots import error_vs_strength

    grids = {"sparse": [0.4, 0.06, 0.01], "noisy": [5e-3, 1e-4, 1e-6], "discrete": [16.0, 1024.0]}
    points = pd.DataFrame([{"panel": family, "knob": "k", "knob_value": v, "line": line, "error": e}
                           for family, values in grids.items() for v in values
                           for line, e in [("one-step", 0.1), ("rollout", 0.2)]])
    refs = pd.DataFrame([{"line": "one-step", "label": "free", "error": 0.05}])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = hv.render(error_vs_strength(points, refs), backend="matplotlib")
        FigureCanvasAgg(fig).draw()
    axes = [ax for ax in fig.axes if ax.get_title() in grids]
    assert len(axes) == 3
    for ax in axes:
        lo, hi = ax.get_xlim()
        values = grids[ax.get_title()]
        assert lo < min(values) and max(values) < hi  # every marker inside, none on the edge
        assert np.log10(hi / lo) < 1.5 * np.log10(max(values) / min(values))  # not lost in padding
