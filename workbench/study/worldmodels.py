"""Seed 002 as one batch run: a capacity sweep of latent-action world models on one catalog
dataset, their controllers, and every evaluation the paper reports, saved as tables and pictures
a report, a notebook or the dashboard can read.

One run = one folder ``<studies>/<study_id>/`` holding ``worldmodels.json`` (config, model ids,
timings, code version) and:

``capacity.csv``      one-step and rollout errors per model (the capacity figure, §5)
``leakage.csv``       future leakage under scene cuts (Table 1)
``cycle.csv``         transfer cycle consistency within and across games (Table 2)
``health.csv``        the one-row-per-model health table
``probes.csv``        linear / KNN probes of the true actions on the latents, per game
``controllers.csv``   rollouts driven by IDM latents vs controllers vs random actions (Tables S1/S2, left)
``planning.csv``      CEM goal-reaching errors per episode and method (Tables S1/S2, right)
``samples/<m>.csv``   inferred vs sampled latents in 2-D (Figure S1)
``filmstrips/<m>.png|.gif``  transfer filmstrips (Figure 7); ``planning/<m>-e<k>.png`` planning rollouts

Models go to the model library under study-scoped ids ``<study>.<name>``; re-running reuses every
finished model (and resumes interrupted ones). Nothing here plots;
:mod:`workbench.study.wm_report` renders the saved results.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..data.catalog import get_entry, materialise
from ..data.store import open_dataset
from ..models.library import load_card
from ..paths import check_id
from ..provenance import code_version, now_utc
from ..worldmodel import (ControllerConfig, WorldModelConfig, capacity, controller_rollouts, cycle_consistency,
                          future_leakage, health_summary, latent_actions, latent_probes, planning_eval,
                          planning_filmstrip, sample_latents, sample_projection, save_filmstrip, save_gif,
                          sweep_configs, train_autoencoder, train_controller, train_world_model, transfer_filmstrip)
from .files import train_in_processes, write_csv, write_json
from .runner import studies_dir

RECORD = "worldmodels.json"
#: Knob values per family, lowest capacity first (the paper's sweeps have 4-8 values; two bracket
#: the range on a CPU budget — pass ``sweeps`` for more).
DEFAULT_SWEEPS = {"sparse": [0.1, 0.005], "noisy": [1e-3, 5e-5], "discrete": [16, 256]}
#: What each catalog size trains and evaluates: world-model / autoencoder / controller steps,
#: clips per evaluation, planning episodes, CEM settings, extra WorldModelConfig fields.
BUDGETS = {
    "tiny": {"steps": 4, "encoder_steps": 4, "controller_steps": 3, "n_clips": 8, "episodes": 2,
             "cem": {"n_samples": 16, "top_k": 4, "iterations": 2},
             "model": {"split_block": 8, "clip_length": 4, "input_size": 32, "encoder_width": 8, "rep_channels": 4,
                       "latent_dim": 8, "d_model": 16, "depth": 1, "n_heads": 2, "idm_width": 8, "batch_size": 4,
                       "chunks_per_batch": 2, "eval_every": 2, "checkpoint_every": 2, "eval_clips": 8},
             "sweeps": {"sparse": [0.1], "noisy": [1e-3], "discrete": [4]}},
    "demo": {"steps": 3000, "encoder_steps": 1500, "controller_steps": 1500, "n_clips": 128, "episodes": 32,
             "cem": {}, "model": {}, "sweeps": DEFAULT_SWEEPS},
    "full": {"steps": 10000, "encoder_steps": 3000, "controller_steps": 3000, "n_clips": 256, "episodes": 64,
             "cem": {}, "model": {},
             "sweeps": {"sparse": [0.1, 0.04, 0.01, 0.005], "noisy": [5e-3, 5e-4, 5e-5, 5e-6],
                        "discrete": [16, 256, 1024]}},
    # every model (autoencoder, world models, controllers) until its validation loss stops
    # improving for 3 evaluations 250 steps apart, the step counts as caps, on the demo recordings
    "quotable": {"steps": 3000, "encoder_steps": 1500, "controller_steps": 1500, "n_clips": 256, "episodes": 64,
                 "cem": {}, "model": {"patience": 3, "eval_every": 250}, "sweeps": DEFAULT_SWEEPS,
                 "data_size": "demo"},
}
#: Sampled latents per model for the Figure S1 projection, and filmstrips/planning rollouts saved.
N_SAMPLES, N_FILMSTRIPS, N_PLANNING_STRIPS = 1000, 2, 3


@dataclass
class WorldModelStudyConfig:
    """What a seed 002 batch run trains and evaluates; ``None`` fields take the size's budget."""

    dataset: str = "first_person"
    size: str = "demo"
    seed: int = 0
    sweeps: dict[str, list] | None = None
    controllers: list[str] = field(default_factory=lambda: ["xattn", "mlp"])
    steps: int | None = None
    encoder_steps: int | None = None
    controller_steps: int | None = None
    n_clips: int | None = None
    episodes: int | None = None
    cem: dict | None = None
    model: dict | None = None
    workers: int = field(default_factory=lambda: min(2, os.cpu_count() or 1))
    study_id: str | None = None
    data_size: str | None = None  # the catalog size recorded (None: ``size``)

    def __post_init__(self):
        budget = BUDGETS.get(self.size, BUDGETS["demo"])
        custom = any(getattr(self, k) not in (None, v) for k, v in budget.items())
        for key, value in budget.items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        unknown = set(self.sweeps) - {"sparse", "noisy", "discrete"}
        if unknown:
            raise ValueError(f"sweeps: unknown families {sorted(unknown)}; expected sparse, noisy, discrete")
        if self.study_id is None:  # a non-default budget is another run (and other models)
            tag = hashlib.sha1(json.dumps({k: getattr(self, k) for k in budget}, sort_keys=True).encode()).hexdigest()
            self.study_id = f"seed002-{self.dataset}-{self.size}-s{self.seed}" + (f"-{tag[:6]}" if custom else "")
        check_id(self.study_id, "study id")

    def base(self) -> WorldModelConfig:
        """The world-model config every model of the run starts from."""
        return WorldModelConfig(datasets=[self.dataset], size=self.data_size or self.size, data_seed=self.seed,
                                seed=self.seed,
                                steps=self.steps, encoder_steps=self.encoder_steps, **self.model)


