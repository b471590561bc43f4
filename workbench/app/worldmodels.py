"""World models page: one seed 002 batch run (:mod:`workbench.methods.worldmodel.study`).

It opens with what the run trained, its claims ledger and headline numbers, then shows every
result of the run's registry (:data:`workbench.methods.worldmodel.report.STUDY`) as the report
does: capacity and Figure 4, Tables 1 and 2 with the transfer filmstrips, Tables S1/S2 with the
planning rollouts, the out-of-domain arm, health, probes and the latent samples (Figure S1).
Tables, texts and static figures come from :mod:`workbench.app.sources`, built once per version
of the run's files; nothing is recomputed per visitor.
"""

from __future__ import annotations

import panel as pn

from ..study.results import spec
from . import sources
from .layout import failure, notice
from .results import result_view, study_header
from .state import ViewState, run_picker


def run_view(run: str) -> pn.viewable.Viewable:
    """Everything the run saved, result by result; a notice where it saved nothing."""
    try:
        record = sources.study_record(run)
        study = spec(record["paper"])
        report = sources.study_folder(run) / "report.md"
        about = "\n\n".join([*study.about(record), *([f"Report: `{report}`."] if report.is_file() else [])])
        parts = [pn.pane.Markdown(about, name="wm-about"), *study_header(run)]
        parts += [result_view(run, result) for result in study.results]
    except Exception as exc:  # a broken or half-written run must not take the page down
        return failure(f"world-model run {run}", exc)
    return pn.Column(*parts, sizing_mode="stretch_width")


def worldmodels_page(state: ViewState) -> pn.viewable.Viewable:
    """The run selector (its own choice, kept in the URL as ``wm_run``) and the chosen run."""
    runs = sources.list_wm_runs()
    if not runs:
        return notice("No world-model runs yet. Make one with `workbench worldmodel study --size tiny` "
                      "(seed 002: latent action world models, controllers and planning).")
    pick = run_picker(state, "wm_run", runs, "world-model run")
    return pn.Column(pick, pn.panel(pn.bind(run_view, pick)), sizing_mode="stretch_width")
