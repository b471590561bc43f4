"""The results of a seed 000 study (:mod:`workbench.methods.idm.study`), declared once per domain
(:data:`STUDY`, see :mod:`workbench.study.results`), from which the report, the dashboard and
notebook 06 render.

The report mirrors seed 000: Table 1–2 (single vs joint v1/v2/v3 vs calibrated ceiling),
Figures 1–2 (t-SNE/UMAP coloured by action, one marker per game), Figure 3 (cross-game KNN
matrix) and §5 (the calibration gap and what 50 labels / 20 % labels / zero labels recover),
plus what the paper could not measure: flow-proxy vs true-label agreement, probes, geometry
scores, and whether the KNN matrix predicts the benefit of joint training. Figures come from
:mod:`workbench.viz.plots`, the functions the dashboard uses.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ...analysis.calibration import NO_GAP
from ...analysis.leaks import audit_verdict
from ...viz.plots import curves, embedding_scatter, grouped_bars, matrix_heatmap
from ...study.results import Result, Scope, StudySpec, number, ran

#: Seed 000, as its paper is titled.
PAPER_TITLE = "Cross-Game Semantic Alignment of Latent Action Representations in World Models"
TITLES = {"racing": "Racing", "atari": "Atari", "first_person": "First-person"}
_METHOD_LABELS = {"zero_shot": "joint v3 (zero-shot)", "few_shot": "50 labels/class", "ceiling": "20 % labels (ceiling)",
                  "flow_percentile": "0 labels: flow p67", "flow_auto": "0 labels: flow auto-percentile",
                  "model_percentile": "0 labels: IDM-score p67"}


def accuracy_pivot(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Table 1/2 layout: rows = models (single, joint v1-v3, ceiling), columns = game / head."""
    acc = accuracy.copy()
    acc["row"] = acc["model"].str.replace(r"^(single|ceiling):.*", r"\1", regex=True)
    acc = acc[~acc.model.str.startswith(("pair:", "proxy:"))]
    table = acc.pivot_table(index="row", columns=["game", "head"], values="balanced_accuracy", aggfunc="first")
    chance = acc.groupby(["game", "head"])["chance"].first()
    table.loc["chance"] = chance
    order = [r for r in ("chance", "single", "joint_v1", "joint_v2", "joint_v3", "ceiling") if r in table.index]
    table = table.loc[order]
    table.columns = [f"{g} · {h}" for g, h in table.columns]
    table.index.name = "model"
    return table


def proxy_table(arm: pd.DataFrame, balance: pd.DataFrame) -> pd.DataFrame:
    """The proxy arm as one table per game: the proxy's class shares and agreement
    (``proxy_balance.csv``, indexed by game), then per model kind its balanced accuracy against
    the true labels when trained on true labels and on the proxy (``proxy_arm.csv``)."""
    wide = arm.pivot_table(index="game", columns=["model", "trained_on"], values="balanced_accuracy", aggfunc="first")
    order = [(m, t) for m in ("single", "joint_v1", "joint_v2", "joint_v3") for t in ("true", "proxy")
             if (m, t) in wide.columns]
    wide = wide[order]
    wide.columns = [f"{m} · {t} labels" for m, t in order]
    table = balance.join(wide, how="outer")
    table.index.name = "game"
    return table


def single_frame_columns(folder: Path) -> pd.DataFrame | None:
    """Per (game, head) of a study domain: what one frame alone predicts (whole frame t+1, and
    the best single-frame region) and the motion signal, from its ``leak_audit.csv``."""
    audit = Scope(Path(folder), {}).csv("leak_audit.csv")
    if audit is None or not len(audit):
        return None
    verdict = audit_verdict(audit).set_index(["game", "head"])
    return verdict[["single_frame", "best_region_accuracy", "motion"]].rename(columns={
        "single_frame": "single-frame probe", "best_region_accuracy": "best single-frame region",
        "motion": "motion probe"})