def _name(cfg: WorldModelConfig) -> str:
    """``noisy-beta5e-05``, ``zero``, ``action-motion``: a model's name inside the run."""
    if cfg.knob is not None:
        return f"{cfg.family}-{cfg.knob[0]}{cfg.knob[1]:g}"
    return cfg.family + (f"-{cfg.action_space}" if cfg.family == "action" else "")


def _has_motion(store: Path) -> bool:
    return all(v in open_dataset(store) for v in ("pos_x", "pos_y", "angle"))


def world_model_configs(cfg: WorldModelStudyConfig, encoder: str, action_space: str) -> dict[str, WorldModelConfig]:
    """The run's world models by name: each family's sweep, the deterministic baseline and the
    model conditioned on true actions."""
    base = cfg.base().replace(encoder=encoder)
    configs = [c for family, values in cfg.sweeps.items() for c in sweep_configs(family, values, base)]
    configs += [base.replace(family="zero"), base.replace(family="action", action_space=action_space)]
    return {_name(c): c.replace(model_id=f"{cfg.study_id}.{_name(c)}") for c in configs}


def _stopping(model: dict) -> dict:
    """The early-stopping settings of the run's model budget, for its controllers too (none unset)."""
    return {k: model[k] for k in ("patience", "eval_every") if k in model} if model.get("patience") else {}


