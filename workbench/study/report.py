"""Render a saved study (see :mod:`workbench.study.runner`) as ``report.md`` + ``figures/*.png``.

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

from ..viz.plots import curves, embedding_scatter, grouped_bars, matrix_heatmap, save_figure
from ..models.library import atomic_write_text
from .files import markdown_table

TITLES = {"racing": "Racing", "atari": "Atari", "first_person": "First-person"}
_METHOD_LABELS = {"zero_shot": "joint v3 (zero-shot)", "few_shot": "50 labels/class", "ceiling": "20 % labels (ceiling)",
                  "flow_percentile": "0 labels: flow p67", "flow_auto": "0 labels: flow auto-percentile",
                  "model_percentile": "0 labels: IDM-score p67"}


def ledger_table(df: pd.DataFrame, markdown: bool = True) -> pd.DataFrame:
    """A ledger (:func:`workbench.study.ledger.ledger`) as a table to read: the claim quoted with
    its section, the estimate with its 95 % interval, units and seeds, the control and the verdict
    (in bold with ``markdown``)."""
    bold = "**" if markdown else ""

    def number(v: float) -> str:
        return "–" if not np.isfinite(v) else f"{v:.3g}"

    out = pd.DataFrame({
        "scope": df["scope"],
        "paper says": [f"“{q}” ({s})" for q, s in zip(df["quote"], df["section"])],
        "estimate [95 % CI]": [f"{number(e)} [{number(lo)}, {number(hi)}]" for e, lo, hi in
                               zip(df["estimate"], df["ci_low"], df["ci_high"])],
        "claim holds if": df["rule"],
        "units · seeds": [f"{n} {u}s · {s}" if n else f"– · {s}" for n, u, s in zip(df["n_units"], df["unit"], df["seeds"])],
        "control (its number)": [f"{c} ({number(v)})" for c, v in zip(df["control"], df["control_estimate"])],
        "verdict": [f"{bold}{v}{bold}" + (f" ({n})" if n else "") for v, n in zip(df["verdict"], df["note"])],
    })
    repeat = df["claim"].duplicated().to_numpy()  # the quote and control once per claim
    out.loc[repeat, ["paper says", "control (its number)"]] = "″"
    out["control (its number)"] = np.where(repeat, [f"″ ({number(v)})" for v in df["control_estimate"]],
                                           out["control (its number)"])
    out.index = pd.Index(df["claim"], name="claim")
    return out


def ledger_section(study: Path) -> list[str]:
    """The report's opening: the claims ledger of the study (and its seed replicates)."""
    from .ledger import ledger

    df = ledger(study)
    return ["## Claims ledger", "",
            "Each claim of the paper against this study's tables: the estimate with a 95 % bootstrap interval "
            "(units resampled within each game; pooled over ≥ 3 seed replicates where they exist), the control that "
            "would make it fail, and a verdict computed from the interval (`workbench.study.ledger`).", "",
            markdown_table(ledger_table(df)) if len(df) else "No claims could be measured.", ""]


def _read(folder: Path, name: str, **kw) -> pd.DataFrame | None:
    path = folder / name
    return pd.read_csv(path, **kw) if path.is_file() else None


