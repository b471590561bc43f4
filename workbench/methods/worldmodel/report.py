"""The results of a seed 002 batch run (:mod:`workbench.methods.worldmodel.study`), declared once
(:data:`STUDY`, see :mod:`workbench.study.results`): the report, the dashboard's world-model page
and notebook 07 render them from the saved CSVs with the table builders below — capacity (§5),
error vs regularisation strength (Figure 4), future leakage (Table 1), cycle consistency (Table
2), controller rollouts, CEM and navigation planning (Tables S1/S2), the out-of-domain arm,
health, probes, latent samples (Figure S1); figures from :mod:`workbench.viz.plots`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ...viz.plots import curves, embedding_scatter, error_vs_strength
from .config import by_capacity, capacity_levels
from ...study.results import Result, Scope, StudySpec, number, ran
from .study import controller_means

#: Seed 002, as its paper is titled.
PAPER_TITLE = "Learning Latent Action World Models In The Wild"


def short_name(model_id: str, study_id: str) -> str:
    """A model's name inside the run (``noisy-beta5e-05``) from its library id."""
    return model_id[len(study_id) + 1:] if model_id.startswith(study_id + ".") else model_id


def _named(df: pd.DataFrame, study_id: str) -> pd.DataFrame:
    df = df.copy()
    if "model" not in df:
        df.insert(0, "model", [short_name(m, study_id) for m in df["model_id"]])
    if "level" not in df:
        df["level"] = ""
    df["level"] = df["level"].fillna("")
    return df


def capacity_table(capacity: pd.DataFrame, study_id: str) -> pd.DataFrame:
    """Per model: mean teacher-forced one-step error and the rollout error at each horizon
    (representation L1; lower = more capacity), deterministic and action baselines included."""
    df = _named(capacity, study_id)
    level = df.groupby("model", sort=False)["level"].first().rename("capacity")
    one = df[df["mode"] == "one_step"].groupby("model", sort=False)["error"].mean().rename("one-step")
    roll = df[df["mode"] == "rollout"].pivot_table(index="model", columns="horizon", values="error", sort=False)
    roll.columns = [f"rollout h={h}" for h in roll.columns]
    return pd.concat([level, one, roll], axis=1).rename_axis("model")


