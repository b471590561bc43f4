"""Calibration page: zero-label percentile calibration live, then the study's calibration results
(seed 000 §5) from the registry (:data:`workbench.app.results.PAGE_RESULTS`).

It opens with the study's claims ledger and headline numbers. The percentile slider recomputes
per-game accuracy with :func:`~workbench.analysis.calibration.percentile_calibration` on the
study's cached joint-model embeddings (milliseconds; memoised per percentile for every visitor)
and moves a cursor along the sweep curve; the calibration gap, the sweep with its automatic
per-game percentiles and the few-shot curve are shown as the report shows them.
"""

from __future__ import annotations

import panel as pn

from ..analysis.tables import calibration_by_game
from ..core.errors import WorkbenchError
from ..methods.idm.report import sweep_figure
from ..viz.plots import grouped_bars
from . import sources
from .layout import figure, fmt, notice, table
from .results import PAGE_RESULTS, result_view, study_header
from .state import ViewState


def _live(study: str, domain: str, percentile: float) -> pn.viewable.Viewable:
    """Per-game accuracy at ``percentile``; a notice where the joint model or its frames are gone
    (the study's saved results below still show)."""
    try:
        calib = sources.live_calibration(study, domain, percentile)
    except WorkbenchError as exc:  # the model library or the store moved on since the study ran
        return notice(f"Live calibration needs the study's joint v3 model and frames: {exc}")
    long = calibration_by_game(calib)
    bars = grouped_bars(long, "game", "method", "balanced_accuracy", chance=1 / 3, ylabel="balanced accuracy (steer)",
                        title=f"{domain}: zero labels, neutral threshold at the {percentile:g}th percentile")
    wide = long.pivot_table(index="method", columns="game", values="balanced_accuracy", sort=False)
    thresholds = calib[calib.gate == "flow"].drop_duplicates("game").set_index("game")["threshold"]
    note = ", ".join(f"{g} {fmt(t, 2)} px/frame" for g, t in thresholds.items())
    return pn.Column(figure(bars, "calibration-bars"), table(wide, "live-calibration"),
                     pn.pane.Markdown(f"Flow thresholds at p{percentile:g}: {note}.", name="thresholds"))


def _sweep(study: str, domain: str, percentile: float) -> pn.viewable.Viewable:
    """The registry's sweep figure with a cursor at the slider's percentile."""
    return figure(sweep_figure(sources.scope(study, domain), cursor=percentile), "percentile-sweep")


def calibration_page(state: ViewState, study: str, domain: str) -> pn.viewable.Viewable:
    slider = pn.widgets.FloatSlider(name="neutral percentile", start=1, end=99, step=0.5, value=state.percentile,
                                    width=420)
    slider.param.watch(lambda event: setattr(state, "percentile", event.new), "value_throttled")
    percentile = slider.param.value_throttled
    live = [pn.pane.Markdown("### Zero-label calibration, live\nPer game, frames whose motion is at or below the "
                             "percentile of ≤ 1000 unlabeled frames are NEUTRAL, the rest LEFT/RIGHT."),
            slider, pn.panel(pn.bind(_live, study, domain, percentile))]
    sweep = None if sources.study_table(study, domain, "percentile_sweep") is None else [
        pn.panel(pn.bind(_sweep, study, domain, percentile))]
    results = [result_view(study, name, domain, figures=sweep if name == "percentile_sweep" else None)
               for name in PAGE_RESULTS["calibration"]]
    return pn.Column(*study_header(study, domain), *live, *results, sizing_mode="stretch_width")