def _leak_table(scope: Scope) -> pd.DataFrame | None:
    audit = scope.csv("leak_audit.csv")
    if audit is None:
        return None
    verdict = audit_verdict(audit)
    cols = ["game", "head", "chance", "motion", "single_frame", "single_frame_t", "best_region",
            "best_region_accuracy", "flagged", "accepted"]
    return (verdict[cols].assign(game=verdict.game + " · " + verdict["head"]).drop(columns="head")
            .set_index("game").rename_axis("game · head"))


def _leak_text(scope: Scope) -> str | None:
    audit = scope.csv("leak_audit.csv")
    if audit is None:
        return None
    leaks = audit_verdict(audit).query("leak")
    return (f"**Leaks:** {', '.join(f'{r.game} · {r.head}' for r in leaks.itertuples())} — this domain was "
            "reported with `--allow-leaks`." if len(leaks) else "No unaccepted leak.")


def _leak_figures(scope: Scope) -> dict[str, object]:
    """Per game and head: probe accuracy per image region and probe input."""
    audit = scope.csv("leak_audit.csv")
    out = {}
    for (game, head), part in ([] if audit is None else audit.groupby(["game", "head"], sort=False)):
        grid = part.pivot_table(index="region", columns="feature", values="balanced_accuracy", sort=False)
        out[f"leaks-{game}-{head}"] = matrix_heatmap(grid, title=f"{game} · {head}: probe accuracy per region (motion "
                                                     f"{part.motion.iloc[0]:.2f}, chance {part.chance.iloc[0]:.2f})",
                                                     xlabel="probe input", ylabel="image region")
    return out


def _accuracy_table(scope: Scope) -> pd.DataFrame | None:
    acc = scope.csv("accuracy.csv")
    return None if acc is None else accuracy_pivot(acc)


def _proxy_table(scope: Scope) -> pd.DataFrame | None:
    arm, balance = scope.csv("proxy_arm.csv"), scope.csv("proxy_balance.csv", index_col=0)
    return None if arm is None or balance is None else proxy_table(arm, balance)


def _data_table(scope: Scope) -> pd.DataFrame | None:
    summary = scope.csv("data_summary.csv", index_col=0)
    if summary is None:
        return None
    return summary[[c for c in summary.columns if c in ("frames", "steer_LEFT", "steer_NEUTRAL", "steer_RIGHT",
                                                        "flow_accuracy", "flow_balanced_accuracy", "flow_kappa")]]


def _name(scope: Scope) -> str:
    return TITLES.get(scope.part, scope.part)


def _embedding_figures(scope: Scope) -> dict[str, object]:
    out = {}
    for method in ("tsne", "umap"):
        points = scope.csv(f"points-{method}.csv")
        if points is not None:
            out[method] = embedding_scatter(points[["x", "y"]].to_numpy(), points.action, points.game,
                                            title=f"{_name(scope)}: joint v3 embeddings ({method.upper()})")
    return out


def _geometry_text(scope: Scope) -> str | None:
    geometry = scope.csv("geometry.csv", index_col=0)
    if geometry is None:
        return None
    g = geometry["value"]
    return (f"Silhouette by action **{g.get('silhouette_by_action', np.nan):.3f}** vs by game "
            f"**{g.get('silhouette_by_game', np.nan):.3f}**; interleaving of games within action clusters "
            f"**{g.get('interleaving_all', np.nan):.2f}** (1 = perfectly mixed, 0 = separated); k-NN preservation of "
            f"the 2-D maps: t-SNE {g.get('knn_preservation_tsne', np.nan):.2f}, "
            f"UMAP {g.get('knn_preservation_umap', np.nan):.2f}.")


def _probe_table(scope: Scope) -> pd.DataFrame | None:
    probes, acc = scope.csv("probes.csv"), scope.csv("accuracy.csv")
    if probes is None or acc is None:
        return None
    zero = acc[acc.model == "joint_v3"].set_index(["game", "head"])["balanced_accuracy"].rename("zero-shot (own head)")
    probe = probes.pivot_table(index=["game", "head"], columns="variant", values="balanced_accuracy")
    probe.columns = [f"linear probe ({c})" for c in probe.columns]
    table = probe.join(zero, how="left")
    single = single_frame_columns(scope.tables)
    if single is not None:
        table = table.join(single, how="left")
    table.index = [f"{g} · {h}" for g, h in table.index]
    table.index.name = "game · head"
    return table


