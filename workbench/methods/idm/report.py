"""Render a saved study (see :mod:`workbench.methods.idm.study`) as ``report.md`` + ``figures/*.png``.

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
from ...viz.plots import curves, embedding_scatter, grouped_bars, matrix_heatmap, save_figure
from ...core.paths import atomic_write_text
from ...study.files import markdown_table

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
    from ...study.ledger import ledger

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
    audit = _read(folder, "leak_audit.csv")
    if audit is None or not len(audit):
        return None
    verdict = audit_verdict(audit).set_index(["game", "head"])
    return verdict[["single_frame", "best_region_accuracy", "motion"]].rename(columns={
        "single_frame": "single-frame probe", "best_region_accuracy": "best single-frame region",
        "motion": "motion probe"})


def _leak_section(folder: Path, domain: str, figures: Path) -> list[str]:
    """The leak audit: per game and head, what a single frame or region predicts vs motion."""
    audit = _read(folder, "leak_audit.csv")
    if audit is None or not len(audit):
        return []
    verdict = audit_verdict(audit)
    cols = ["game", "head", "chance", "motion", "single_frame", "single_frame_t", "best_region",
            "best_region_accuracy", "flagged", "accepted"]
    out = ["**Leak audit** (before any model is trained). Linear probes on grey, downsampled pixels of frame t+1 "
           "alone (`single_frame`), frame t alone, and of each grid cell and edge band, cross-validated over "
           "64-frame blocks; `motion` is the best of the whole-frame difference probe and the optical-flow probe. "
           "A region is flagged when one frame predicts the label ≥ 0.15 over chance and no worse than motion "
           "(− 0.02); the study refuses such a domain unless the catalog entry accepts the region as part of the "
           "game world (`accepted`, e.g. a sprite drawn in its steering pose: it cannot be masked) or it runs with "
           "`--allow-leaks`. Read every pair-based accuracy beside the single-frame numbers.", "",
           markdown_table(verdict[cols].assign(game=verdict.game + " · " + verdict["head"]).drop(columns="head")
                          .set_index("game").rename_axis("game · head")), ""]
    leaks = verdict[verdict.leak]
    out += ([f"**Leaks:** {', '.join(f'{r.game} · {r.head}' for r in leaks.itertuples())} — this domain was "
             "reported with `--allow-leaks`.", ""] if len(leaks) else ["No unaccepted leak.", ""])
    for (game, head), part in audit.groupby(["game", "head"], sort=False):
        grid = part.pivot_table(index="region", columns="feature", values="balanced_accuracy", sort=False)
        name = f"{domain}-leaks-{game}-{head}.png"
        save_figure(matrix_heatmap(grid, title=f"{game} · {head}: probe accuracy per region (motion "
                                   f"{part.motion.iloc[0]:.2f}, chance {part.chance.iloc[0]:.2f})",
                                   xlabel="probe input", ylabel="image region"), figures / name)
        out += [f"![leaks {game}](figures/{name})", ""]
    return out


def _domain_section(folder: Path, domain: str, figures: Path, meta: dict) -> list[str]:
    out = [f"## {TITLES.get(domain, domain)} (`{domain}`: {', '.join(meta['games'])})", ""]
    out += _leak_section(folder, domain, figures)
    acc = _read(folder, "accuracy.csv")
    if acc is not None:
        out += ["**Balanced accuracy on held-out test frames** (seed 000 Tables 1–2). `single`: one model per "
                "game; `joint_v1`: one model for all games; `v2`: + balanced sampling; `v3`: + horizontal flips; "
                "`ceiling`: joint v3 fine-tuned on 20 % of that game's labels.", "", markdown_table(accuracy_pivot(acc)), ""]
    arm, balance = _read(folder, "proxy_arm.csv"), _read(folder, "proxy_balance.csv", index_col=0)
    if arm is not None and balance is not None:
        out += ["**Proxy-label arm** (seed 000 trained Atari on Farneback flow labels): the same models with the "
                "same budget trained on the stored flow-proxy steering labels instead of the true inputs, all "
                "scored against the TRUE labels on test frames. `proxy_<CLASS>`: the proxy's class shares on the "
                "test frames; `proxy_balanced_accuracy`: the proxy itself against the true labels.", "",
                markdown_table(proxy_table(arm, balance)), ""]
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
        out += [f"Geometry (joint v3 penultimate layer, test frames only): silhouette by action **{g.get('silhouette_by_action', np.nan):.3f}** "
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
        single = single_frame_columns(folder)
        if single is not None:
            table = table.join(single, how="left")
        table.index = [f"{g} · {h}" for g, h in table.index]
        table.index.name = "game · head"
        out += ["**Is the information present?** Linear probes on the joint v3 embedding vs the model's own head, "
                "both on frames the IDM never trained on: each probe is cross-validated over the split blocks of the "
                "validation and test frames and scored on the test frames (a probe on training frames would read "
                "what the embedding memorised). Beside them, from the leak audit, what a single frame predicts without "
                "any model (`single-frame probe`, `best single-frame region`) and the motion signal: a pair-based "
                "accuracy near the single-frame probe may be sprite reading, not motion.", "", markdown_table(table), ""]
    knn = _read(folder, "knn_matrix.csv", index_col=0)
    if knn is not None:
        name = f"{domain}-knn.png"
        save_figure(matrix_heatmap(knn, title=f"{TITLES.get(domain, domain)}: cross-game KNN accuracy (steer)"),
                    figures / name)
        out += [f"![knn](figures/{name})", "",
                "KNN accuracy: game A's test frames (rows) classified by their 10 nearest neighbours among game B's "
                "validation frames (columns), standardised with B's frames only — neither side is a training frame.", ""]
        bench = folder / "knn_benefit.json"
        if bench.is_file():
            kb = json.loads(bench.read_text())
            out += [f"Does the KNN matrix predict which pairs gain from joint training? Spearman ρ = "
                    f"**{kb['rho']:.2f}** (p = {kb['p_value']:.3f}, {kb['n_pairs']} ordered pairs), benefit = "
                    "accuracy of a model trained on A+B on A minus the single-game model on A. Both models had the "
                    "same updates per game (the pair model twice the single model's steps), so a benefit is not "
                    "extra training.", ""]
    gap = _read(folder, "calibration_gap.csv", index_col=0)
    if gap is not None:
        cols = [c for c in gap.columns if c in ("zero_shot", "ceiling", "gap") or c.endswith("_closed")]
        shown = gap[cols].astype(object)
        if "gap_note" in gap.columns:  # no positive gap: nothing to close, say so instead of NaN
            for c in (c for c in cols if c.endswith("_closed")):
                shown.loc[gap["gap_note"].eq(NO_GAP), c] = NO_GAP
        out += ["**The calibration gap** (steer): zero-shot joint v3, the 20 %-label ceiling, and the fraction of "
                "the gap each fix closes (`few_shot`: a new linear boundary from 50 labels per class; `flow_percentile`:"
                " zero labels, neutral threshold at the 67th percentile of flow magnitude over ≤ 1000 unlabeled "
                "frames; `flow_auto`: the percentile chosen per game from the unlabeled flow distribution; "
                "`model_percentile`: the IDM's own turn score gated at the 67th percentile). The ceiling fine-tunes "
                "joint v3 with its balanced sampling and flips; where it does not beat zero-shot the table says "
                f"*{NO_GAP}*.", "", markdown_table(shown), ""]
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
             f"at size `{cfg['size']}`; seeds: data {cfg.get('data_seed', cfg['seed'])}, models {cfg['seed']}, "
             f"draws {cfg.get('draw_seed', cfg['seed'])}. Code {record['code_version']}; started {record['started']}"
             + (f", {record['wall_s'] / 60:.1f} min wall time." if "wall_s" in record else "."), "",
             f"**Budget rule: every model gets the same updates per game.** A model trained on n games runs "
             f"n × {cfg['steps']} optimiser steps (batch 64): {cfg['steps']} for a single-game model, "
             f"{2 * cfg['steps']} for a pair, G × {cfg['steps']} for a joint model on G games; the ceilings fine-tune "
             f"{cfg['finetune_steps']} steps on one game. Every number is on held-out test frames (blocks of "
             f"{cfg['split_block']} frames, with the pair at each split boundary purged); each domain's "
             "`test_predictions.csv` holds every method's prediction per test frame with its block, for bootstrap "
             "intervals over test blocks.", ""]
    lines += ledger_section(study)
    lines += _refused(record)
    lines += _headlines(study, record)
    for domain, meta in record["domains"].items():
        lines += _domain_section(study / domain, domain, figures, meta)
    lines += ["## Provenance", "", "Models (in the model library, each with a card):", ""]
    for domain, meta in record["domains"].items():
        lines += [f"- {domain}: " + ", ".join(f"`{m}`" for m in meta["models"].values())]
        lines += ["  - timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in meta["timings"].items())]
    return atomic_write_text(study / "report.md", "\n".join(lines) + "\n")


def _refused(record: dict) -> list[str]:
    """The domains the study refused to report (their leak audit flagged a leak), and why."""
    refused = record.get("refused", {})
    if not refused:
        return []
    return ["## Refused domains", "", "Not trained and not reported: their leak audit found a single-frame region "
            "that predicts the label as well as the motion between frames does (see each domain's "
            "`leak_audit.csv`).", "", *[f"- **{domain}**: {why}" for domain, why in refused.items()], ""]


def _headlines(study: Path, record: dict) -> list[str]:
    """One line per domain: zero-shot vs ceiling and what 50 / 0 labels recover."""
    out = ["## Headline numbers", ""]
    for domain in record["domains"]:
        gap = _read(study / domain, "calibration_gap.csv", index_col=0)
        if gap is None:
            continue
        single = single_frame_columns(study / domain)
        for game, row in gap.iterrows():
            parts = [f"zero-shot {row.get('zero_shot', np.nan):.3f}", f"ceiling {row.get('ceiling', np.nan):.3f}"
                     + (f" ({NO_GAP})" if row.get("gap_note") == NO_GAP else "")]
            if single is not None and (game, "steer") in single.index:
                parts.append(f"single-frame probe {single.loc[(game, 'steer'), 'single-frame probe']:.3f}")
            for col, label in (("few_shot", "50 labels"), ("flow_percentile", "0 labels (p67)"),
                               ("flow_auto", "0 labels (auto)")):
                if col in row:
                    parts.append(f"{label} {row[col]:.3f}")
            out.append(f"- **{TITLES.get(domain, domain)} / {game}** (steer): " + ", ".join(parts))
    return out + [""]
