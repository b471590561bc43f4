"""Seed 000 end to end on the catalog: train the model variants, extract embeddings, run every
analysis, and save the results as tables a report, a notebook or the dashboard can read.

One study = one folder ``<studies>/<study_id>/`` holding ``study.json`` (config, stages, model
ids, timings, code version: :mod:`workbench.study.framework`; one stage per domain) and, per domain, ``<domain>/*.csv`` tables, ``<domain>/points-*.csv``
projections and ``<domain>/test_predictions.csv`` (every method's steering prediction per
labeled test frame, with its split block, for bootstrap intervals over test blocks) and
``<domain>/units.csv`` (the claims ledger's per-block probe, geometry and movement-key rows). Nothing
here plots; :mod:`workbench.methods.idm.report` declares the results rendered from them.

Every analysis set beside the IDM's zero-shot accuracy uses frames it never trained on: probes
on its validation + test frames (scored on test), geometry on test frames, KNN queries from test
against validation references. Every model gets the same updates per game (:func:`steps_for`).
Three seeds vary one thing each: ``data_seed`` the recordings, ``seed`` the models'
initialisation and batches, ``draw_seed`` the analyses' draws (few-shot and ceiling labels,
unlabeled calibration frames, plotted points).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from functools import partial
from itertools import combinations
from pathlib import Path
from typing import ClassVar, Sequence

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from ...core.errors import ConfigError
from ...analysis.calibration import (calibration_gap, few_shot, few_shot_curve, few_shot_predictions,
                                    percentile_calibration, percentile_sweep)
from ...analysis.geometry import interleaving, knn_preservation, project, silhouette_scores
from ...analysis.knn import benefit_matrix, knn_matrix, knn_predicts_benefit
from ...analysis.leaks import LeakError, audit_summary, cached_audit, refuse_leaks
from ...analysis.metrics import accuracy_table
from ...analysis.probes import CONTROLS, HELD_OUT, linear_probe
from ...analysis.probes import VARIANTS as PROBE_VARIANTS
from ...analysis.summary import dataset_summary
from ...analysis.tables import proxy_arm
from ...data.catalog import get_entry, materialise
from ...data.store import derived_path, is_complete, open_dataset
from ...flow import compute_flow
from ...core.paths import cache_dir
from . import TrainConfig, extract_embeddings, make_config, train
from ...study.files import train_in_processes, write_csv, write_json
from ...engine.ids import identity_hash
from ...study.framework import BaseStudyConfig, StudyRun, run_stages
from ...study.ledger import UNITS, accuracy_units, geometry_units, probe_units

DOMAINS = ("racing", "atari", "first_person")
#: Training budgets per catalog size: optimiser steps (batch 64) *per game* (a model trained on
#: n games runs n × ``steps``, see :func:`steps_for`), and steps of the fine-tuned ceilings (one
#: game each). The demo budget (3,816 steps over 62 models: 7 % fewer steps than the earlier
#: 4,110-step, 52-model demo, to pay for the extra models' evaluation) fits the whole study in
#: about 15 minutes on 2 CPU cores (estimated from the step counts); use `full` (or --steps) for
#: numbers worth quoting. ``quotable`` trains every model until its validation loss stops
#: improving (``patience`` evaluations every ``eval_every`` steps; the step counts are caps) on
#: the ``demo`` recordings; run ≥ 3 seeds (`workbench findings run`). Measured on seed 0 with
#: evaluations 50 steps apart and the summed validation loss of every head, 50 of 62 models
#: stopped with their best at step 50 or 100 while the main head's validation balanced accuracy
#: was still rising, and the two Enduro models had no validation block (fixed by ENGINE_VERSION
#: 2's split); the main head's class-balanced cross-entropy did the same. Early stopping now
#: watches the main head's balanced error (:func:`~workbench.methods.idm.training.validation_loss`)
#: every 25 steps, with a patience of 6 (a model stops 150 steps after its best evaluation, whose
#: weights it keeps): the ~130 validation pairs of a demo game make any validation number noisy.
#: With a cap of 250 steps a game (300 for ceilings), 51 of 186 models over seeds 0–2 (20 of 33
#: single-game ones) were still improving at their cap while joint models stopped early, which
#: could bias "joint helps the small game"; at caps of 600 a game (600 for ceilings) 185 of 186
#: stopped early and the ledger's verdicts were unchanged (docs/findings/seed000.md, Training).
BUDGETS = {
    "tiny": {"steps": 4, "finetune_steps": 10, "split_block": 4},
    "demo": {"steps": 30, "finetune_steps": 36, "split_block": 64},
    "full": {"steps": 1000, "finetune_steps": 500, "split_block": 64},
    "quotable": {"steps": 600, "finetune_steps": 600, "split_block": 64, "patience": 6, "eval_every": 25,
                 "data_size": "demo"},
}
VARIANTS = ("joint_v1", "joint_v2", "joint_v3")
#: What the proxy arm trains the steering head on (seed 000 trained Atari on Farneback labels).
PROXY_TARGETS = {"steer": "flow_steer"}
MAX_POINTS = None  # points per projection: every labeled test frame (None), or a random subset of this many
PROJECTION_SAMPLE = 10_000  # projections are fitted on this many points and extended to the others
FEW_SHOT_DRAWS = 5  # label draws per game for the few-shot boundary



@dataclass
class StudyConfig(BaseStudyConfig):
    """What a study runs. ``steps`` (per game) and ``finetune_steps`` default to the size's budget.

    ``data_seed`` records the data, ``seed`` initialises and trains the models, ``draw_seed``
    draws the analyses' labels and frames; ``proxy_domains`` also train every single and joint
    model on the flow-proxy steering labels. The study id is ``seed000-<size>-s<seed>-d<data
    seed>-r<draw seed>-<hash>``, the hash over every setting that changes a result
    (:mod:`workbench.study.framework`).
    """

    paper: ClassVar[str] = "seed000"
    budgets: ClassVar[dict[str, dict]] = BUDGETS
    size: str = "demo"
    seed: int = 0
    data_seed: int = 0
    draw_seed: int = 0
    domains: list[str] = field(default_factory=lambda: list(DOMAINS))
    steps: int | None = None
    finetune_steps: int | None = None
    split_block: int | None = None
    proxy_domains: list[str] = field(default_factory=lambda: ["atari"])
    pairwise: bool = True
    k_per_class: int = 50
    ceiling_fraction: float = 0.2
    percentile: float = 67.0
    projections: list[str] = field(default_factory=lambda: ["tsne", "umap"])
    workers: int = field(default_factory=lambda: min(2, os.cpu_count() or 1))
    allow_leaks: bool = False  # report a domain even when its leak audit flags a region
    study_id: str | None = None
    patience: int | None = None  # early stopping (evaluations without a better validation loss)
    eval_every: int | None = None  # validation interval (None: once, at the end)
    data_size: str | None = None  # the catalog size recorded (None: ``size``)

    FIELD_HELP: ClassVar[dict[str, str]] = {
        "data_seed": "Recording seed of the catalog data.",
        "draw_seed": "Seed of the analyses' draws (few-shot and ceiling labels, calibration frames, plotted points).",
        "domains": "racing, atari, first_person (default all).",
        "steps": "Training steps per game (a model on n games runs n × steps; default: the size's budget).",
        "finetune_steps": "Steps of each calibrated ceiling's fine-tune (default: the size's budget).",
        "split_block": "Frames per block of the train/val/test split (default: the size's budget).",
        "proxy_domains": "Domains whose single and joint models are also trained on flow-proxy steering labels.",
        "pairwise": "Train pairwise joint models to test whether KNN predicts benefit.",
        "k_per_class": "Labeled frames per class of the few-shot calibration.",
        "ceiling_fraction": "Fraction of a game's train labels the calibrated ceiling fine-tunes on.",
        "percentile": "Percentile of the flow magnitude the calibration's neutral threshold sits at.",
        "projections": "2-D projections of the embeddings to draw: tsne, umap.",
        "allow_leaks": "Report a domain even if its leak audit flags a region that shows the label in a single frame.",
        "patience": "Early stopping: evaluations without a better validation loss (default: the size's budget).",
        "eval_every": "Validation interval in steps (default: the size's budget; none: once, at the end).",
    }

    def validate(self) -> None:
        unknown = (set(self.domains) | set(self.proxy_domains)) - set(DOMAINS)
        if unknown:
            raise ConfigError(f"unknown domains {sorted(unknown)}; known: {DOMAINS}")

    def id_parts(self) -> list[str]:
        return [f"d{self.data_seed}", f"r{self.draw_seed}"]


def steps_for(cfg: StudyConfig, n_games: int) -> int:
    """The study's budget rule: every model gets the same updates per game, so a model trained
    on ``n_games`` games runs ``cfg.steps × n_games`` optimiser steps (a single-game model
    ``steps``, a pair twice, a joint model on G games G times as many)."""
    return cfg.steps * n_games


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


def _config(key: str, preset: str, cfg: StudyConfig, dataset_id: str, n_games: int, steps: int | None = None,
            **overrides) -> TrainConfig:
    """One model of the study, trained on ``n_games`` games for :func:`steps_for` steps (or
    ``steps``). Its library id ``seed000-<size>.<dataset>.<key>-<hash of its config and the engine
    version>`` is shared by
    every study that trains the same model (replicates varying only the draw seed reuse it)."""
    steps = steps_for(cfg, n_games) if steps is None else steps
    config = make_config(preset, datasets=[dataset_id], size=cfg.data_size or cfg.size, data_seed=cfg.data_seed,
                         seed=cfg.seed, steps=steps, split_block=cfg.split_block,
                         eval_every=min(cfg.eval_every or steps, steps), patience=cfg.patience, **overrides)
    return config.replace(model_id=f"seed000-{cfg.size}.{dataset_id}.{key}-{identity_hash(config.identity())}")


def model_configs(dataset_id: str, games: list[str], cfg: StudyConfig) -> dict[str, TrainConfig]:
    """The models a domain trains from scratch, by study name: ``single:<game>``, ``joint_v1..3``,
    ``pair:<a>+<b>`` (domains with more than two games) and, for ``cfg.proxy_domains``, the same
    single and joint models trained on the flow-proxy steering labels (``proxy:single:<game>``,
    ``proxy:joint_v3`` …)."""
    arms = {"": {}, "proxy:": {"targets": PROXY_TARGETS}} if dataset_id in cfg.proxy_domains else {"": {}}
    configs = {}
    for prefix, overrides in arms.items():
        tag = prefix.replace(":", "-")
        configs.update({f"{prefix}single:{g}": _config(f"{tag}single-{g}", "single", cfg, dataset_id, 1, games=[g],
                                                       **overrides) for g in games})
        configs.update({prefix + v: _config(tag + v, v, cfg, dataset_id, len(games), **overrides) for v in VARIANTS})
    for a, b in combinations(games, 2) if cfg.pairwise and len(games) > 2 else []:
        configs[f"pair:{a}+{b}"] = _config(f"pair-{a}-{b}", "joint_v1", cfg, dataset_id, 2, games=[a, b])
    return configs


def ceiling_configs(dataset_id: str, games: list[str], cfg: StudyConfig, init_from: str) -> dict[str, TrainConfig]:
    """``ceiling:<game>``: ``init_from`` (joint v3) fine-tuned on ``ceiling_fraction`` of the game's
    train labels (drawn with the draw seed), keeping its balanced sampling and flips."""
    return {f"ceiling:{g}": _config(f"ceiling-{g}", "finetune_pct", cfg, dataset_id, 1, steps=cfg.finetune_steps,
                                    init_from=init_from,
                                    finetune={"game": g, "fraction": cfg.ceiling_fraction, "seed": cfg.draw_seed})
            for g in games}


def _scored_games(name: str, games: list[str]) -> list[str]:
    """The games a study model was trained on, and is scored on."""
    kind, _, rest = name.removeprefix("proxy:").partition(":")
    return [rest] if kind in ("single", "ceiling") else rest.split("+") if kind == "pair" else games


def _column(name: str) -> str:
    """A study model's column in ``test_predictions.csv``: ``single``, ``ceiling``, ``joint_v3``,
    ``proxy_single``, ``proxy_joint_v3`` … (the per-game models of a kind share one column)."""
    return ("proxy_" if name.startswith("proxy:") else "") + name.removeprefix("proxy:").split(":", 1)[0]


def _train_id(config: TrainConfig) -> str:
    return train(config, progress=False).model_id


def _train_all(configs: dict[str, TrainConfig], workers: int, bar: tqdm, label: str) -> dict[str, str]:
    bar.set_postfix_str(f"{label}: training {len(configs)} models")
    return train_in_processes(_train_id, configs, workers)


def run_domain(dataset_id: str, cfg: StudyConfig, out: Path, bar: tqdm) -> dict:
    """Everything seed 000 reports for one domain; tables go to ``out``. Returns model ids + timings."""
    t0 = time.perf_counter()
    size = cfg.data_size or cfg.size
    store = _prepare_data(dataset_id, size, cfg.data_seed)
    data = open_dataset(store)
    games = list(dict.fromkeys(np.asarray(data["game"].values).astype(str)))
    write_csv(dataset_summary(data), out / "data_summary.csv")
    timings = {"data_s": time.perf_counter() - t0}
    t0 = time.perf_counter()
    audit = cached_audit(store, data, accepted=get_entry(dataset_id).accepted_cues())  # single frame vs motion
    write_csv(audit, out / "leak_audit.csv", index=False)
    bar.write(f"{dataset_id}: {audit_summary(audit)}")
    if not cfg.allow_leaks:
        refuse_leaks(audit, f"domain {dataset_id}")
    timings["leak_audit_s"] = time.perf_counter() - t0

    # --- models: single-game, joint v1/v2/v3, pairwise joint, proxy arm, then the ceilings -------
    t0 = time.perf_counter()
    configs = model_configs(dataset_id, games, cfg)
    pairs = [tuple(name[5:].split("+")) for name in configs if name.startswith("pair:")]
    models = _train_all(configs, cfg.workers, bar, dataset_id)
    models.update(_train_all(ceiling_configs(dataset_id, games, cfg, models["joint_v3"]), cfg.workers, bar, dataset_id))
    timings["train_s"] = time.perf_counter() - t0

    # --- Tables 1-2: balanced accuracy of every model on every game's test frames -------------
    t0 = time.perf_counter()
    bar.set_postfix_str(f"{dataset_id}: evaluate")
    main = extract_embeddings(models["joint_v3"], dataset_id, split="all", size=size, seed=cfg.data_seed,
                              progress=False)
    test = main.isel(frame=np.flatnonzero(main["split"].values == "test"))
    rows, predictions = [], {}
    for name, model_id in models.items():
        emb = test if name == "joint_v3" else extract_embeddings(model_id, dataset_id, split="test", size=size,
                                                                 seed=cfg.data_seed, progress=False)
        emb = emb.isel(frame=np.flatnonzero(np.isin(emb["game"].values, _scored_games(name, games))))
        rows.append(_accuracy(emb, name))
        if not name.startswith("pair:"):
            predictions.setdefault(_column(name), []).append(_frame_series(emb, emb["pred_steer"].values))
    accuracy = pd.concat(rows, ignore_index=True)
    write_csv(accuracy, out / "accuracy.csv", index=False)
    if dataset_id in cfg.proxy_domains:
        write_csv(proxy_arm(accuracy), out / "proxy_arm.csv", index=False)
        write_csv(proxy_balance(test), out / "proxy_balance.csv", index=False)
    timings["evaluate_s"] = time.perf_counter() - t0

    # --- calibration: zero-shot vs few-shot vs ceiling; zero-label flow percentiles ----------
    t0 = time.perf_counter()
    steer = accuracy[accuracy["head"] == "steer"]
    zero = steer[steer.model == "joint_v3"].set_index("game")["balanced_accuracy"]
    ceiling = steer[steer.model.str.startswith("ceiling:")].set_index("game")["balanced_accuracy"]
    shots = few_shot(main, head="steer", k=cfg.k_per_class, seeds=FEW_SHOT_DRAWS, seed=cfg.draw_seed)
    draws = few_shot_predictions(main, head="steer", k=cfg.k_per_class, seeds=FEW_SHOT_DRAWS, seed=cfg.draw_seed)
    flow_sign = data.attrs.get("flow_sign", {})
    pct, pct_pred = percentile_calibration(main, head="steer", percentile=cfg.percentile, flow_sign=flow_sign,
                                           seed=cfg.draw_seed, return_predictions=True)
    auto, auto_pred = percentile_calibration(main, head="steer", percentile="auto", flow_sign=flow_sign,
                                             seed=cfg.draw_seed, return_predictions=True)
    sweep = percentile_sweep(main, head="steer", flow_sign=flow_sign, seed=cfg.draw_seed)
    write_csv(shots, out / "few_shot.csv", index=False)
    write_csv(few_shot_curve(main, head="steer", seeds=3, seed=cfg.draw_seed), out / "few_shot_curve.csv", index=False)
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
    for column, table, source in (("flow_percentile", pct_pred, "flow-model"), ("flow_auto", auto_pred, "flow-model"),
                                  ("model_percentile", pct_pred, "model-model")):
        predictions[column] = [_frame_series(main.isel(frame=table.index.to_numpy()), table[source].to_numpy())]
    for draw in draws.columns.drop("game"):
        predictions[f"few_shot_{draw}"] = [_frame_series(main.isel(frame=draws.index.to_numpy()), draws[draw].to_numpy())]
    write_csv(prediction_table(test, predictions, cfg.split_block), out / "test_predictions.csv", index=False)
    timings["calibration_s"] = time.perf_counter() - t0

    # --- information present (held-out frames), geometry (test frames), cross-game KNN --------
    t0 = time.perf_counter()
    probes, probe_predictions = linear_probe(main, variants=(*PROBE_VARIANTS, *CONTROLS), block=cfg.split_block,
                                             seed=cfg.draw_seed, return_predictions=True, **HELD_OUT)
    write_csv(probes, out / "probes.csv", index=False)
    labeled = np.flatnonzero((test["steer"].values >= 0))
    rng = np.random.default_rng(cfg.draw_seed)
    pick = labeled if MAX_POINTS is None else np.sort(rng.choice(labeled, min(MAX_POINTS, len(labeled)), replace=False))
    sub = test.isel(frame=pick)
    x = sub["embedding"].values
    classes = np.array(main["steer"].attrs["classes"])
    action = classes[sub["steer"].values]
    game = sub["game"].values.astype(str)
    sil, sil_rows = silhouette_scores(x, action, game, seed=cfg.draw_seed, return_values=True)
    geometry = {"silhouette_" + k: v for k, v in sil.items()}
    inter, inter_rows = interleaving(x, action, game, return_values=True)
    write_csv(inter, out / "interleaving.csv")
    block = sub["source_frame"].values // cfg.split_block
    units = [probe_units(main, probe_predictions, cfg.split_block), geometry_units(sil_rows, inter_rows, game, block)]
    units += [accuracy_units(test, "joint_v3", "key_w", cfg.split_block)] if "pred_key_w" in test else []
    write_csv(pd.concat(units, ignore_index=True), out / UNITS, index=False)  # steer accuracy: test_predictions
    for method in cfg.projections:
        xy = project(x, method=method, seed=cfg.draw_seed, cache_dir=cache_dir() / "projections",
                     sample=PROJECTION_SAMPLE)
        geometry[f"knn_preservation_{method}"] = knn_preservation(x, xy, k=10, sample=1000, seed=cfg.draw_seed)
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
    steps = {name: c.steps for name, c in configs.items()}
    return {"dataset": dataset_id, "store": str(store), "games": games, "models": models, "steps": steps,
            "timings": timings}


def _frame_series(emb: xr.Dataset, codes: np.ndarray) -> pd.Series:
    """Steering predictions (class names) of ``emb``'s frames, indexed by (game, source_frame)."""
    classes = np.array(emb["steer"].attrs["classes"])
    index = pd.MultiIndex.from_arrays([emb["game"].values.astype(str), emb["source_frame"].values],
                                      names=["game", "source_frame"])
    return pd.Series(np.where(np.asarray(codes) >= 0, classes[np.maximum(codes, 0).astype(np.int64)], ""), index=index)


