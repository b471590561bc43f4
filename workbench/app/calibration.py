"""Calibration page: zero-label percentile calibration live, the sweep, few-shot curves (seed 000 §5).

The percentile slider recomputes per-game accuracy with
:func:`~workbench.analysis.calibration.percentile_calibration` on the study's cached joint-model
embeddings (milliseconds; memoised per percentile for every visitor). The sweep curve and the
automatic per-game percentiles come from the study's saved tables.
"""

from __future__ import annotations

import panel as pn

from ..analysis.tables import calibration_by_game
from ..viz.plots import curves, grouped_bars
from . import sources
from .layout import figure, fmt, notice, table
from .state import ViewState


def _live(study: str, domain: str, percentile: float) -> pn.viewable.Viewable:
    calib = sources.live_calibration(study, domain, percentile)
    long = calibration_by_game(calib)
    bars = grouped_bars(long, "game", "method", "balanced_accuracy", chance=1 / 3, ylabel="balanced accuracy (steer)",
                        title=f"{domain}: zero labels, neutral threshold at the {percentile:g}th percentile")
    wide = long.pivot_table(index="method", columns="game", values="balanced_accuracy", sort=False)
    thresholds = calib[calib.gate == "flow"].drop_duplicates("game").set_index("game")["threshold"]
    note = ", ".join(f"{g} {fmt(t, 2)} px/frame" for g, t in thresholds.items())
    return pn.Column(figure(bars, "calibration-bars"), table(wide, "live-calibration"),
                     pn.pane.Markdown(f"Flow thresholds at p{percentile:g}: {note}.", name="thresholds"))


def _sweep(study: str, domain: str, percentile: float) -> pn.viewable.Viewable:
    sweep = sources.study_table(study, domain, "percentile_sweep")
    if sweep is None or not len(sweep):
        return notice(f"Study {study} has no percentile sweep for {domain}.")
    auto = sources.study_table(study, domain, "percentile_auto")
    flow = sweep[(sweep.gate == "flow") & (sweep.side == "model")]
    marks = {}
    if auto is not None:
        marks = auto[(auto.gate == "flow") & (auto.side == "model")].set_index("game")["percentile"].to_dict()
    fig = curves(flow, "percentile", "balanced_accuracy", "game", marks=marks, cursor=percentile,
                 ylabel="balanced accuracy (steer)",
                 title=f"{domain}: flow gate, IDM side vs percentile (dashed: automatic, black: slider)")
    auto_text = ", ".join(f"{g} {p:.0f}" for g, p in marks.items())
    return pn.Column(figure(fig, "percentile-sweep"),
                     pn.pane.Markdown(f"Automatic percentiles (Gaussian mixture on unlabeled log flow): {auto_text}."
                                      if marks else ""))


def _few_shot(study: str, domain: str) -> pn.viewable.Viewable:
    curve = sources.study_table(study, domain, "few_shot_curve")
    if curve is None or not len(curve):
        return notice(f"Study {study} has no few-shot curve for {domain}.")
    error = "std" if "std" in curve.columns else None
    return figure(curves(curve, "k", "balanced_accuracy", "game", error=error, xlabel="labels per class (k)",
                         ylabel="balanced accuracy (steer)", title=f"{domain}: few-shot boundary re-fit"), "few-shot")


def calibration_page(state: ViewState, study: str, domain: str) -> pn.viewable.Viewable:
    slider = pn.widgets.FloatSlider(name="neutral percentile", start=1, end=99, step=0.5, value=state.percentile,
                                    width=420)
    slider.param.watch(lambda event: setattr(state, "percentile", event.new), "value_throttled")
    percentile = slider.param.value_throttled
    gap = sources.study_table(study, domain, "calibration_gap", index_col=0)
    parts = [pn.pane.Markdown("Zero-label calibration: per game, frames whose motion is at or below the percentile of "
                              "≤ 1000 unlabeled frames are NEUTRAL, the rest LEFT/RIGHT."),
             slider, pn.panel(pn.bind(_live, study, domain, percentile)),
             pn.panel(pn.bind(_sweep, study, domain, percentile)), _few_shot(study, domain)]
    if gap is not None:
        parts += [pn.pane.Markdown("**The calibration gap** (steer; `*_closed`: share of ceiling − zero-shot "
                                   "recovered)"), table(gap, "calibration-gap")]
    return pn.Column(*parts, sizing_mode="stretch_width")
