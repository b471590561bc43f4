"""IDM training and embedding-extraction throughput (pairs/s) on the racing demo recording.

Runs on the CPU and, when CUDA is available, on the GPU too. Training pairs/s includes zarr
reads, resizing and augmentation (the real training loop); extraction streams the whole
dataset through the model. Figures are measured, never asserted.
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


def devices() -> list[str]:
    """The devices to measure on: the CPU, and CUDA when available."""
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def run(workers: int | None = None, steps: int = 150, batch_size: int = 64) -> dict:
    materialise(get_entry(DATASET), size="demo")
    out = {"dataset": DATASET, "steps": steps, "batch_size": batch_size, "torch_threads": torch.get_num_threads(),
           "devices": {}}
    with tempfile.TemporaryDirectory() as library, mock.patch.dict(os.environ, {"WORKBENCH_MODELS": library}):
        for device in devices():
            out["devices"][device] = _measure(device, steps, batch_size)
    return out


def _measure(device: str, steps: int, batch_size: int) -> dict:
    """Training and extraction pairs/s of the joint v3 preset on ``device``."""
    cfg = make_config("joint_v3", datasets=[DATASET], size="demo", steps=steps, batch_size=batch_size,
                      eval_every=10**6, device=device, model_id=f"bench-idm-{device}")
    start = time.perf_counter()
    result = train(cfg, progress=False, force=True)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    emb = extract_embeddings(result.model_id, DATASET, split="all", size="demo", device=device, cache=False,
                             batch_size=batch_size, progress=False)
    embed_s = time.perf_counter() - start
    return {"train_pairs_per_s": steps * batch_size / train_s,
            "embed_pairs_per_s": emb.sizes["frame"] / embed_s,
            "train_s": train_s, "embed_s": embed_s, "embedded_pairs": emb.sizes["frame"]}


def to_markdown(r: dict) -> str:
    lines = [f"# IDM throughput ({r['dataset']} demo, batch {r['batch_size']}, {r['torch_threads']} torch threads)", "",
             "| device | training pairs/s | embedding extraction pairs/s |", "|---|---|---|"]
    lines += [f"| {d} | {v['train_pairs_per_s']:,.0f} | {v['embed_pairs_per_s']:,.0f} |" for d, v in r["devices"].items()]
    return "\n".join(lines) + "\n"
