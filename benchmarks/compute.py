"""Compute-only throughput: each model's training step, through the training engine, and the IDM's
embedding extraction, on random tensors already on the device — no data path — so the figures are
the ceiling the real runs (``idm``, ``worldmodel`` suites, with their data path) are measured
against.

* IDM (``IDMLatentSpatial``, the default 64 px, width 64, 256-d embedding; the racing heads):
  training steps/s and pairs/s at batch 64, 256 and 1,024; extraction (embedding and logits,
  no gradients) pairs/s at batch 1,024.
* World model (the default noisy ``LatentActionWorldModel`` on a default 8×8×16 autoencoder, clips
  of 6 frames): training steps/s and clips/s at batch 16 and 128; its step encodes the uint8
  clips with the frozen encoder, as the trainer's does.

Variants: ``fp32``; ``bf16`` (autocast); ``channels_last`` (the conv models' NHWC layout); and
``compile`` (``torch.compile``, measured after a warm-up that compiles) where a compiler is
usable — on CUDA always, on CPU only with ``compile_on_cpu`` (inductor builds C++ kernels: slow).
Training runs :func:`workbench.engine.fit.fit` itself (AdamW, the schedule and clipping of each
trainer, step statistics kept on the device) in a temporary model library; a warm-up run first,
then a timed one whose seconds the engine measures (synchronised at its end). Figures are
measured, never asserted.
"""

from __future__ import annotations

import itertools
import os
import tempfile
import time
from unittest import mock

import numpy as np
import torch

from workbench.engine.device import autocast, place
from workbench.engine.fit import FitSpec, fit
from workbench.methods.idm.model import IDMLatentSpatial
from workbench.methods.idm.training import _loss
from workbench.methods.worldmodel.config import WorldModelConfig
from workbench.methods.worldmodel.model import LatentActionWorldModel
from workbench.methods.worldmodel.training import GRAD_CLIP

from .idm import devices

IDM_BATCHES = (64, 256, 1024)
WM_BATCHES = (16, 128)
EXTRACT_BATCH = 1024
HEADS = {"steer": 3, "accel": 2, "brake": 2}
SECONDS = 3.0  # timed per measurement (at least MIN_STEPS steps), after warm-up
MIN_STEPS = 3
WARMUP = 3  # steps (compile: the first ones compile)


def variants(device: str, compile_on_cpu: bool = False) -> dict[str, dict]:
    """The option sets measured on ``device``: name -> (precision, channels_last, compile)."""
    out = {"fp32": {}, "bf16": {"precision": "bf16"}, "channels_last": {"channels_last": True},
           "bf16+channels_last": {"precision": "bf16", "channels_last": True}}
    if device.startswith("cuda") or compile_on_cpu:
        out["compile"] = {"compile": True}
        out["bf16+compile"] = {"precision": "bf16", "compile": True}
    return out


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class _Fixed:
    """A sampler that draws nothing: every step trains on the same device-resident batch."""

    def __init__(self, batch: int):
        self.positions = np.arange(batch)

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        return self.positions


def _train_rate(name: str, model: torch.nn.Module, step_fn, batch: int, precision: str, device: str,
                warmup: dict) -> tuple[float, float]:
    """Training steps per second and per CPU-second of ``step_fn`` through the engine: a warm-up
    run, then a timed run of about :data:`SECONDS` (the step count from the warm-up's rate)."""
    def spec(model_id: str, steps: int) -> FitSpec:
        return FitSpec(model_id=model_id, identity={"bench": model_id}, seed=0, steps=steps, lr=1e-3,
                       weight_decay=1e-4, eval_every=steps, checkpoint_every=10**9, items_per_step=batch, **warmup,
                       precision=precision)

    no_eval = lambda: ({}, None)  # noqa: E731
    fit(spec(f"{name}-warm", WARMUP), model, step_fn, no_eval, _Fixed(batch), progress=False)
    state, _ = fit(spec(f"{name}-pace", 2), model, step_fn, no_eval, _Fixed(batch), progress=False)
    steps = max(MIN_STEPS, int(SECONDS / max(state["train_seconds"] / 2, 1e-4)))
    cpu = time.process_time()
    state, _ = fit(spec(name, steps), model, step_fn, no_eval, _Fixed(batch), progress=False)
    return steps / state["train_seconds"], steps / (time.process_time() - cpu)


def _idm(device: str, options: dict) -> tuple[IDMLatentSpatial, dict]:
    torch.manual_seed(0)
    model = place(IDMLatentSpatial(HEADS), device, options.get("channels_last", False), options.get("compile", False))
    return model, {h: np.random.default_rng(i).integers(0, n, size=max(IDM_BATCHES)) for i, (h, n) in
                   enumerate(HEADS.items())}


