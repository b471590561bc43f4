"""Latent-action world-model throughput on the first_person demo recording: autoencoder and
world-model training steps/s at the default (CPU-sized) config, the default training time they
imply, and CEM plans/s at the paper's settings (N=300, K=10, 15 iterations, horizon 3).

Runs on the CPU and, when CUDA is available, on the GPU too, in a temporary model library.
Training steps include zarr reads and resizing (the real loop). Figures are measured, never asserted.
"""

from __future__ import annotations

import os
import tempfile
import time
from unittest import mock

import torch

from workbench.data.catalog import get_entry, materialise
from workbench.methods.worldmodel import (ControllerConfig, WorldModelConfig, plan, train_autoencoder, train_controller,
                                  train_world_model)
from workbench.methods.worldmodel.evaluate import load_clips, resolve_model

from .idm import devices

DATASET = "first_person"


def _timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def run(workers: int | None = None, steps: int = 60, plans: int = 8) -> dict:
    materialise(get_entry(DATASET), size="demo")
    out = {"dataset": DATASET, "steps": steps, "plans": plans, "torch_threads": torch.get_num_threads(), "devices": {}}
    default = WorldModelConfig(datasets=[DATASET], size="demo")
    with tempfile.TemporaryDirectory() as library, mock.patch.dict(os.environ, {"WORKBENCH_MODELS": library}):
        for device in devices():
            out["devices"][device] = _measure(device, default, steps, plans)
    return out


def _measure(device: str, default: WorldModelConfig, steps: int, plans: int) -> dict:
    """Training rates of the default config and CEM plans/s on ``device``."""
    # The autoencoder and world model train ``steps`` steps, stopping with a checkpoint
    # (max_steps); a short finished pair then serves the controller and planning timings.
    ae_cfg = default.autoencoder_config().replace(device=device, model_id=f"bench-ae-{device}")
    ae_s = _timed(train_autoencoder, ae_cfg, max_steps=steps, progress=False)
    encoder = train_autoencoder(ae_cfg.replace(steps=2, model_id=f"bench-ae2-{device}"), progress=False)
    wm_cfg = default.replace(device=device, encoder=encoder, model_id=f"bench-wm-{device}")
    wm_s = _timed(train_world_model, wm_cfg, max_steps=steps, progress=False)
    large = {}  # on an accelerator, the world model at batch 128 too (the larger-batch figure)
    if device != "cpu":
        large_s = _timed(train_world_model, wm_cfg.replace(batch_size=128, model_id=f"bench-wm128-{device}"),
                         max_steps=steps, progress=False)
        large = {"world_model_clips_per_s_at_128": steps * 128 / large_s}
    world = train_world_model(wm_cfg.replace(steps=2, model_id=f"bench-wm2-{device}"), progress=False)
    action = train_world_model(wm_cfg.replace(steps=2, family="action", action_space="motion",
                                              model_id=f"bench-act-{device}"), progress=False)
    ctrl = train_controller(ControllerConfig(world_model=world, action_space="motion", steps=2, device=device),
                            progress=False)
    rates = {}
    for name, planner_world, controller in (("controller", world, ctrl), ("action_model", action, None)):
        net, card = resolve_model(planner_world, device)
        policy = resolve_model(controller, device)[0] if controller else None
        s = load_clips(net, card, "test", n_clips=plans, length=4).s
        seconds = _timed(lambda: [plan(net, s[i, 0], s[i, -1], policy) for i in range(len(s))])
        rates[name] = len(s) / seconds
    ae_rate, wm_rate = steps / ae_s, steps / wm_s
    return {
        "autoencoder_steps_per_s": ae_rate, "world_model_steps_per_s": wm_rate,
        "world_model_clips_per_s": wm_rate * default.batch_size,
        "default_training_min": (default.encoder_steps / ae_rate + default.steps / wm_rate) / 60,
        "cem_plans_per_s": rates, **large}


def to_markdown(r: dict) -> str:
    lines = [f"# World-model throughput ({r['dataset']} demo, {r['torch_threads']} torch threads)", "",
             "Default config: 64 px frames, 8×8×16 representations, 3-block forward model, clips of 6, batch 16; "
             "training time = 1500 autoencoder + 3000 world-model steps at the measured rates.", "",
             "| device | autoencoder steps/s | world-model steps/s (clips/s) | default training, min "
             "| CEM plans/s (controller) | CEM plans/s (action model) |", "|---|---|---|---|---|---|"]
    for d, v in r["devices"].items():
        lines.append(f"| {d} | {v['autoencoder_steps_per_s']:.1f} | {v['world_model_steps_per_s']:.2f} "
                     f"({v['world_model_clips_per_s']:.0f}) | {v['default_training_min']:.1f} "
                     f"| {v['cem_plans_per_s']['controller']:.2f} | {v['cem_plans_per_s']['action_model']:.2f} |")
    lines += [f"\n{d}: the world model at batch 128 trains {v['world_model_clips_per_s_at_128']:,.0f} clips/s"
              for d, v in r["devices"].items() if "world_model_clips_per_s_at_128" in v]
    return "\n".join(lines) + "\n"
