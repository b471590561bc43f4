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
