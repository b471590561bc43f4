"""Loader-only throughput: training batches assembled per second with no model, for the IDM's
pairs (racing demo; uniform chunk-first draws as in joint v1, and balanced draws with flips as in
joint v3) and the world model's clips (first_person demo, the default 6-frame clips), at batch
64 and 1,024.

Two data paths: ``stream`` (:class:`~workbench.frames.stream.FrameReader`, zarr chunks read and
resized into an LRU cache, numpy batches on the host; measured with its cache warm, as in a
long run on data that fit the cache) and ``memory`` (:class:`~workbench.frames.memory.MemoryReader`,
frames held as one uint8 tensor, batches gathered by index and flipped as tensor operations;
on the GPU too when CUDA is available). ``load_s`` is the one-off cost before the first batch
(decoding and resizing every frame for ``memory``). ``items_per_cpu_s`` divides by the process's
CPU time instead of the wall clock: on a shared, loaded machine it is the steadier figure.
Figures are measured, never asserted.
"""

from __future__ import annotations

import time
from functools import partial

import numpy as np
import torch

from workbench.data.catalog import get_entry, materialise
from workbench.frames.augment import flip_plan, hflip
from workbench.frames.clips import build_clip_index
from workbench.frames.memory import MemoryReader, release_frames
from workbench.frames.pairs import balanced_weights, build_pair_index, default_heads
from workbench.frames.sources import resolve_source
from workbench.frames.stream import FrameReader, PairSampler
from workbench.methods.idm.config import TrainConfig
from workbench.methods.worldmodel.config import WorldModelConfig

from .idm import devices

BATCHES = (64, 1024)
SECONDS = 1.0  # timed per measurement, after warm-up


def _pairs_setup(batch: int, v3: bool = False):
    """The IDM's training draw over the racing demo's train pairs: uniform (joint v1), or
    balanced with flips (``v3``, the joint v3 preset)."""
    cfg = TrainConfig(datasets=["racing"], size="demo")
    source = resolve_source("racing", "demo")
    index = build_pair_index([source], default_heads([source]), None, None, cfg.split_block, cfg.split_fractions,
                             cfg.split_seed)
    train = index.subset(index.split == 0)
    weights = balanced_weights(train, list(index.heads)[0]) if v3 else np.ones(len(train))
    sampler = PairSampler(train.source, train.frame, weights, [source.chunk], batch, cfg.chunks_per_batch)
    plan = flip_plan(index.heads, index.kinds)

    def step(reader, rng):
        pos = sampler.draw(rng)
        first, second = reader.pairs(train.source[pos], train.frame[pos])
        if not v3:
            return first, second, {h: v[pos] for h, v in train.y.items()}
        return hflip(first, second, {h: v[pos] for h, v in train.y.items()}, rng.random(len(pos)) < 0.5, plan)

    return [source], cfg.input_size, cfg.cache_chunks, step


def _clips_setup(batch: int):
    """The world model's training draw: uniform chunk-first clips of the first_person demo."""
    cfg = WorldModelConfig(datasets=["first_person"], size="demo")
    source = resolve_source("first_person", "demo")
    index = build_clip_index([source], cfg.clip_length, None, cfg.split_block, cfg.split_fractions, cfg.split_seed)
    train = index.subset(index.split == 0)
    sampler = PairSampler(train.source, train.start, np.ones(len(train)), [source.chunk], batch, cfg.chunks_per_batch)

    def step(reader, rng):
        return reader.batch(train, sampler.draw(rng))

    return [source], cfg.input_size, cfg.cache_chunks, step


def _measure(setup, batch: int, path: str, device: str) -> dict:
    sources, size, capacity, step = setup(batch)
    release_frames()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    start = time.perf_counter()
    reader = FrameReader(sources, size, capacity) if path == "stream" else MemoryReader(sources, size, device)
    load_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    for _ in range(max(3, 4096 // batch)):  # warm the chunk cache (stream) and allocator
        step(reader, rng)
    sync()
    n, start, cpu = 0, time.perf_counter(), time.process_time()
    while n < 5 or time.perf_counter() - start < SECONDS:
        step(reader, rng)
        n += 1
        if n % 8 == 0:
            sync()
    sync()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"path": path, "device": device, "batch": batch, "batches_per_s": n / elapsed,
            "items_per_s": n * batch / elapsed, "items_per_cpu_s": n * batch / cpu, "load_s": load_s}


def run(workers: int | None = None) -> dict:
    for name in ("racing", "first_person"):
        materialise(get_entry(name), size="demo")
    rows = []
    setups = {"idm_pairs": _pairs_setup, "idm_pairs_v3": partial(_pairs_setup, v3=True),
              "worldmodel_clips": _clips_setup}
    for kind, setup in setups.items():
        for batch in BATCHES:
            rows.append({"kind": kind, **_measure(setup, batch, "stream", "cpu")})
            for device in devices():
                rows.append({"kind": kind, **_measure(setup, batch, "memory", device)})
    release_frames()
    return {"torch_threads": torch.get_num_threads(), "rows": rows}


def to_markdown(r: dict) -> str:
    lines = [f"# Loader throughput (no model; {r['torch_threads']} torch threads)", "",
             "| batches of | path | device | batch | batches/s | pairs or clips/s | per CPU-second | load s |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {x['kind']} | {x['path']} | {x['device']} | {x['batch']} | {x['batches_per_s']:,.1f} |"
              f" {x['items_per_s']:,.0f} | {x['items_per_cpu_s']:,.0f} | {x['load_s']:.2f} |" for x in r["rows"]]
    return "\n".join(lines) + "\n"
