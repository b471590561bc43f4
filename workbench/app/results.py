"""Accuracy page: per-game balanced accuracy of the study's models and linear probes (seed 000
Tables 1–2, "is the information present?") and the cross-game KNN matrix (Figure 3)."""

from __future__ import annotations

import panel as pn

from ..analysis.tables import accuracy_by_game
from ..methods.idm.report import accuracy_pivot
from ..viz.plots import grouped_bars, matrix_heatmap
from . import sources
from .layout import figure, fmt, ledger_pane, notice, table


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


def _knn(study: str, domain: str) -> pn.viewable.Viewable:
    knn = sources.study_table(study, domain, "knn_matrix", index_col=0)
    if knn is None:
        return notice(f"Study {study} has no cross-game KNN matrix for {domain}.")
    parts = [figure(matrix_heatmap(knn, title=f"{domain}: cross-game KNN accuracy (steer)"), "knn-matrix"),
             pn.pane.Markdown("Row *A*, column *B*: how often the steering label of a frame of *A* is predicted by "
                              "its nearest neighbours among frames of *B* in the joint embedding.")]
    benefit = sources.study_table(study, domain, "benefit_matrix", index_col=0)
    verdict = sources.study_json(study, domain, "knn_benefit")
    if benefit is not None:
        parts.append(figure(matrix_heatmap(benefit, title=f"{domain}: benefit of joint training (pair − single)",
                                           xlabel="trained with", ylabel="accuracy on", vmin=-0.5, vmax=0.5),
                            "benefit-matrix"))
    if verdict:
        parts.append(pn.pane.Markdown(
            f"Does the KNN matrix predict which pairs help? Spearman ρ = **{fmt(verdict.get('rho'), 2)}** "
            f"(p = {fmt(verdict.get('p_value'))}, {verdict.get('n_pairs')} ordered pairs)."))
    return pn.Column(*parts)


def accuracy_page(study: str, domain: str) -> pn.viewable.Viewable:
    accuracy = sources.study_table(study, domain, "accuracy")
    if accuracy is None:
        return notice(f"Study {study} has no accuracy table for {domain}.")
    heads = list(dict.fromkeys(accuracy["head"]))
    head = pn.widgets.Select(name="head", options=heads, value="steer" if "steer" in heads else heads[0], width=160)
    table1 = accuracy_pivot(accuracy)
    return pn.Column(
        ledger_pane(sources.study_ledger(study), domain), head, pn.panel(pn.bind(_bars, study, domain, head)),
        pn.pane.Markdown("**Balanced accuracy on held-out test frames** (seed 000 Tables 1–2)"),
        table(table1, "table-1"), _knn(study, domain), sizing_mode="stretch_width")
