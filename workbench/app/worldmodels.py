"""World models page: one seed 002 batch run (:mod:`workbench.methods.worldmodel.study`).

Its headline numbers, the capacity curve, error vs regularisation strength (Figure 4) and the
report's tables (capacity, Tables 1 and 2, Tables S1/S2 left and right with navigation ATE / RPE,
the out-of-domain arm, health, probes), the latent samples (Figure S1), and its transfer
filmstrips and planning rollouts as pictures, one model at a time. Tables and figures are built by
:mod:`workbench.methods.worldmodel.report` (the run's ``report.md`` shows the same) from files that
:mod:`workbench.app.sources` reads once per version; nothing is recomputed per visitor.
"""

from __future__ import annotations

import logging

import panel as pn

from ..methods.worldmodel.report import PAPER_TITLE, capacity_figure, samples_figure
from . import sources
from .layout import figure, ledger_pane, notice, table
from .state import ViewState, choose

#: Table sections in page order: CSV name, heading, what the numbers are.
SECTIONS = (
    ("capacity", "Capacity (§5)", "Prediction error with IDM-inferred latents, teacher-forced one step and rolled "
     "out from the first frame (L1 in representation space; lower = more capacity). `zero` sees no latent, "
     "`action-*` the true actions."),
    ("leakage", "Future leakage (Table 1)", "One-step error at an artificial scene cut vs the same position without "
     "one; a ratio well above 1 means the latent cannot carry the whole next frame."),
    ("cycle", "Transfer and cycle consistency (Table 2)", "Latents inferred on clip A drive clip B, are re-inferred "
     "there and drive A again: rollout error on A, original vs after the cycle."),
    ("controllers", "Controllers (Tables S1/S2, left)", "Rollout error at the longest horizon driven by the IDM's "
     "latents, by controllers from the true actions, from another clip's actions (random-action baseline) and "
     "by zero latents."),
    ("planning", "CEM planning (Table S1, right)", "Goal reaching on held-out clips: mean |Σ planned − Σ true| "
     "motion (map units, degrees) and `l1_std`, their sum in standard deviations; lower is better."),
    ("navigation", "Navigation planning (Table S2, right)", "Appendix A's RECON protocol: CEM (N=120, one "
     "iteration) plans a straight line over H=8 steps to the goal frame; ATE and RPE of the planned against the "
     "recorded ViZDoom trajectory (map units; RPE rotation in degrees); `straight_fit` is the best straight line "
     "knowing the answer, a floor."),
    ("health", "Model health", "Is the latent used (own vs zero vs shuffled latents), how is it spread, does it "
     "leak, does it carry the true steering?"),
    ("probes", "Probes on latent actions", "Balanced accuracy of the true inputs decoded from the latents per game "
     "(linear and KNN probes; chance in the last row)."),
)
#: Picture sections: folder, selector label, what a picture shows (shown after the table named first).
PICTURES = {
    "cycle": ("filmstrips", "filmstrips of model", "Transfer filmstrips, rows: source A, target B, A predicted, "
              "B driven by A's latents, A after the cycle (PNG, then the same as an animation)."),
    "planning": ("planning", "planning rollouts of model", "Planning rollouts, rows: the real clip (its last frame "
                 "is the goal), the frames the chosen plan reaches, the goal."),
}
log = logging.getLogger(__name__)


def _pictures(run: str, kind: str, label: str, caption: str) -> pn.viewable.Viewable:
    """A model selector and that model's saved pictures, read on the server."""
    groups = sources.wm_pictures(run, kind)
    if not groups:
        return notice(f"Run {run} saved no {kind} pictures.")
    pick = pn.widgets.Select(name=label, options=list(groups), width=320)

    def show(model: str) -> pn.viewable.Viewable:
        """The model's pictures side by side (PNG, then its animated GIF where saved)."""
        panes = [(pn.pane.GIF if name.endswith(".gif") else pn.pane.PNG)(
            sources.wm_picture(run, kind, name), alt_text=name, css_classes=[f"wb-{kind}"]) for name in groups[model]]
        return pn.FlexBox(*panes)

    return pn.Column(pn.pane.Markdown(caption), pick, pn.panel(pn.bind(show, pick)), sizing_mode="stretch_width")


