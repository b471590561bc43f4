"""Study pages rendered from the registry of result specs (:mod:`workbench.study.results`): the
header every study page opens with (claims ledger and headline numbers), one result as the
report shows it (title, caption, computed text, table, figures, saved pictures), which seed 000
results each study page shows (:data:`PAGE_RESULTS`), and the Accuracy page: per-game balanced
accuracy of the study's models and linear probes (seed 000 Tables 1–2, "is the information
present?"), the cross-game KNN matrix (Figure 3), the proxy arm, the data and the leak audit."""

from __future__ import annotations

import re

import panel as pn

from ..analysis.tables import accuracy_by_game
from ..study.results import Result, headline_lines, spec
from ..viz.plots import grouped_bars, matrix_heatmap
from . import sources
from .layout import figure, ledger_pane, notice, table

#: The results of a seed 000 study's registry (:data:`workbench.methods.idm.report.RESULTS`) each
#: study page shows, in page order: every result is on one page.
PAGE_RESULTS = {"geometry": ("embeddings", "geometry"),
                "accuracy": ("accuracy", "probes", "knn", "proxy", "data", "leaks"),
                "calibration": ("calibration_gap", "percentile_sweep", "few_shot")}


def study_header(study: str, part: str | None = None) -> list[pn.viewable.Viewable]:
    """What a study page opens with: the claims ledger (of one domain with ``part``) and the
    headline numbers, from the data the report prints them from."""
    lines = headline_lines(sources.study_headline(study, part or ""))
    return [ledger_pane(sources.study_ledger(study), part),
            pn.pane.Markdown("### Headline numbers\n" + ("\n".join(lines) if lines else "None measured yet."),
                             name="headline")]


def _pictures(study: str, kind: str, label: str, caption: str) -> pn.viewable.Viewable:
    """A model selector and that model's saved pictures, read on the server."""
    groups = sources.wm_pictures(study, kind)
    if not groups:
        return notice(f"Study {study} saved no {kind} pictures.")
    pick = pn.widgets.Select(name=label, options=list(groups), width=320)

    def show(model: str) -> pn.viewable.Viewable:
        """The model's pictures side by side (PNG, then its animated GIF where saved)."""
        panes = [(pn.pane.GIF if name.endswith(".gif") else pn.pane.PNG)(
            sources.wm_picture(study, kind, name), alt_text=name, css_classes=[f"wb-{kind}"]) for name in groups[model]]
        return pn.FlexBox(*panes)

    return pn.Column(pn.pane.Markdown(caption), pick, pn.panel(pn.bind(show, pick)), sizing_mode="stretch_width")


def _figures(study: str, part: str, result: Result) -> list[pn.viewable.Viewable]:
    """The result's figures: a PNG each when ``static``; one plot, or a selector when there are several."""
    if result.static:
        return [pn.pane.PNG(png, alt_text=result.title, name=result.name, css_classes=[f"wb-{result.name}"])
                for png in sources.result_pngs(study, part, result.name).values()]
    figures = result.figures(sources.scope(study, part)) if result.figures else {}
    if len(figures) <= 1:
        return [figure(fig, result.name) for fig in figures.values()]
    pick = pn.widgets.Select(name=f"{result.title.split(' (')[0].lower()} of", options=list(figures), width=320)
    return [pick, pn.panel(pn.bind(lambda stem: figure(figures[stem], result.name), pick))]


def result_view(study: str, result: Result | str, part: str = "",
                figures: list[pn.viewable.Viewable] | None = None) -> pn.viewable.Viewable:
    """One result of the registry as the report shows it; a notice where the study saved nothing
    for it. ``figures`` replaces the registry's figures with interactive ones (the geometry
    page's point cloud, the sweep with the slider's cursor) under the same title and caption."""
    if isinstance(result, str):
        result = spec(sources.study_record(study)["paper"]).result(result)
    shown, text = sources.result_parts(study, part, result.name)
    parts = [table(shown, f"result-{result.name}", digits=int(re.sub(r"\D", "", result.floatfmt) or 3))
             ] if shown is not None else []
    parts += _figures(study, part, result) if figures is None else figures
    if result.pictures:
        parts.append(_pictures(study, *result.pictures))
    heading = pn.pane.Markdown(f"### {result.title}\n{result.caption}" + (f"\n\n{text}" if text else ""))
    if not parts and not text:
        return pn.Column(heading, notice(f"Study {study} has no {result.name} results."))
    return pn.Column(heading, *parts, sizing_mode="stretch_width")


def _bars(study: str, domain: str, head: str) -> pn.viewable.Viewable:
    accuracy = sources.study_table(study, domain, "accuracy")
    long = accuracy_by_game(accuracy, sources.study_table(study, domain, "probes"), head=head).dropna(
        subset=["balanced_accuracy"])
    chance = accuracy.loc[accuracy["head"] == head, "chance"].mean()
    bars = grouped_bars(long, "game", "method", "balanced_accuracy", chance=chance,
                        ylabel=f"balanced accuracy ({head})",
                        title=f"{domain}: models and linear probes per game ({head}; dotted: mean chance)")
    wide = long.pivot_table(index="method", columns="game", values="balanced_accuracy", sort=False)
    return pn.Column(figure(bars, "accuracy-bars"), table(wide, "accuracy-by-game"))


def _benefit(study: str, domain: str) -> list[pn.viewable.Viewable]:
    benefit = sources.study_table(study, domain, "benefit_matrix", index_col=0)
    if benefit is None:
        return []
    return [figure(matrix_heatmap(benefit, title=f"{domain}: benefit of joint training (pair − single)",
                                  xlabel="trained with", ylabel="accuracy on", vmin=-0.5, vmax=0.5), "benefit-matrix")]


def accuracy_page(study: str, domain: str) -> pn.viewable.Viewable:
    accuracy = sources.study_table(study, domain, "accuracy")
    if accuracy is None:
        return notice(f"Study {study} has no accuracy table for {domain}.")
    heads = list(dict.fromkeys(accuracy["head"]))
    head = pn.widgets.Select(name="head", options=heads, value="steer" if "steer" in heads else heads[0], width=160)
    shown = [result_view(study, name, domain) for name in PAGE_RESULTS["accuracy"]]
    return pn.Column(
        *study_header(study, domain), head, pn.panel(pn.bind(_bars, study, domain, head)),
        *shown[:3], *_benefit(study, domain), *shown[3:], sizing_mode="stretch_width")