def _knn_figures(scope: Scope) -> dict[str, object]:
    knn = scope.csv("knn_matrix.csv", index_col=0)
    return {} if knn is None else {"knn": matrix_heatmap(knn, title=f"{_name(scope)}: cross-game KNN accuracy (steer)")}


def _knn_text(scope: Scope) -> str | None:
    path = scope.tables / "knn_benefit.json"
    if not path.is_file():
        return None
    kb = json.loads(path.read_text())
    return (f"Does the KNN matrix predict which pairs gain from joint training? Spearman ρ = **{kb['rho']:.2f}** "
            f"(p = {kb['p_value']:.3f}, {kb['n_pairs']} ordered pairs), benefit = accuracy of a model trained on A+B "
            "on A minus the single-game model on A. Both models had the same updates per game (the pair model twice "
            "the single model's steps), so a benefit is not extra training.")


def _gap_table(scope: Scope) -> pd.DataFrame | None:
    gap = scope.csv("calibration_gap.csv", index_col=0)
    if gap is None:
        return None
    cols = [c for c in gap.columns if c in ("zero_shot", "ceiling", "gap") or c.endswith("_closed")]
    shown = gap[cols].astype(object)
    if "gap_note" in gap.columns:  # no positive gap: nothing to close, say so instead of NaN
        for c in (c for c in cols if c.endswith("_closed")):
            shown.loc[gap["gap_note"].eq(NO_GAP), c] = NO_GAP
    return shown


def _gap_figures(scope: Scope) -> dict[str, object]:
    gap = scope.csv("calibration_gap.csv", index_col=0)
    if gap is None:
        return {}
    methods = [c for c in ("zero_shot", "few_shot", "ceiling", "flow_percentile", "flow_auto", "model_percentile")
               if c in gap.columns]
    long = gap[methods].rename(columns=_METHOD_LABELS).rename_axis("game").reset_index().melt(
        "game", var_name="method", value_name="balanced accuracy").dropna()
    return {"calibration": grouped_bars(long, "game", "method", "balanced accuracy", chance=1 / 3,
                                        title=f"{_name(scope)}: closing the calibration gap")} if len(long) else {}


def _auto_percentiles(scope: Scope) -> dict[str, float]:
    auto = scope.csv("percentile_auto.csv")
    return {} if auto is None else auto[(auto.gate == "flow") & (auto.side == "model")].set_index("game")[
        "percentile"].to_dict()


def sweep_figure(scope: Scope, cursor: float | None = None):
    """The flow gate's balanced accuracy (steer, IDM side) per game against the neutral percentile,
    dashed at each game's automatic percentile and, with ``cursor``, solid black at that
    percentile (the dashboard's slider); None when the scope saved no sweep."""
    sweep = scope.csv("percentile_sweep.csv")
    if sweep is None:
        return None
    flow = sweep[(sweep.gate == "flow") & (sweep.side == "model")]
    slider = "" if cursor is None else ", black: slider"
    return curves(flow, "percentile", "balanced_accuracy", "game", marks=_auto_percentiles(scope), cursor=cursor,
                  title=f"{_name(scope)}: zero-label calibration vs percentile (dashed: automatic{slider})",
                  ylabel="balanced accuracy (steer)")


def _sweep_figures(scope: Scope) -> dict[str, object]:
    fig = sweep_figure(scope)
    return {} if fig is None else {"percentile-sweep": fig}


def _sweep_text(scope: Scope) -> str | None:
    marks = _auto_percentiles(scope) if scope.csv("percentile_sweep.csv") is not None else {}
    return ("Automatic percentiles: " + ", ".join(f"{g} {p:.0f}" for g, p in marks.items()) + ".") if marks else None