def _pairs(batch: int, device: str) -> torch.Tensor:
    """A random batch of the IDM's input, uint8 pairs made float as :func:`~workbench.frames.stream.pair_tensor` does."""
    x = torch.randint(0, 256, (batch, 64, 64, 6), dtype=torch.uint8, device=device)
    return x.permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def measure_idm(device: str, options: dict) -> list[dict]:
    rows = []
    model, labels = _idm(device, options)
    precision = options.get("precision", "fp32")
    for batch in IDM_BATCHES:
        x, y = _pairs(batch, device), {h: v[:batch] for h, v in labels.items()}
        rate, cpu_rate = _train_rate(f"idm-{batch}", model, lambda pos, rng: (_loss(model(x), y), {}), batch,
                                     precision, device, {})
        rows.append(_row("idm", "train", batch, rate, cpu_rate))
    model.eval()
    x = _pairs(EXTRACT_BATCH, device)
    with torch.inference_mode(), autocast(device, precision):
        for _ in range(WARMUP):
            model.embed_and_logits(x)
        _sync(device)
        n, start, cpu = 0, time.perf_counter(), time.process_time()
        while n < MIN_STEPS or time.perf_counter() - start < SECONDS:
            model.embed_and_logits(x)
            n += 1
        _sync(device)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    rows.append(_row("idm", "extract", EXTRACT_BATCH, n / seconds, n / cpu))
    return rows


def _row(model: str, work: str, batch: int, rate: float, cpu_rate: float) -> dict:
    """A measurement: steps (and pairs or clips) per second of wall clock and of process CPU time
    (the steadier figure on a shared, loaded CPU; on a GPU the host's share)."""
    return {"model": model, "work": work, "batch": batch, "steps_per_s": rate, "items_per_s": rate * batch,
            "items_per_cpu_s": cpu_rate * batch}


def measure_world_model(device: str, options: dict) -> list[dict]:
    cfg = WorldModelConfig(datasets=["bench"])
    torch.manual_seed(0)
    model = LatentActionWorldModel(
        encoder={"input_size": cfg.input_size, "width": cfg.encoder_width, "rep_channels": cfg.rep_channels},
        family=cfg.family, regularizer=cfg.regularizer_params(), latent_dim=cfg.latent_dim, context=cfg.clip_length,
        patch=cfg.patch, d_model=cfg.d_model, depth=cfg.depth, n_heads=cfg.n_heads, idm_width=cfg.idm_width)
    place(model, device, options.get("channels_last", False), options.get("compile", False),
          [model.idm, model.predictor])
    rows = []
    for batch in WM_BATCHES:
        clips = torch.randint(0, 256, (batch, cfg.clip_length, cfg.input_size, cfg.input_size, 3), dtype=torch.uint8,
                              device=device)
        rates = _train_rate(f"wm-{batch}", model, lambda pos, rng: model.loss(model.encode(clips)), batch,
                            options.get("precision", "fp32"), device,
                            {"warmup": cfg.warmup, "grad_clip": GRAD_CLIP, "reseed_torch": True})
        rows.append(_row("world_model", "train", batch, *rates))
    return rows


def run(workers: int | None = None, compile_on_cpu: bool = False) -> dict:
    out = {"torch": torch.__version__, "torch_threads": torch.get_num_threads(), "seconds": SECONDS,
           "warmup_steps": WARMUP, "min_steps": MIN_STEPS, "rows": []}
    with tempfile.TemporaryDirectory() as library, mock.patch.dict(os.environ, {"WORKBENCH_MODELS": library}):
        for device, (variant, options) in itertools.chain.from_iterable(
                ((d, v) for v in variants(d, compile_on_cpu).items()) for d in devices()):
            for measure in (measure_idm, measure_world_model):
                if device.startswith("cuda"):
                    torch.cuda.reset_peak_memory_stats()
                try:
                    rows = measure(device, options)
                except Exception as exc:  # a variant this build or device lacks: recorded, the rest go on
                    rows = [{"model": measure.__name__.removeprefix("measure_"), "error": f"{type(exc).__name__}: {exc}"}]
                out["rows"] += [{"device": device, "variant": variant, **r} for r in rows]
                if device.startswith("cuda"):
                    out.setdefault("peak_gib", {})[f"{device} {variant} {measure.__name__}"] = \
                        torch.cuda.max_memory_allocated() / 2**30
    if any(d.startswith("cuda") for d in devices()):
        out["gpu"] = torch.cuda.get_device_name()
    return out


def to_markdown(r: dict) -> str:
    lines = [f"# Compute-only throughput (random tensors on the device, no data path; torch {r['torch']},"
             f" {r['torch_threads']} torch threads{', ' + r['gpu'] if r.get('gpu') else ''})", "",
             "| device | variant | model | work | batch | steps/s | pairs or clips/s | per CPU-second |",
             "|---|---|---|---|---|---|---|---|"]
    for x in r["rows"]:
        if "error" in x:
            lines.append(f"| {x['device']} | {x['variant']} | {x['model']} | failed: {x['error'][:80]} | | | | |")
        else:
            lines.append(f"| {x['device']} | {x['variant']} | {x['model']} | {x['work']} | {x['batch']:,} |"
                         f" {x['steps_per_s']:,.2f} | {x['items_per_s']:,.0f} | {x['items_per_cpu_s']:,.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # a quick look without writing results: python -m benchmarks.compute
    print(to_markdown(run()))
