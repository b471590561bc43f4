"""Seed 000 end to end on the catalog: train the model variants, extract embeddings, run every
analysis, and save the results as tables a report, a notebook or the dashboard can read.

One study = one folder ``<studies>/<study_id>/`` holding ``study.json`` (config, model ids,
timings, code version) and, per domain, ``<domain>/*.csv`` tables and ``<domain>/points-*.csv``
projections. Nothing here plots; :mod:`workbench.study.report` renders the saved results.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from ..analysis.calibration import calibration_gap, few_shot, few_shot_curve, percentile_calibration, percentile_sweep
from ..analysis.geometry import interleaving, knn_preservation, project, silhouette_scores
from ..analysis.knn import benefit_matrix, knn_matrix, knn_predicts_benefit
from ..analysis.metrics import accuracy_table
from ..analysis.probes import linear_probe
from ..analysis.summary import dataset_summary
from ..data.catalog import get_entry, materialise
from ..data.store import derived_path, is_complete, open_dataset
from ..flow import compute_flow
from ..paths import cache_dir, check_id
from ..provenance import code_version, now_utc
from ..training import TrainConfig, extract_embeddings, make_config, train
from .files import train_in_processes, write_csv, write_json

DOMAINS = ("racing", "atari", "first_person")
#: Training budgets per catalog size: optimiser steps (batch 64) of the joint/single models, of
#: the fine-tuned ceilings, and of the pairwise joint models behind the KNN-benefit check. The
#: demo budget fits the whole study (~45 models) in about 15 minutes on 2 CPU cores; use `full`
#: (or --steps) for numbers worth quoting.
#: ``quotable`` trains every model until its validation loss stops improving (``patience``
#: evaluations every ``eval_every`` steps; the step counts are caps) on the ``demo`` recordings:
#: at ~10 steps/s on 2 cores the caps bound a seed at about 2 hours (11 single, 9 joint, 21 pair
#: models at ≤ 1500 / 1000 steps, 11 ceilings at ≤ 300); run ≥ 3 seeds (`workbench findings run`).
BUDGETS = {
    "tiny": {"steps": 30, "finetune_steps": 10, "pair_steps": 10, "split_block": 4},
    "demo": {"steps": 120, "finetune_steps": 60, "pair_steps": 50, "split_block": 64},
    "full": {"steps": 3000, "finetune_steps": 500, "pair_steps": 1500, "split_block": 64},
    "quotable": {"steps": 1500, "finetune_steps": 300, "pair_steps": 1000, "split_block": 64, "patience": 3,
                 "eval_every": 100, "data_size": "demo"},
}
VARIANTS = ("joint_v1", "joint_v2", "joint_v3")
MAX_POINTS = 4000  # points per projection: enough to see clusters, cheap to draw and to ship


def studies_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_STUDIES", cache_dir() / "studies")).expanduser()


@dataclass
class StudyConfig:
    """What a study runs. ``steps``/``finetune_steps``/``pair_steps`` default to the size's budget."""

    size: str = "demo"
    seed: int = 0
    domains: list[str] = field(default_factory=lambda: list(DOMAINS))
    steps: int | None = None
    finetune_steps: int | None = None
    pair_steps: int | None = None
    split_block: int | None = None
    pairwise: bool = True
    k_per_class: int = 50
    ceiling_fraction: float = 0.2
    percentile: float = 67.0
    projections: list[str] = field(default_factory=lambda: ["tsne", "umap"])
    workers: int = field(default_factory=lambda: min(2, os.cpu_count() or 1))
    study_id: str | None = None
    patience: int | None = None  # early stopping (evaluations without a better validation loss)
    eval_every: int | None = None  # validation interval (None: once, at the end)
    data_size: str | None = None  # the catalog size recorded (None: ``size``)

    def __post_init__(self):
        budget = BUDGETS.get(self.size, BUDGETS["demo"])
        custom = any(getattr(self, key) not in (None, value) for key, value in budget.items())
        for key, value in budget.items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if self.study_id is None:  # a non-default budget is another study (and other models)
            self.study_id = f"seed000-{self.size}-s{self.seed}" + (f"-{self.steps}steps" if custom else "")
        check_id(self.study_id, "study id")
        unknown = set(self.domains) - set(DOMAINS)
        if unknown:
            raise ValueError(f"unknown domains {sorted(unknown)}; known: {DOMAINS}")


def _prepare_data(dataset_id: str, size: str, seed: int) -> Path:
    """Record (if needed) and compute Farneback flow (if needed) for one domain."""
    store = materialise(get_entry(dataset_id), size=size, seed=seed)
    if not is_complete(derived_path(store, "flow-farneback")):
        compute_flow(store, method="farneback")
    return store