def _few_shot_figures(scope: Scope) -> dict[str, object]:
    curve = scope.csv("few_shot_curve.csv")
    if curve is None:
        return {}
    error = "std" if "std" in curve.columns else None
    return {"few-shot": curves(curve, "k", "balanced_accuracy", "game", error=error, xlabel="labels per class (k)",
                               title=f"{_name(scope)}: few-shot boundary re-fit")}


#: The results of one domain of a seed 000 study in report order; the dashboard and notebook 06 show the same.
RESULTS = (
    Result("leaks", "Leak audit", "Before any model is trained: linear probes on grey, downsampled pixels of frame "
           "t+1 alone (`single_frame`), frame t alone, and of each grid cell and edge band, cross-validated over "
           "64-frame blocks; `motion` is the best of the whole-frame difference probe and the optical-flow probe. "
           "A region is flagged when one frame predicts the label ≥ 0.15 over chance and no worse than motion "
           "(− 0.02); the study refuses such a domain unless the catalog entry accepts the region as part of the "
           "game world (`accepted`, e.g. a sprite drawn in its steering pose: it cannot be masked) or it runs with "
           "`--allow-leaks`. Read every pair-based accuracy beside the single-frame numbers.",
           table=_leak_table, text=_leak_text, figures=_leak_figures),
    Result("accuracy", "Balanced accuracy on held-out test frames (seed 000 Tables 1–2)", "`single`: one model per "
           "game; `joint_v1`: one model for all games; `v2`: + balanced sampling; `v3`: + horizontal flips; "
           "`ceiling`: joint v3 fine-tuned on 20 % of that game's labels.", table=_accuracy_table),
    Result("proxy", "Proxy-label arm", "Seed 000 trained Atari on Farneback flow labels: the same models with the same "
           "budget trained on the stored flow-proxy steering labels instead of the true inputs, all scored against "
           "the TRUE labels on test frames. `proxy_<CLASS>`: the proxy's class shares on the test frames; "
           "`proxy_balanced_accuracy`: the proxy itself against the true labels.", table=_proxy_table),
    Result("data", "Data and flow-proxy labels", "Frames, true steering balance, and how well seed 000's Farneback "
           "flow-proxy label agrees with the true input (the paper could not measure this).", table=_data_table),
    Result("embeddings", "Embeddings (seed 000 Figures 1–2)", "The joint v3 penultimate layer on test frames, in "
           "t-SNE and UMAP, coloured by action, one marker per game.", figures=_embedding_figures),
    Result("geometry", "Geometry", "The joint v3 penultimate layer on test frames only: do frames cluster by action "
           "(silhouette by action above by game) and are the games mixed within each action cluster?",
           text=_geometry_text),
    Result("probes", "Is the information present?", "Linear probes on the joint v3 embedding vs the model's own "
           "head, both on frames the IDM never trained on: each probe is cross-validated over the split blocks of "
           "the validation and test frames and scored on the test frames (a probe on training frames would read "
           "what the embedding memorised). Beside them, from the leak audit, what a single frame predicts without "
           "any model (`single-frame probe`, `best single-frame region`) and the motion signal: a pair-based "
           "accuracy near the single-frame probe may be sprite reading, not motion.", table=_probe_table),
    Result("knn", "Cross-game KNN (seed 000 Figure 3)", "Game A's test frames (rows) classified by their 10 nearest "
           "neighbours among game B's validation frames (columns), standardised with B's frames only — neither side "
           "is a training frame.", figures=_knn_figures, text=_knn_text),
    Result("calibration_gap", "The calibration gap (steer)", "Zero-shot joint v3, the 20 %-label ceiling, and the "
           "fraction of the gap each fix closes (`few_shot`: a new linear boundary from 50 labels per class; "
           "`flow_percentile`: zero labels, neutral threshold at the 67th percentile of flow magnitude over ≤ 1000 "
           "unlabeled frames; `flow_auto`: the percentile chosen per game from the unlabeled flow distribution; "
           "`model_percentile`: the IDM's own turn score gated at the 67th percentile). The ceiling fine-tunes "
           f"joint v3 with its balanced sampling and flips; where it does not beat zero-shot the table says *{NO_GAP}*.",
           table=_gap_table, figures=_gap_figures),
    Result("percentile_sweep", "Zero-label calibration vs percentile", "Balanced accuracy (steer) of the flow gate "
           "with the IDM's side, per game, as the neutral percentile varies; dashed: the automatic per-game "
           "percentile (a Gaussian mixture on unlabeled log flow).", figures=_sweep_figures, text=_sweep_text),
    Result("few_shot", "Few-shot boundary re-fit", "Balanced accuracy (steer) of a linear boundary re-fitted on k "
           "labels per class of the joint v3 embedding, per game (mean and spread over label draws).",
           figures=_few_shot_figures),
)


