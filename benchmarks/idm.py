"""IDM training and embedding-extraction throughput (pairs/s) on the racing demo recording.

Runs on the CPU and, when CUDA is available, on the GPU too (or on the ``--device`` given). Training
pairs/s includes the data path (frames held in memory when they fit, the default; gathering,
augmentation) — the real training loop; extraction streams the whole dataset through the model.
On CUDA it also measures batch 1,024 in fp32 and bf16 (the compute-only ceiling of the same work is
the ``compute`` suite's). Figures are measured, never asserted.
"""

from __future__ import annotations

import os
import tempfile
import time
from unittest import mock

import torch

from workbench.data.catalog import get_entry, materialise
from workbench.methods.idm import extract_embeddings, make_config, train

DATASET = "racing"


#: Environment variable naming the devices to measure on (comma-separated; ``--device`` sets it).
DEVICES_ENV = "WORKBENCH_BENCH_DEVICES"


def devices() -> list[str]:
    """The devices to measure on: those of :data:`DEVICES_ENV`, else the CPU, and CUDA when available."""
    if os.environ.get(DEVICES_ENV):
        return os.environ[DEVICES_ENV].split(",")
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


#: (batch, precision) measured on an accelerator; the CPU measures the first alone.
RUNS = ((64, "fp32"), (1024, "fp32"), (1024, "bf16"))


def run(workers: int | None = None, steps: int = 150) -> dict:
    materialise(get_entry(DATASET), size="demo")
    out = {"dataset": DATASET, "steps": steps, "torch_threads": torch.get_num_threads(), "rows": []}
    with tempfile.TemporaryDirectory() as library, mock.patch.dict(os.environ, {"WORKBENCH_MODELS": library}):
        for device in devices():
            for batch, precision in RUNS if device != "cpu" else RUNS[:1]:
                out["rows"].append({"device": device, "batch_size": batch, "precision": precision,
                                    **_measure(device, steps, batch, precision)})
    return out


def _measure(device: str, steps: int, batch_size: int, precision: str) -> dict:
    """Training and extraction pairs/s of the joint v3 preset on ``device``."""
    cfg = make_config("joint_v3", datasets=[DATASET], size="demo", steps=steps, batch_size=batch_size,
                      eval_every=10**6, device=device, precision=precision,
                      model_id=f"bench-idm-{device.replace(':', '')}-{batch_size}-{precision}")
    start = time.perf_counter()
    result = train(cfg, progress=False, force=True)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    emb = extract_embeddings(result.model_id, DATASET, split="all", size="demo", device=device, cache=False,
                             batch_size=batch_size, progress=False)
    embed_s = time.perf_counter() - start
    return {"train_pairs_per_s": steps * batch_size / train_s,
            "engine_pairs_per_s": result.card.training["pairs_per_s"],  # the steps alone: no load, no evaluation
            "embed_pairs_per_s": emb.sizes["frame"] / embed_s,
            "train_s": train_s, "embed_s": embed_s, "embedded_pairs": emb.sizes["frame"]}


def to_markdown(r: dict) -> str:
    lines = [f"# IDM throughput ({r['dataset']} demo, joint v3, {r['steps']} steps, {r['torch_threads']} torch threads)",
             "", "| device | batch | precision | training pairs/s (steps alone) | embedding extraction pairs/s |",
             "|---|---|---|---|---|"]
    lines += [f"| {v['device']} | {v['batch_size']:,} | {v['precision']} | {v['train_pairs_per_s']:,.0f}"
              f" ({v['engine_pairs_per_s']:,.0f}) |"
              f" {v['embed_pairs_per_s']:,.0f} |" for v in r["rows"]]
    return "\n".join(lines) + "\n"
