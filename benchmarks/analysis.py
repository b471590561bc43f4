"""Analyses at a million frames: the held-out linear probe and the cross-game KNN matrix through
torch (CPU in chunks/blocks; the GPU too when there is one), the projection of every frame (t-SNE
and UMAP fitted on a sample, the rest placed with ``transform``), and the geometry page's redraw
(datashader aggregation + shading + Bokeh rendering) of every point.

Data: a synthetic embedding dataset of ``frames`` × 256 float32 (4 games, 3 actions clustered with
game offsets and noise, the study's block split), so the work is the analyses', not a model's.
Each measurement runs in a fresh process, which reports its wall time and peak resident memory
(the data included: 1 GiB at a million frames). Figures are measured, never asserted.
``python -m benchmarks analysis [--frames N]`` (default a million; e.g. 20000 for a quick run).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import resource
import time

import numpy as np

FRAMES = 1_000_000
DIM = 256
GAMES = ("Enduro", "CarRacing", "SpaceInvaders", "Asterix")
SAMPLE = 10_000  # projection fit sample


def synthetic_embeddings(n: int, d: int = DIM, seed: int = 0):
    """An embedding dataset in the layout of :mod:`workbench.methods.idm.embed` (frames in
    contiguous 64-frame blocks per game, split train/val/test 7:1:2 by block)."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    game = np.repeat(np.arange(len(GAMES)), -(-n // len(GAMES)))[:n]
    source_frame = np.arange(n)
    action = rng.choice(3, n, p=[1 / 6, 2 / 3, 1 / 6]).astype(np.int8)
    centres = rng.normal(0, 1, (3, d)).astype(np.float32)
    offsets = rng.normal(0, 0.5, (len(GAMES), d)).astype(np.float32)
    x = np.empty((n, d), np.float32)
    for start in range(0, n, 100_000):  # built in blocks: no float64 temporaries of the whole
        part = slice(start, start + 100_000)
        x[part] = centres[action[part]] + offsets[game[part]] + rng.standard_normal((len(x[part]), d), np.float32) * 2
    split = np.array(["train"] * 7 + ["val"] + ["test"] * 2)[rng.integers(0, 10, n // 64 + 1)][source_frame // 64]
    steer = ["LEFT", "NEUTRAL", "RIGHT"]
    ds = xr.Dataset({"embedding": (("frame", "dim"), x)},
                    coords={"game": ("frame", np.asarray(GAMES)[game]), "source_frame": ("frame", source_frame),
                            "split": ("frame", split)},
                    attrs={"heads": {"steer": steer}})
    ds["steer"] = ("frame", action, {"kind": "categorical", "classes": steer})
    return ds


def _probe(n: int, device: str) -> dict:
    from workbench.analysis.probes import HELD_OUT, linear_probe

    ds = synthetic_embeddings(n)
    t = time.perf_counter()
    table = linear_probe(ds, variants=("joint",), backend="torch", device=device, **HELD_OUT)
    return {"seconds": time.perf_counter() - t, "rows": int(np.isin(ds["split"].values, ("val", "test")).sum()),
            "balanced_accuracy": float(table["balanced_accuracy"].mean())}


def _knn(n: int, device: str) -> dict:
    from workbench.analysis.knn import knn_matrix

    ds = synthetic_embeddings(n)
    t = time.perf_counter()
    matrix = knn_matrix(ds, backend="torch", device=device)
    split = ds["split"].values
    return {"seconds": time.perf_counter() - t, "queries": int((split == "test").sum()),
            "references": int((split == "val").sum()), "diagonal": float(np.nanmean(np.diag(matrix.to_numpy())))}


def _projection(n: int, method: str) -> dict:
    from workbench.analysis.geometry import project

    x = synthetic_embeddings(n)["embedding"].values
    t = time.perf_counter()
    xy = project(x, method, sample=min(SAMPLE, n))
    return {"seconds": time.perf_counter() - t, "sample": min(SAMPLE, n), "finite": bool(np.isfinite(xy).all())}


def _redraw(n: int) -> dict:
    import holoviews as hv

    from benchmarks.dashboard import synthetic_points
    from workbench.viz.plots import embedding_view

    points = synthetic_points(n)
    times = []
    for color in ("action", "game", "action", "game"):  # the first draw pays imports and numba compilation
        t = time.perf_counter()
        fig = embedding_view(points[["x", "y"]].to_numpy(), points.action, points.game, color_by=color,
                             hover={"source_frame": points.source_frame.to_numpy()})
        hv.render(fig, backend="bokeh")  # datashader aggregates and shades here
        times.append(time.perf_counter() - t)
    return {"seconds": float(np.median(times[1:])), "first_s": times[0]}


def _measured(task, *args) -> dict:
    """``task(*args)`` with its peak resident memory (GiB) added; run in a fresh process."""
    out = task(*args)
    out["peak_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


def _isolated(task, *args) -> dict:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context, max_tasks_per_child=1) as pool:
        return pool.submit(_measured, task, *args).result()


def run(workers: int | None = None, frames: int = FRAMES) -> dict:
    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    steps = {}
    for device in devices:
        steps[f"probe ({device})"] = _isolated(_probe, frames, device)
        steps[f"knn matrix ({device})"] = _isolated(_knn, frames, device)
    for method in ("tsne", "umap"):
        steps[f"projection {method}"] = _isolated(_projection, frames, method)
    steps["dashboard redraw"] = _isolated(_redraw, frames)
    return {"frames": frames, "dim": DIM, "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_average": os.getloadavg()[0], "steps": steps}


def to_markdown(r: dict) -> str:
    notes = {"probe": "joint probe, 5-fold GroupKFold over {rows:,} held-out rows (torch L-BFGS)",
             "knn matrix": "{queries:,} test queries × {references:,} val references, k=10 cosine, exact",
             "projection": "fit on {sample:,} points, the rest placed by transform",
             "dashboard": "datashade (aggregate + shade) + Bokeh render, median of 3 after a first draw of {first_s:.1f} s"}
    lines = [f"## Analyses at {r['frames']:,} frames × {r['dim']} ({r['cpus']} CPUs, {r['torch_threads']} torch threads,"
             f" load average {r['load_average']:.1f} at the end)", "",
             "| step | seconds | peak memory (GiB) | what |", "|---|---|---|---|"]
    for name, v in r["steps"].items():
        what = next(text for key, text in notes.items() if name.startswith(key)).format(**v)
        lines.append(f"| {name} | {v['seconds']:.1f} | {v['peak_gib']:.2f} | {what} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(to_markdown(run()))