def strength_points(capacity: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Figure 4's data from ``capacity.csv``: ``(points, references)`` for
    :func:`workbench.viz.plots.error_vs_strength` — each swept model's mean one-step error and
    its rollout error at the longest horizon against its knob, and the same two errors of the
    unregularised (``free``) and deterministic (``zero``) models."""
    last = capacity["horizon"].max()
    rows = pd.concat([capacity[capacity["mode"] == "one_step"].assign(line="one-step"),
                      capacity[(capacity["mode"] == "rollout") & (capacity["horizon"] == last)]
                      .assign(line=f"rollout h={last}")])
    errors = rows.groupby(["model_id", "family", "knob", "knob_value", "line"], sort=False, dropna=False)["error"]
    errors = errors.mean().reset_index()
    points = errors[errors["knob"].notna() & errors["knob"].astype(str).ne("")].rename(columns={"family": "panel"})
    references = errors[errors["family"].isin(["free", "zero"])].rename(columns={"family": "label"})
    return points[["panel", "knob", "knob_value", "line", "error"]], references[["line", "label", "error"]]


def strength_figure(capacity: pd.DataFrame):
    """Figure 4: one-step and rollout error vs each regulariser's knob, free and zero as references."""
    points, references = strength_points(capacity)
    return error_vs_strength(points, references, ylabel="L1 error (representation)")


def leakage_table(leakage: pd.DataFrame, study_id: str) -> pd.DataFrame:
    """Table 1: one-step error at the cut without / with a scene cut, and their ratio."""
    df = _named(leakage, study_id).set_index("model")
    return df[["level", "error", "error_cut", "ratio", "pixel_ratio"]].rename(
        columns={"level": "capacity", "error": "no cut", "error_cut": "scene cut", "pixel_ratio": "ratio (pixels)"})


def cycle_table(cycle: pd.DataFrame, study_id: str) -> pd.DataFrame:
    """Table 2: rollout error on clip A with its own latents vs after the trip A -> B -> A."""
    df = _named(cycle, study_id)
    table = df.pivot_table(index="model", columns="pairing", values=["error", "error_cycle", "ratio"], sort=False)
    table.columns = [f"{p} · {v.replace('error_cycle', 'after cycle').replace('error', 'original')}"
                     for v, p in table.columns]
    level = df.groupby("model", sort=False)["level"].first().rename("capacity")
    return pd.concat([level, table[sorted(table.columns)]], axis=1).rename_axis("model")


def controller_table(controllers: pd.DataFrame) -> pd.DataFrame:
    """Tables S1/S2, left: rollout error at the longest horizon driven by IDM latents, by each
    controller from the true actions (× IDM), by a controller from another clip's actions
    (random-action baseline) and by zero latents."""
    last = controllers[controllers.horizon == controllers.horizon.max()]
    rows = []
    for model, part in last.groupby("model", sort=False):
        idm = float(part.loc[part.latent == "idm", "error"].mean())
        row = {"model": model, "capacity": part["level"].fillna("").iloc[0] if "level" in part else "", "IDM": idm}
        for kind, sub in part.groupby("kind", sort=False):
            ctrl = float(sub.loc[sub.latent == "controller", "error"].iloc[0])
            row[f"{kind} controller"] = ctrl
            row[f"{kind} × IDM"] = ctrl / idm
            row[f"{kind} random actions"] = float(sub.loc[sub.latent == "random_actions", "error"].iloc[0])
        row["zero latent"] = float(part.loc[part.latent == "zero", "error"].mean())
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def planning_table(planning: pd.DataFrame) -> pd.DataFrame:
    """Tables S1/S2, right: mean |Σ planned - Σ true| motion per method (map units, degrees) and
    the sum in standard deviations (``l1_std``), per world model; lower is better."""
    cols = [c for c in planning.columns if c.startswith("error_")] + ["l1_std"]
    table = planning.groupby(["model", "method"], sort=False)[cols].mean()
    return table.rename(columns=lambda c: c.replace("error_", "Δ ")).reset_index(level="method")


def navigation_table(navigation: pd.DataFrame) -> pd.DataFrame:
    """Table S2, right: mean ATE and RPE (map units; RPE rotation in degrees) per world model and
    method over the navigation episodes; lower is better."""
    table = navigation.groupby(["model", "method"], sort=False)[["ate", "rpe", "rpe_rot"]].mean()
    table.insert(0, "episodes", navigation.groupby(["model", "method"], sort=False).size())
    return table.rename(columns={"ate": "ATE", "rpe": "RPE", "rpe_rot": "RPE rot (°)"}).reset_index(level="method")


def ood_table(run: Scope) -> pd.DataFrame | None:
    """The out-of-domain arm beside the in-domain models of the same knobs, all scored on the
    held-out clips of the games the arm never saw: one-step and last-horizon rollout error,
    leakage and cycle ratios, controller-driven rollout error (and × IDM, and with random
    actions) and navigation ATE / RPE through the controller. None when the run has no arm."""
    study_id = run.study_id
    capacity = run.csv("ood/capacity.csv")
    if capacity is None:
        return None
    cap = capacity_table(capacity, study_id)
    rows = _named(capacity, study_id).groupby("model", sort=False)[["arm", "family"]].first()
    table = rows.join(cap[["capacity", "one-step", cap.columns[-1]]])
    for name, column in (("leakage", "leakage ratio"), ("cycle", "cycle ratio")):
        df = run.csv(f"ood/{name}.csv")
        if df is not None:
            table[column] = _named(df, study_id).groupby("model", sort=False)["ratio"].first()
    clips = run.csv("ood/controllers_clips.csv")
    if clips is not None:
        ctrl = controller_table(controller_means(clips))
        table = table.join(ctrl.drop(columns=["capacity"]))
    nav = run.csv("ood/navigation.csv")
    if nav is not None:
        mine = nav[nav.method.str.startswith("controller:")].groupby("model", sort=False)[["ate", "rpe"]].mean()
        table = table.join(mine.rename(columns={"ate": "nav ATE", "rpe": "nav RPE"}))
    return table.rename_axis("model")


def probe_table(probes: pd.DataFrame) -> pd.DataFrame:
    """Balanced accuracy of linear / KNN probes of the true actions on the latents, per model ×
    game · head (chance in the last row)."""
    df = probes.dropna(subset=["balanced_accuracy"])
    table = df.pivot_table(index=["model", "probe"], columns=["game", "head"], values="balanced_accuracy", sort=False)
    chance = df.groupby(["game", "head"])["chance"].first()
    table.loc[("chance", ""), :] = chance.reindex(table.columns).values
    table.columns = [f"{g} · {h}" for g, h in table.columns]
    table.index = [f"{m} ({p})" if p else m for m, p in table.index]
    return table.rename_axis("model")


def health_table(health: pd.DataFrame, study_id: str) -> pd.DataFrame:
    """The health table (:func:`workbench.methods.worldmodel.health_summary`) indexed by model name."""
    return _named(health, study_id).drop(columns=["model_id"]).set_index("model")


def pictures(folder: Path, kind: str = "filmstrips") -> dict[str, list[Path]]:
    """A run's saved pictures by model name: ``filmstrips`` (``<model>-<k>.png|.gif``, the PNG
    of each clip before its GIF) or ``planning`` (``<model>-e<k>.png``)."""
    if kind not in ("filmstrips", "planning"):
        raise ValueError(f"kind must be 'filmstrips' or 'planning', got {kind!r}")
    sep = "-" if kind == "filmstrips" else "-e"
    out: dict[str, list[Path]] = {}
    for path in sorted((Path(folder) / kind).glob("*.png")) + sorted((Path(folder) / kind).glob("*.gif")):
        out.setdefault(path.stem.rsplit(sep, 1)[0], []).append(path)
    return {name: sorted(paths, key=lambda p: (p.stem, p.suffix != ".png")) for name, paths in sorted(out.items())}


def capacity_figure(capacity: pd.DataFrame, study_id: str):
    """Rollout error vs horizon per model (the capacity figure, §5) from ``capacity.csv``."""
    roll = _named(capacity[capacity["mode"] == "rollout"], study_id)
    return curves(roll, "horizon", "error", "model", title="Rollout error vs horizon (IDM-inferred latents)",
                  ylabel="L1 error (representation)")


def samples_figure(points: pd.DataFrame, model: str):
    """Figure S1 for one model: its inferred vs sampled latents in 2-D (``samples/<model>.csv``)."""
    return embedding_scatter(points[["x", "y"]].to_numpy(), points["kind"], points["kind"], color_by="game",
                             title=f"{model}: inferred vs sampled latents (UMAP)")


def sweep_note(record: dict) -> list[str]:
    """Which capacity row each swept value is and which of the paper's values the run leaves out, and why."""
    cfg = record["config"]
    rows = []
    for family, values in cfg["sweeps"].items():
        if values:
            levels = capacity_levels(family, values)
            rows.append(f"{family} " + ", ".join(f"{v:g}" + (f" ({levels[v]})" if levels[v] else "")
                                                 for v in by_capacity(family, values)))
    lines = ["Capacity rows (lowest capacity first): " + "; ".join(rows) + "."] if rows else []
    left = {f: v for f, v in record.get("left_out", {}).get("values", {}).items() if v}
    if left:
        lines.append("The paper's grid values (appendix A) not run at this size: "
                     + "; ".join(f"{f} {', '.join(f'{x:g}' for x in v)}" for f, v in left.items())
                     + (f" — {record['left_out']['why']}." if record["left_out"].get("why") else "."))
    return lines


def headlines(scope: Scope) -> list[dict]:
    """Per latent model: leakage ratio, cycle ratios, controller vs IDM vs random actions at the
    longest horizon, planning l1_std and navigation ATE per method (:func:`workbench.study.results.number`)."""
    record, study_id = scope.record, scope.study_id
    leak, cycle = scope.csv("leakage.csv"), scope.csv("cycle.csv")
    ctrl, plans, nav = scope.csv("controllers.csv"), scope.csv("planning.csv"), scope.csv("navigation.csv")
    rows = []
    for model_id in record.get("world_models", {}).values():
        name = short_name(model_id, study_id)
        numbers = []
        if leak is not None and (leak.model_id == model_id).any():
            numbers.append(number("leakage ratio", leak.loc[leak.model_id == model_id, "ratio"].iloc[0], ".2f"))
        if cycle is not None and (cycle.model_id == model_id).any():
            numbers += [number(f"cycle ratio ({p})", r) for p, r in
                        cycle.loc[cycle.model_id == model_id, ["pairing", "ratio"]].itertuples(index=False)]
        if ctrl is not None and (ctrl.model == name).any():
            table = controller_table(ctrl[ctrl.model == name]).iloc[0]
            kind, h = record["config"]["controllers"][0], int(ctrl.horizon.max())
            numbers += [number(f"h={h} rollout error IDM", table["IDM"], ".4f"),
                        number(f"{kind} controller", table[f"{kind} controller"], ".4f"),
                        number("random actions", table[f"{kind} random actions"], ".4f")]
        if plans is not None and (plans.model == name).any():
            numbers += [number(f"planning l1_std {m}", v, ".2f") for m, v in
                        plans[plans.model == name].groupby("method")["l1_std"].mean().items()]
        if nav is not None and (nav.model == name).any():
            numbers += [number(f"navigation ATE {m}", v, ".1f") for m, v in
                        nav[nav.model == name].groupby("method")["ate"].mean().items()]
        rows.append({"scope": name, "numbers": numbers})
    return rows


def _about(record: dict) -> list[str]:
    """What the run trained, with which budget, when, and which of the paper's values it leaves out."""
    cfg = record["config"]
    sweeps = "; ".join(f"{family} {values}" for family, values in cfg["sweeps"].items())
    return [f"Seed 002 (*{PAPER_TITLE}*) on `{cfg['dataset']}` at size "
            f"`{cfg['size']}`, seed {cfg['seed']}: capacity sweeps {sweeps}, plus an unregularised (`free`), a "
            f"deterministic (`zero`) and an action-conditioned (`action-{record.get('action_space', '')}`) forward "
            f"model; {cfg['steps']} world-model steps, {cfg['encoder_steps']} autoencoder steps, "
            f"{cfg['controller_steps']} controller steps. " + ran(record), "", *sweep_note(record)]


def _provenance(scope: Scope) -> list[str]:
    record, study_id = scope.record, scope.study_id
    ood = record.get("ood", {})
    lines = ["## Provenance", "", f"Autoencoder `{record.get('encoder')}`; world models "
             + ", ".join(f"`{m}`" for m in record.get("world_models", {}).values()) + "; controllers "
             + ", ".join(f"`{m}`" for m in record.get("controllers", {}).values()) + ".", ""]
    if ood.get("world_models"):
        lines += [f"Out of domain (trained on {', '.join(ood['train_games'])}): autoencoder `{ood.get('encoder')}`; "
                  "world models " + ", ".join(f"`{m}`" for m in ood["world_models"].values()) + "; controllers "
                  + ", ".join(f"`{m}`" for m in ood.get("controllers", {}).values()) + ".", ""]
    lines += ["Stage seconds: " + ", ".join(f"{k} {v.get('seconds', 0):.0f} s" for k, v in record["stages"].items()), ""]
    if record.get("training_s"):
        lines += ["Training seconds per model: " + ", ".join(
            f"{short_name(m, study_id)} {s:.0f}" for m, s in record["training_s"].items()), ""]
    return lines


def _table(name: str, build: Callable[[pd.DataFrame, str], pd.DataFrame]) -> Callable[[Scope], pd.DataFrame | None]:
    """A result's table: ``build(<name>.csv, study id)``, or None when the run saved no such table."""
    def table(scope: Scope) -> pd.DataFrame | None:
        df = scope.csv(f"{name}.csv")
        return None if df is None or not len(df) else build(df, scope.study_id)
    return table


def _capacity_figures(scope: Scope) -> dict[str, object]:
    capacity = scope.csv("capacity.csv")
    return {} if capacity is None else {"capacity": capacity_figure(capacity, scope.study_id)}


def _strength_figures(scope: Scope) -> dict[str, object]:
    capacity = scope.csv("capacity.csv")
    return {} if capacity is None or not capacity["knob"].notna().any() else {"strength": strength_figure(capacity)}


def _controller_figures(scope: Scope) -> dict[str, object]:
    """Per model: rollout error vs horizon by latent source (IDM, each controller, random actions, zero)."""
    controllers = scope.csv("controllers.csv")
    out = {}
    for model, part in ([] if controllers is None else controllers.groupby("model", sort=False)):
        part = part.assign(driver=np.where(part.latent == "controller", part.kind + " controller",
                                           np.where(part.latent == "random_actions",
                                                    part.kind + " random actions", part.latent)))
        out[f"controllers-{model}"] = curves(part.drop_duplicates(["driver", "horizon"]), "horizon", "error",
                                             "driver", title=f"{model}: rollouts by latent source",
                                             ylabel="L1 error (representation)")
    return out


def _sample_figures(scope: Scope) -> dict[str, object]:
    return {f"samples-{p.stem}": samples_figure(pd.read_csv(p), p.stem)
            for p in sorted((scope.tables / "samples").glob("*.csv"))}


def _ood_text(scope: Scope) -> str | None:
    arm = scope.record.get("ood", {})
    if not arm.get("world_models"):
        return None
    return (f"Trained on {', '.join(f'`{g}`' for g in arm.get('train_games', []))} only; controlled and scored on "
            f"{', '.join(f'`{g}`' for g in arm.get('eval_games', []))}.")


#: The batch run's results in report order; the dashboard's world-model page and notebook 07 show the same.
RESULTS = (
    Result("capacity", "Capacity (§5)", "Prediction error with IDM-inferred latents (teacher-forced one step, and "
           "autoregressive rollouts from the first frame), L1 in representation space; lower = more capacity. The "
           "`zero` model sees no latent; `action-*` sees the true actions.",
           table=_table("capacity", capacity_table), figures=_capacity_figures, floatfmt=".4f"),
    Result("strength", "Error vs regularisation strength (Figure 4)", "Each regulariser's one-step and last-horizon "
           "rollout error against its knob (sparse λ_l1, noisy β: stronger = less capacity; discrete |C|: larger = "
           "more), with the unregularised `free` model and the deterministic `zero` model as dashed references: the "
           "paper finds sparse and noisy latents span the range between the two, and quantised ones stay near "
           "`zero`. The `capacity` column of the capacity table names each value's row (Low / Mid / High).",
           figures=_strength_figures, static=True),
    Result("leakage", "Future leakage (Table 1)", "One-step error at an artificial scene cut (clip A spliced into a "
           "clip of another game/episode) vs the same position without a cut. A ratio well above 1: the latent "
           "cannot carry the whole next frame.", table=_table("leakage", leakage_table), floatfmt=".4f"),
    Result("cycle", "Transfer and cycle consistency (Table 2)", "Latents inferred on clip A drive clip B, are "
           "re-inferred there and drive A again; rollout error on A over the clip, original vs after the cycle.",
           table=_table("cycle", cycle_table), floatfmt=".4f",
           pictures=("filmstrips", "filmstrips of model", "Transfer filmstrips (rows: source A, target B, A predicted, B driven by A's "
                     "latents, A after the cycle; the same clips as GIFs beside them).")),
    Result("controllers", "Controllers (Tables S1/S2, left)", "Rollout error at the longest horizon, from the clip's "
           "first frame, driven by the IDM's latents, by a controller from the true actions, by the controller from "
           "another clip's actions (random-action baseline) and by zero latents; `× IDM` is the controller's error "
           "over the IDM's.", table=_table("controllers", lambda df, sid: controller_table(df)),
           figures=_controller_figures, floatfmt=".4f"),
    Result("planning", "CEM planning (Table S1, right)", "Goal-reaching on held-out clips: CEM (N=300, K=10, "
           "15 iterations, horizon 3 unless configured) searches real-action sequences whose rollout reaches the "
           "goal frame's representation; scored by |Σ planned − Σ true motion| (forward/left in map units, turn in "
           "degrees; `l1_std` sums the three in standard deviations); lower is better. Baselines: `random` actions, "
           "standing `still`, and `action_model` (a forward model trained with the true actions).",
           table=_table("planning", lambda df, sid: planning_table(df)), floatfmt=".2f",
           pictures=("planning", "planning rollouts of model", "Planning rollouts (rows: the real clip, whose last frame is the goal; the frames "
                     "the chosen plan reaches; the goal).")),
    Result("navigation", "Navigation planning (Table S2, right; appendix A)", "The RECON protocol after NWM on "
           "held-out clips of H+1 frames: CEM with N=120 candidates and one iteration searches one motion action "
           "which, repeated over H=8 steps (a straight line), brings the world model from the first frame to the "
           "goal, the clip's last frame. The plan is integrated from the recorded start pose and scored against the "
           "recorded ViZDoom poses: ATE (RMSE of positions, map units), RPE (per-step relative pose error, map "
           "units; rotation in degrees). Baselines: `random` (a random straight line), `still`, and `straight_fit` "
           "(the clip's mean true action repeated: the best a straight line does knowing the answer — a floor, not "
           "a planner). Per-episode scores: `navigation.csv`.",
           table=_table("navigation", lambda df, sid: navigation_table(df)), floatfmt=".2f"),
    Result("ood", "Out of domain", "The paper's world model never saw the domain it is controlled in. Here an "
           "autoencoder and world models (each family's middle capacity, and `zero`) train on some games only; "
           "their controllers train on, and every score is computed on held-out clips of, the others — which they "
           "never saw. Beside them, the in-domain models of the same knobs (trained on every game) on the same "
           "clips. Leakage and cycle pair clips within that game; navigation plans through the first controller "
           "kind. Per-clip and per-episode scores: `ood/`.",
           table=ood_table, text=_ood_text, floatfmt=".4f"),
    Result("ood_navigation", "Out of domain: navigation on the unseen game", "ATE / RPE (map units) of navigation "
           "planning through each out-of-domain model's controller and its in-domain twin's, with the in-domain "
           "action-conditioned model as the baseline.",
           table=_table("ood/navigation", lambda df, sid: navigation_table(df)), floatfmt=".2f"),
    Result("health", "Model health", "Is the latent used (own vs zero vs shuffled latents), how is it spread, does "
           "it leak, does it carry the true steering?", table=_table("health", health_table), floatfmt=".4g"),
    Result("probes", "Probes on latent actions", "Balanced accuracy of the true inputs decoded from the latents per "
           "game (linear and KNN, cross-validated over 64-frame blocks; chance in the last row).",
           table=_table("probes", lambda df, sid: probe_table(df))),
    Result("samples", "Sampling latent actions (Figure S1)", "Inferred latents vs samples from the prior (noisy), "
           "the used codes (discrete) or SGLD on the energy (sparse), in one UMAP: samples that cover the inferred "
           "cloud are plausible actions.", figures=_sample_figures),
)
STUDY = StudySpec("seed002", PAPER_TITLE, RESULTS, headlines, "Latent action world models", _about,
                  _provenance)