def _frame(rows: list[pd.DataFrame]) -> pd.DataFrame:
    rows = [r for r in rows if len(r)]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def run_worldmodel_study(cfg: WorldModelStudyConfig | None = None, progress: bool = True) -> Path:
    """Train (or reuse) the run's models, evaluate them, write the tables; returns the folder."""
    cfg = cfg or WorldModelStudyConfig()
    folder = studies_dir() / cfg.study_id
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    record = {"kind": "worldmodels", "config": asdict(cfg), "code_version": code_version(), "started": now_utc(),
              "timings": {}}
    stages = ["data", "autoencoder", "world models", "controllers", "evaluate", "planning", "pictures"]
    bar = tqdm(stages, desc="seed 002", unit="stage", disable=not progress)
    timer = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal timer
        record["timings"][f"{name.replace(' ', '_')}_s"] = round(time.perf_counter() - timer, 1)
        write_json(record, folder / RECORD)
        bar.update(1)
        timer = time.perf_counter()

    store = materialise(get_entry(cfg.dataset), size=cfg.data_size or cfg.size, seed=cfg.seed)
    space = "motion" if _has_motion(store) else "inputs"
    record.update(dataset=cfg.dataset, store=str(store), action_space=space)
    stage("data")

    encoder = train_autoencoder(cfg.base().autoencoder_config().replace(model_id=f"{cfg.study_id}.frameae"),
                                progress=False)
    record["encoder"] = encoder
    stage("autoencoder")

    configs = world_model_configs(cfg, encoder, space)
    bar.set_postfix_str(f"training {len(configs)} world models")
    worlds = train_in_processes(partial(train_world_model, progress=False), configs, cfg.workers)
    record["world_models"] = worlds
    latent = {n: m for n, m in worlds.items() if configs[n].family not in ("zero", "action")}
    stage("world models")

    controller_configs = {
        f"{kind}:{name}": ControllerConfig(world_model=world, kind=kind, action_space=space, seed=cfg.seed,
                                           steps=cfg.controller_steps, model_id=f"{cfg.study_id}.ctrl-{kind}.{name}",
                                           **_stopping(cfg.model))
        for name, world in latent.items() for kind in cfg.controllers}
    bar.set_postfix_str(f"training {len(controller_configs)} controllers")
    controllers = train_in_processes(partial(train_controller, progress=False), controller_configs, cfg.workers)
    record["controllers"] = controllers
    record["training_s"] = {m: load_card(m)["training"]["seconds"]
                            for m in [encoder, *worlds.values(), *controllers.values()]}
    stage("controllers")

    bar.set_postfix_str("capacity, leakage, cycle, health, probes")
    n = cfg.n_clips
    write_csv(capacity(list(worlds.values()), n_clips=n), folder / "capacity.csv", index=False)
    write_csv(future_leakage(list(latent.values()), n_clips=n, seed=cfg.seed), folder / "leakage.csv", index=False)
    write_csv(cycle_consistency(list(latent.values()), n_clips=n, seed=cfg.seed), folder / "cycle.csv", index=False)
    write_csv(health_summary(list(worlds.values()), n_clips=n), folder / "health.csv", index=False)
    probes = []
    for name, world in latent.items():
        ds = latent_actions(world)
        heads = [h for h in ds.attrs.get("heads", []) if h in ds]
        probes.append(latent_probes(ds, heads).assign(model=name, model_id=world))
        inferred = ds["embedding"].values[np.random.default_rng(cfg.seed).permutation(ds.sizes["frame"])[:N_SAMPLES]]
        sampled = sample_latents(world, len(inferred), seed=cfg.seed, inferred=inferred)
        write_csv(sample_projection(inferred, sampled, seed=cfg.seed), folder / "samples" / f"{name}.csv", index=False)
    write_csv(_frame(probes), folder / "probes.csv", index=False)
    stage("evaluate")

    bar.set_postfix_str("controller rollouts, CEM planning")
    by_world = {name: [controllers[f"{k}:{name}"] for k in cfg.controllers] for name in latent}
    write_csv(_frame([controller_rollouts(latent[name], ctrls, n_clips=n, seed=cfg.seed).assign(model=name)
                      for name, ctrls in by_world.items()]), folder / "controllers.csv", index=False)
    if space == "motion":  # the same episodes for every planner; the action model plans once
        planners = {name: (latent[name], ctrls, None) for name, ctrls in by_world.items()}
        planners["action-motion"] = (worlds["action-motion"], [], worlds["action-motion"])
        plans = [planning_eval(world, ctrls, action, n_episodes=cfg.episodes, seed=cfg.seed, **cfg.cem)
                 .assign(model=name) for name, (world, ctrls, action) in planners.items()]
        write_csv(_frame(plans), folder / "planning.csv", index=False)
    stage("planning")

    bar.set_postfix_str("filmstrips and planning rollouts")
    for name, world in latent.items():
        for k in range(N_FILMSTRIPS):
            rows = transfer_filmstrip(world, clip=k, seed=cfg.seed + k)
            save_filmstrip(rows, folder / "filmstrips" / f"{name}-{k}.png")
            save_gif([rows["source"], rows["target"], rows["transferred"], rows["cycled"]],
                     folder / "filmstrips" / f"{name}-{k}.gif")
        if space == "motion":
            planner = controllers[f"{cfg.controllers[0]}:{name}"]
            for e in range(min(N_PLANNING_STRIPS, cfg.episodes)):
                rows = planning_filmstrip(world, planner, episode=e, n_episodes=cfg.episodes, seed=cfg.seed, **cfg.cem)
                save_filmstrip(rows, folder / "planning" / f"{name}-e{e}.png", scale=3)
    if space == "motion":
        for e in range(min(N_PLANNING_STRIPS, cfg.episodes)):
            rows = planning_filmstrip(worlds["action-motion"], worlds["action-motion"], episode=e,
                                      n_episodes=cfg.episodes, seed=cfg.seed, **cfg.cem)
            save_filmstrip(rows, folder / "planning" / f"action-motion-e{e}.png", scale=3)
    stage("pictures")
    bar.close()
    record["finished"] = now_utc()
    record["wall_s"] = round(time.perf_counter() - started, 1)
    write_json(record, folder / RECORD)
    return folder