def accuracy_pivot(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Table 1/2 layout: rows = models (single, joint v1-v3, ceiling), columns = game / head."""
    acc = accuracy.copy()
    acc["row"] = acc["model"].str.replace(r"^(single|ceiling):.*", r"\1", regex=True)
    acc = acc[~acc.model.str.startswith("pair:")]
    table = acc.pivot_table(index="row", columns=["game", "head"], values="balanced_accuracy", aggfunc="first")
    chance = acc.groupby(["game", "head"])["chance"].first()
    table.loc["chance"] = chance
    order = [r for r in ("chance", "single", "joint_v1", "joint_v2", "joint_v3", "ceiling") if r in table.index]
    table = table.loc[order]
    table.columns = [f"{g} · {h}" for g, h in table.columns]
    table.index.name = "model"
    return table


def _domain_section(folder: Path, domain: str, figures: Path, meta: dict) -> list[str]:
    out = [f"## {TITLES.get(domain, domain)} (`{domain}`: {', '.join(meta['games'])})", ""]
    acc = _read(folder, "accuracy.csv")
    if acc is not None:
        out += ["**Balanced accuracy on held-out test frames** (seed 000 Tables 1–2). `single`: one model per "
                "game; `joint_v1`: one model for all games; `v2`: + balanced sampling; `v3`: + horizontal flips; "
                "`ceiling`: joint v3 fine-tuned on 20 % of that game's labels.", "", markdown_table(accuracy_pivot(acc)), ""]
    summary = _read(folder, "data_summary.csv", index_col=0)
    if summary is not None:
        cols = [c for c in summary.columns if c in ("frames", "steer_LEFT", "steer_NEUTRAL", "steer_RIGHT",
                                                    "flow_accuracy", "flow_balanced_accuracy", "flow_kappa")]
        out += ["**Data and flow-proxy labels.** Frames, true steering balance, and how well seed 000's "
                "Farneback flow-proxy label agrees with the true input (the paper could not measure this).", "",
                markdown_table(summary[cols]), ""]
    for method in ("tsne", "umap"):
        points = _read(folder, f"points-{method}.csv")
        if points is None:
            continue
        name = f"{domain}-{method}.png"
        save_figure(embedding_scatter(points[["x", "y"]].to_numpy(), points.action, points.game,
                                      title=f"{TITLES.get(domain, domain)}: joint v3 embeddings ({method.upper()})"),
                    figures / name)
        out += [f"![{method}](figures/{name})", ""]
    geometry = _read(folder, "geometry.csv", index_col=0)
    if geometry is not None:
        g = geometry["value"]
        out += [f"Geometry (joint v3 penultimate layer): silhouette by action **{g.get('silhouette_by_action', np.nan):.3f}** "
                f"vs by game **{g.get('silhouette_by_game', np.nan):.3f}**; interleaving of games within action "
                f"clusters **{g.get('interleaving_all', np.nan):.2f}** (1 = perfectly mixed, 0 = separated); "
                f"k-NN preservation of the 2-D maps: t-SNE {g.get('knn_preservation_tsne', np.nan):.2f}, "
                f"UMAP {g.get('knn_preservation_umap', np.nan):.2f}.", ""]
    probes = _read(folder, "probes.csv")
    if probes is not None and acc is not None:
        zero = acc[acc.model == "joint_v3"].set_index(["game", "head"])["balanced_accuracy"].rename("zero-shot (own head)")
        probe = probes.pivot_table(index=["game", "head"], columns="variant", values="balanced_accuracy")
        probe.columns = [f"linear probe ({c})" for c in probe.columns]
        table = probe.join(zero, how="left")
        table.index = [f"{g} · {h}" for g, h in table.index]
        table.index.name = "game · head"
        out += ["**Is the information present?** Linear probes on the joint v3 embedding (cross-validated over "
                "64-frame blocks) vs the model's own head.", "", markdown_table(table), ""]
    knn = _read(folder, "knn_matrix.csv", index_col=0)
    if knn is not None:
        name = f"{domain}-knn.png"
        save_figure(matrix_heatmap(knn, title=f"{TITLES.get(domain, domain)}: cross-game KNN accuracy (steer)"),
                    figures / name)
        out += [f"![knn](figures/{name})", ""]
        bench = folder / "knn_benefit.json"
        if bench.is_file():
            kb = json.loads(bench.read_text())
            out += [f"Does the KNN matrix predict which pairs gain from joint training? Spearman ρ = "
                    f"**{kb['rho']:.2f}** (p = {kb['p_value']:.3f}, {kb['n_pairs']} ordered pairs), benefit = "
                    "accuracy of a model trained on A+B on A minus the single-game model on A.", ""]
    gap = _read(folder, "calibration_gap.csv", index_col=0)
    if gap is not None:
        cols = [c for c in gap.columns if c in ("zero_shot", "ceiling", "gap") or c.endswith("_closed")]
        out += ["**The calibration gap** (steer): zero-shot joint v3, the 20 %-label ceiling, and the fraction of "
                "the gap each fix closes (`few_shot`: a new linear boundary from 50 labels per class; `flow_percentile`:"
                " zero labels, neutral threshold at the 67th percentile of flow magnitude over ≤ 1000 unlabeled "
                "frames; `flow_auto`: the percentile chosen per game from the unlabeled flow distribution; "
                "`model_percentile`: the IDM's own turn score gated at the 67th percentile).", "", markdown_table(gap[cols]), ""]
        methods = [c for c in ("zero_shot", "few_shot", "ceiling", "flow_percentile", "flow_auto", "model_percentile")
                   if c in gap.columns]
        long = gap[methods].rename(columns=_METHOD_LABELS).rename_axis("game").reset_index().melt(
            "game", var_name="method", value_name="balanced accuracy").dropna()
        if len(long):
            name = f"{domain}-calibration.png"
            save_figure(grouped_bars(long, "game", "method", "balanced accuracy", chance=1 / 3,
                                     title=f"{TITLES.get(domain, domain)}: closing the calibration gap"), figures / name)
            out += [f"![calibration](figures/{name})", ""]
    sweep = _read(folder, "percentile_sweep.csv")
    auto = _read(folder, "percentile_auto.csv")
    if sweep is not None and len(sweep):
        flow = sweep[(sweep.gate == "flow") & (sweep.side == "model")]
        marks = {} if auto is None else auto[(auto.gate == "flow") & (auto.side == "model")].set_index("game")["percentile"].to_dict()
        name = f"{domain}-percentile-sweep.png"
        save_figure(curves(flow, "percentile", "balanced_accuracy", "game", marks=marks,
                           title=f"{TITLES.get(domain, domain)}: zero-label calibration vs percentile (dashed: automatic)",
                           ylabel="balanced accuracy (steer)"), figures / name)
        out += [f"![sweep](figures/{name})", ""]
        if marks:
            out += ["Automatic percentiles: " + ", ".join(f"{g} {p:.0f}" for g, p in marks.items()) + ".", ""]
    curve = _read(folder, "few_shot_curve.csv")
    if curve is not None and len(curve):
        name = f"{domain}-few-shot.png"
        error = "std" if "std" in curve.columns else None
        save_figure(curves(curve, "k", "balanced_accuracy", "game", error=error, xlabel="labels per class (k)",
                           title=f"{TITLES.get(domain, domain)}: few-shot boundary re-fit"), figures / name)
        out += [f"![few-shot](figures/{name})", ""]
    return out


def write_report(study: Path) -> Path:
    """Write ``report.md`` (and its figures) for the study folder; returns the report path."""
    study = Path(study)
    record = json.loads((study / "study.json").read_text())
    figures = study / "figures"
    cfg = record["config"]
    lines = [f"# Cross-game IDM study — `{cfg['study_id']}`", "",
             f"Seed 000 (*Cross-Game Semantic Alignment of Latent Action Representations*) on the workbench catalog "
             f"at size `{cfg['size']}`, seed {cfg['seed']}; {cfg['steps']} training steps per model "
             f"({cfg['finetune_steps']} for fine-tunes). Code {record['code_version']}; started {record['started']}"
             + (f", {record['wall_s'] / 60:.1f} min wall time." if "wall_s" in record else "."), ""]
    lines += ledger_section(study)
    lines += _headlines(study, record)
    for domain, meta in record["domains"].items():
        lines += _domain_section(study / domain, domain, figures, meta)
    lines += ["## Provenance", "", "Models (in the model library, each with a card):", ""]
    for domain, meta in record["domains"].items():
        lines += [f"- {domain}: " + ", ".join(f"`{m}`" for m in meta["models"].values())]
        lines += ["  - timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in meta["timings"].items())]
    return atomic_write_text(study / "report.md", "\n".join(lines) + "\n")


def _headlines(study: Path, record: dict) -> list[str]:
    """One line per domain: zero-shot vs ceiling and what 50 / 0 labels recover."""
    out = ["## Headline numbers", ""]
    for domain in record["domains"]:
        gap = _read(study / domain, "calibration_gap.csv", index_col=0)
        if gap is None:
            continue
        for game, row in gap.iterrows():
            parts = [f"zero-shot {row.get('zero_shot', np.nan):.3f}", f"ceiling {row.get('ceiling', np.nan):.3f}"]
            for col, label in (("few_shot", "50 labels"), ("flow_percentile", "0 labels (p67)"),
                               ("flow_auto", "0 labels (auto)")):
                if col in row:
                    parts.append(f"{label} {row[col]:.3f}")
            out.append(f"- **{TITLES.get(domain, domain)} / {game}** (steer): " + ", ".join(parts))
    return out + [""]