def prediction_table(test: xr.Dataset, predictions: dict[str, list[pd.Series]], block: int) -> pd.DataFrame:
    """One row per labeled test frame: ``game``, ``episode``, ``step``, ``source_frame``,
    ``block`` (its split block, the unit to resample for bootstrap intervals), ``steer`` (the
    true class) and one column of predicted classes per method (empty where it made none)."""
    keep = test["steer"].values >= 0
    labeled = test.isel(frame=np.flatnonzero(keep))
    base = pd.DataFrame({"game": labeled["game"].values.astype(str), "episode": labeled["episode"].values,
                         "step": labeled["step"].values, "source_frame": labeled["source_frame"].values,
                         "block": labeled["source_frame"].values // int(block)})
    base["steer"] = np.array(labeled["steer"].attrs["classes"])[labeled["steer"].values]
    key = pd.MultiIndex.from_frame(base[["game", "source_frame"]])
    for column, parts in predictions.items():
        base[column] = pd.concat(parts).reindex(key).fillna("").to_numpy()
    return base


def proxy_balance(test: xr.Dataset) -> pd.DataFrame:
    """Per game: the class shares of the stored flow-proxy steering labels (``flow_steer``, what
    the proxy arm trains on) over the labeled test frames, and the proxy's balanced accuracy
    against the true labels there. Columns ``game``, ``n``, ``proxy_<CLASS>`` …, ``proxy_balanced_accuracy``."""
    classes = list(test["steer"].attrs["classes"])
    proxy = test["flow_steer"].values
    keep = (test["steer"].values >= 0) & (proxy >= 0)
    game = test["game"].values.astype(str)[keep]
    shares = pd.crosstab(game, pd.Categorical(np.array(classes)[proxy[keep]], classes), normalize="index",
                         dropna=False).add_prefix("proxy_")
    agree = accuracy_table(test, heads=["steer"], pred="flow_steer").set_index("game")
    out = shares.join(agree["balanced_accuracy"].rename("proxy_balanced_accuracy"))
    out.insert(0, "n", pd.Series(game).value_counts())
    return out.rename_axis("game").reset_index()


def _domain_stage(dataset_id: str, run: StudyRun) -> None:
    """The stage of one domain: its results under ``record["domains"]``, or why it was refused."""
    try:
        run.record.setdefault("domains", {})[dataset_id] = run_domain(dataset_id, run.cfg, run.folder / dataset_id,
                                                                      run.bar)
    except LeakError as exc:
        run.record.setdefault("refused", {})[dataset_id] = str(exc)


def run_study(cfg: StudyConfig | None = None, progress: bool = True, rerun: Sequence[str] = ()) -> Path:
    """Run (or resume) a study, one stage per domain; returns its folder. A resumed run skips the
    domains an earlier sitting finished, except those named in ``rerun``; within a domain, trained
    models and cached embeddings are reused.

    A domain whose leak audit flags a leak (and ``cfg.allow_leaks`` is off) is refused: nothing of
    it is trained or reported, the record's ``refused`` says why, and the other domains go on."""
    cfg = cfg or StudyConfig()
    return run_stages(cfg, [(d, partial(_domain_stage, d)) for d in cfg.domains], progress, rerun=rerun)