def headlines(scope: Scope) -> list[dict]:
    """Per game of a domain (steer): zero-shot vs ceiling, the single-frame probe, and what 50 and
    zero labels recover (:func:`workbench.study.results.number`)."""
    gap = scope.csv("calibration_gap.csv", index_col=0)
    if gap is None:
        return []
    single = single_frame_columns(scope.tables)
    rows = []
    for game, row in gap.iterrows():
        numbers = [number("zero-shot", row.get("zero_shot", np.nan)),
                   number("ceiling", row.get("ceiling", np.nan), note=NO_GAP if row.get("gap_note") == NO_GAP else "")]
        if single is not None and (game, "steer") in single.index:
            numbers.append(number("single-frame probe", single.loc[(game, "steer"), "single-frame probe"]))
        numbers += [number(label, row[col]) for col, label in (("few_shot", "50 labels"),
                                                                ("flow_percentile", "0 labels (p67)"),
                                                                ("flow_auto", "0 labels (auto)")) if col in row]
        rows.append({"scope": f"{_name(scope)} / {game} (steer)", "numbers": numbers})
    return rows


def _about(record: dict) -> list[str]:
    """What ran (seeds, code, time), the budget rule, and the domains the study refused."""
    cfg = record["config"]
    lines = [f"Seed 000 (*{PAPER_TITLE}*) on the workbench catalog at size `{cfg['size']}`; seeds: data "
             f"{cfg.get('data_seed', cfg['seed'])}, models {cfg['seed']}, draws {cfg.get('draw_seed', cfg['seed'])}. "
             + ran(record), "",
             f"**Budget rule: every model gets the same updates per game.** A model trained on n games runs "
             f"n × {cfg['steps']} optimiser steps (batch 64): {cfg['steps']} for a single-game model, "
             f"{2 * cfg['steps']} for a pair, G × {cfg['steps']} for a joint model on G games; the ceilings fine-tune "
             f"{cfg['finetune_steps']} steps on one game. Every number is on held-out test frames (blocks of "
             f"{cfg['split_block']} frames, with the pair at each split boundary purged); each domain's "
             "`test_predictions.csv` holds every method's prediction per test frame with its block, for bootstrap "
             "intervals over test blocks."]
    refused = record.get("refused", {})
    if refused:
        lines += ["", "## Refused domains", "", "Not trained and not reported: their leak audit found a single-frame "
                  "region that predicts the label as well as the motion between frames does (see each domain's "
                  "`leak_audit.csv`).", "", *[f"- **{domain}**: {why}" for domain, why in refused.items()]]
    return lines


def _part_heading(scope: Scope) -> str:
    games = scope.record["domains"][scope.part].get("games", [])
    return f"## {_name(scope)} (`{scope.part}`: {', '.join(games)})"


def _provenance(scope: Scope) -> list[str]:
    lines = ["## Provenance", "", "Models (in the model library, each with a card):", ""]
    for domain, meta in scope.record.get("domains", {}).items():
        lines += [f"- {domain}: " + ", ".join(f"`{m}`" for m in meta["models"].values())]
        lines += ["  - timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in meta["timings"].items())]
    return lines


STUDY = StudySpec("seed000", PAPER_TITLE, RESULTS, headlines, "Cross-game IDM study", _about, _provenance,
                  _part_heading, parts=lambda record: list(record.get("domains", {})))