def _samples(run: str) -> pn.viewable.Viewable:
    """Figure S1: one model's inferred vs sampled latents, model chosen by a selector."""
    models = sources.wm_samples(run)
    if not models:
        return notice(f"Run {run} saved no latent samples.")
    pick = pn.widgets.Select(name="samples of model", options=models, width=320)

    def plot(model: str) -> pn.viewable.Viewable:
        """The model's saved 2-D projection of inferred and sampled latents."""
        return figure(samples_figure(sources.wm_csv(run, model, "samples"), model), "samples")

    return pn.Column(pn.pane.Markdown("### Sampling latent actions (Figure S1)\nInferred latents vs samples from the "
                                      "prior (noisy), the used codes (discrete) or SGLD on the energy (sparse)."),
                     pick, pn.panel(pn.bind(plot, pick)))


def _about(run: str, record: dict) -> str:
    """What the run trained, when, and where its report is (Markdown)."""
    cfg = record["config"]
    report = sources.study_folder(run) / "report.md"
    sweeps = "; ".join(f"{family} {values}" for family, values in cfg.get("sweeps", {}).items())
    return (f"Seed 002 (*{PAPER_TITLE}*) on `{cfg.get('dataset')}` at size "
            f"`{cfg.get('size')}`, seed {cfg.get('seed')}: sweeps {sweeps}; {cfg.get('steps')} world-model steps, "
            f"{cfg.get('controller_steps')} controller steps. Started {record.get('started')}, "
            + (f"finished {record['finished']}." if "finished" in record else "**running or interrupted**.")
            + (f" Report: `{report}`." if report.is_file() else ""))


def run_view(run: str) -> pn.viewable.Viewable:
    """Everything the run saved, section by section; a notice where it saved nothing."""
    try:
        parts = [pn.pane.Markdown(_about(run, sources.wm_record(run)), name="wm-about"),
                 ledger_pane(sources.study_ledger(run)),
                 pn.pane.Markdown(sources.wm_headlines(run), name="wm-headlines")]
        capacity = sources.wm_csv(run, "capacity")
        if capacity is not None:
            parts.append(figure(capacity_figure(capacity, run), "capacity-curve"))
            strength = sources.wm_strength_png(run)
            if strength is not None:
                parts += [pn.pane.Markdown("### Error vs regularisation strength (Figure 4)\nOne-step and rollout "
                                           "error against each regulariser's knob; dashed: the unregularised `free` "
                                           "and deterministic `zero` models."),
                          pn.pane.PNG(strength, alt_text="error vs regularisation strength", name="strength",
                                      css_classes=["wb-strength"])]
        for name, heading, caption in SECTIONS:
            shown = sources.wm_table(run, name)
            parts += [pn.pane.Markdown(f"### {heading}\n{caption}"), notice(f"Run {run} has no {name} table.")
                      if shown is None else table(shown, f"wm-{name}", digits=4)]
            if name in PICTURES:
                parts.append(_pictures(run, *PICTURES[name]))
            if name == "navigation":
                ood = sources.wm_ood(run)
                parts += [pn.pane.Markdown("### Out of domain\nModels trained on some games only, controlled and "
                                           "scored on held-out clips of the others, beside the in-domain models of "
                                           "the same knobs on the same clips."),
                          notice(f"Run {run} has no out-of-domain arm.") if ood is None
                          else table(ood, "wm-ood", digits=4)]
        parts.append(_samples(run))
    except Exception as exc:  # a broken or half-written run must not take the page down
        log.exception("world-model run %s failed", run)
        return pn.pane.Alert(f"Could not show world-model run {run}: {exc}", alert_type="danger")
    return pn.Column(*parts, sizing_mode="stretch_width")


def worldmodels_page(state: ViewState) -> pn.viewable.Viewable:
    """The run selector (its own choice, kept in the URL as ``wm_run``) and the chosen run."""
    runs = sources.list_wm_runs()
    if not runs:
        return notice("No world-model runs yet. Make one with `workbench worldmodel study --size tiny` "
                      "(seed 002: latent action world models, controllers and planning).")
    state.wm_run = choose(state.wm_run, runs)
    pick = pn.widgets.Select(name="world-model run", options=runs, value=state.wm_run, width=420)
    pick.param.watch(lambda event: setattr(state, "wm_run", event.new), "value")

    def follow_url(event) -> None:
        """Show the run a changed URL names (the browser re-sends its address once loaded); put
        the shown run back into the URL when it names none that exists."""
        if event.new in runs:
            pick.value = event.new
        else:
            state.wm_run = pick.value

    state.param.watch(follow_url, "wm_run")
    return pn.Column(pick, pn.panel(pn.bind(run_view, pick)), sizing_mode="stretch_width")