def _accuracy(emb: xr.Dataset, model: str) -> pd.DataFrame:
    table = accuracy_table(emb, split="test")
    table.insert(0, "model", model)
    return table


def _config(key: str, preset: str, cfg: StudyConfig, dataset_id: str, steps: int, **overrides) -> TrainConfig:
    """One model of the study; its library id is ``<study>.<dataset>.<key>``."""
    return make_config(preset, datasets=[dataset_id], size=cfg.data_size or cfg.size, data_seed=cfg.seed,
                       seed=cfg.seed, steps=steps, split_block=cfg.split_block,
                       eval_every=cfg.eval_every or max(steps, 1), patience=cfg.patience,
                       model_id=f"{cfg.study_id}.{dataset_id}.{key}", **overrides)


def _train_id(config: TrainConfig) -> str:
    return train(config, progress=False).model_id


def _train_all(configs: dict[str, TrainConfig], workers: int, bar: tqdm, label: str) -> dict[str, str]:
    bar.set_postfix_str(f"{label}: training {len(configs)} models")
    return train_in_processes(_train_id, configs, workers)


def run_domain(dataset_id: str, cfg: StudyConfig, out: Path, bar: tqdm) -> dict:
    """Everything seed 000 reports for one domain; tables go to ``out``. Returns model ids + timings."""
    t0 = time.perf_counter()
    size = cfg.data_size or cfg.size
    store = _prepare_data(dataset_id, size, cfg.seed)
    data = open_dataset(store)
    games = list(dict.fromkeys(np.asarray(data["game"].values).astype(str)))
    write_csv(dataset_summary(data), out / "data_summary.csv")
    timings = {"data_s": time.perf_counter() - t0}

    # --- models: single-game, joint v1/v2/v3, pairwise joint, then the calibrated ceilings -------
    t0 = time.perf_counter()
    configs = {f"single:{g}": _config(f"single-{g}", "single", cfg, dataset_id, cfg.steps, games=[g]) for g in games}
    configs.update({v: _config(v, v, cfg, dataset_id, cfg.steps) for v in VARIANTS})
    pairs = list(combinations(games, 2)) if cfg.pairwise and len(games) > 2 else []
    configs.update({f"pair:{a}+{b}": _config(f"pair-{a}-{b}", "joint_v1", cfg, dataset_id, cfg.pair_steps, games=[a, b])
                    for a, b in pairs})
    models = _train_all(configs, cfg.workers, bar, dataset_id)
    ceilings = {f"ceiling:{g}": _config(f"ceiling-{g}", "finetune_pct", cfg, dataset_id, cfg.finetune_steps,
                                        init_from=models["joint_v3"],
                                        finetune={"game": g, "fraction": cfg.ceiling_fraction}) for g in games}
    models.update(_train_all(ceilings, cfg.workers, bar, dataset_id))
    timings["train_s"] = time.perf_counter() - t0

    # --- Tables 1-2: balanced accuracy of every model on every game's test frames -------------
    t0 = time.perf_counter()
    bar.set_postfix_str(f"{dataset_id}: evaluate")
    main = extract_embeddings(models["joint_v3"], dataset_id, split="all", size=size, seed=cfg.seed, progress=False)
    test = main.isel(frame=np.flatnonzero(main["split"].values == "test"))
    rows = [_accuracy(test, "joint_v3")]
    for name, model_id in models.items():
        if name == "joint_v3":
            continue
        emb = extract_embeddings(model_id, dataset_id, split="test", size=size, seed=cfg.seed, progress=False)
        if name.startswith(("single:", "ceiling:")):
            emb = emb.isel(frame=np.flatnonzero(emb["game"].values == name.split(":", 1)[1]))
        elif name.startswith("pair:"):
            emb = emb.isel(frame=np.flatnonzero(np.isin(emb["game"].values, name.split(":", 1)[1].split("+"))))
        rows.append(_accuracy(emb, name))
    accuracy = pd.concat(rows, ignore_index=True)
    write_csv(accuracy, out / "accuracy.csv", index=False)
    timings["evaluate_s"] = time.perf_counter() - t0

    # --- calibration: zero-shot vs few-shot vs ceiling; zero-label flow percentiles ----------
    t0 = time.perf_counter()
    steer = accuracy[accuracy["head"] == "steer"]
    zero = steer[steer.model == "joint_v3"].set_index("game")["balanced_accuracy"]
    ceiling = steer[steer.model.str.startswith("ceiling:")].set_index("game")["balanced_accuracy"]
    shots = few_shot(main, head="steer", k=cfg.k_per_class, seeds=5)
    flow_sign = data.attrs.get("flow_sign", {})
    pct = percentile_calibration(main, head="steer", percentile=cfg.percentile, flow_sign=flow_sign, seed=cfg.seed)
    auto = percentile_calibration(main, head="steer", percentile="auto", flow_sign=flow_sign, seed=cfg.seed)
    sweep = percentile_sweep(main, head="steer", flow_sign=flow_sign, seed=cfg.seed)
    write_csv(shots, out / "few_shot.csv", index=False)
    write_csv(few_shot_curve(main, head="steer", seeds=3), out / "few_shot_curve.csv", index=False)
    write_csv(pct, out / "percentile_calibration.csv", index=False)
    write_csv(auto, out / "percentile_auto.csv", index=False)
    write_csv(sweep, out / "percentile_sweep.csv", index=False)
    def variant(table: pd.DataFrame, gate: str) -> pd.Series:  # the side always from the IDM's logits
        rows = table[(table.gate == gate) & (table.side == "model")]
        return rows.set_index("game")["balanced_accuracy"]

    gap = calibration_gap(zero, few_shot=shots.set_index("game")["balanced_accuracy"], ceiling=ceiling,
                          flow_percentile=variant(pct, "flow"), flow_auto=variant(auto, "flow"),
                          model_percentile=variant(pct, "model"))
    write_csv(gap, out / "calibration_gap.csv")
    timings["calibration_s"] = time.perf_counter() - t0

    # --- information present, geometry, cross-game KNN ----------------------------------------
    t0 = time.perf_counter()
    write_csv(linear_probe(main), out / "probes.csv", index=False)
    labeled = np.flatnonzero(main["steer"].values >= 0)
    rng = np.random.default_rng(cfg.seed)
    pick = np.sort(rng.choice(labeled, min(MAX_POINTS, len(labeled)), replace=False))
    sub = main.isel(frame=pick)
    x = sub["embedding"].values
    classes = np.array(main["steer"].attrs["classes"])
    action = classes[sub["steer"].values]
    game = sub["game"].values.astype(str)
    geometry = {"silhouette_" + k: v for k, v in silhouette_scores(x, action, game, seed=cfg.seed).items()}
    inter = interleaving(x, action, game)
    write_csv(inter, out / "interleaving.csv")
    for method in cfg.projections:
        xy = project(x, method=method, seed=cfg.seed, cache_dir=cache_dir() / "projections")
        geometry[f"knn_preservation_{method}"] = knn_preservation(x, xy, k=10, sample=1000, seed=cfg.seed)
        points = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "game": game, "action": action,
                               "source_frame": sub["source_frame"].values, "split": sub["split"].values})
        write_csv(points, out / f"points-{method}.csv", index=False)
    geometry["interleaving_all"] = float(inter.loc["all", "interleaving"]) if "all" in inter.index else np.nan
    write_csv(pd.Series(geometry, name="value").to_frame(), out / "geometry.csv")
    knn = knn_matrix(main, head="steer")
    write_csv(knn, out / "knn_matrix.csv")
    if pairs:
        single = steer[steer.model.str.startswith("single:")].set_index("game")["balanced_accuracy"]
        joint = pd.DataFrame(np.nan, index=games, columns=games)
        for a, b in pairs:
            part = steer[steer.model == f"pair:{a}+{b}"].set_index("game")["balanced_accuracy"]
            joint.loc[a, b], joint.loc[b, a] = part.get(a, np.nan), part.get(b, np.nan)
        benefit = benefit_matrix(joint, single)
        write_csv(benefit, out / "benefit_matrix.csv")
        write_json(knn_predicts_benefit(knn, benefit), out / "knn_benefit.json")
    timings["analysis_s"] = time.perf_counter() - t0
    return {"dataset": dataset_id, "store": str(store), "games": games, "models": models, "timings": timings}


def run_study(cfg: StudyConfig | None = None, progress: bool = True) -> Path:
    """Run (or resume: trained models and cached embeddings are reused) a study; returns its folder."""
    cfg = cfg or StudyConfig()
    folder = studies_dir() / cfg.study_id
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    record = {"config": asdict(cfg), "code_version": code_version(), "started": now_utc(), "domains": {}}
    with tqdm(cfg.domains, desc="study", unit="domain", disable=not progress) as bar:
        for dataset_id in bar:
            record["domains"][dataset_id] = run_domain(dataset_id, cfg, folder / dataset_id, bar)
            write_json(record, folder / "study.json")
    record["finished"] = now_utc()
    record["wall_s"] = time.perf_counter() - started
    write_json(record, folder / "study.json")
    return folder
