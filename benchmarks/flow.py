"""Optical-flow throughput (pairs/s, 96x96 Atari demo frames) for each method at three depths:
the estimator alone, estimator + per-pair statistics (in memory), and through the store
(:func:`compute_flow`: zarr reads, statistics, ``flow_steer`` labels, atomic write), each in
one process and on all cores.

Target (issue 13): statistics and storage add at most a fifth to the estimator's time. The
machine is shared, so every figure is the best of ``repeats`` runs, one-process figures also
come as CPU-time rates (``*_cpu``: pairs per CPU-second of this process, which other load
disturbs less), and the load average at the start and the end is recorded. Measured, never
asserted.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import cv2

from workbench.data.catalog import get_entry, materialise
from workbench.data.store import open_store
from workbench.flow import compute_flow, flow_pairs
from workbench.flow.compute import METHODS, dense_flow, to_gray
from workbench.core.provenance import code_version

DATASET = "atari"
PAIRS = 512  # in-memory pairs per call: the first 513 frames of the demo store


def best_of(repeats: int, fn) -> tuple[float, float]:
    """Shortest wall and shortest CPU time (s, this process) of ``repeats`` calls of ``fn``."""
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


_FRAMES = None  # the in-memory frames, inherited by forked workers


def _in_memory(depth: str, method: str) -> None:
    """One call of the in-memory work of ``depth`` on ``PAIRS`` pairs, one OpenCV thread."""
    cv2.setNumThreads(1)
    if depth == "estimator":
        gray = to_gray(_FRAMES)
        dense_flow(gray[:-1], gray[1:], method)
    else:
        flow_pairs(_FRAMES[:-1], _FRAMES[1:], method)


def _in_memory_all_cores(depth: str, method: str, workers: int, repeats: int) -> float:
    """Pairs/s of ``workers`` forked processes each running :func:`_in_memory` (pool start excluded)."""
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pool.starmap(_in_memory, [(depth, method)] * workers)  # warm: workers started and imported
        wall, _ = best_of(repeats, lambda: pool.starmap(_in_memory, [(depth, method)] * workers))
    return workers * PAIRS / wall


def flow_speed(store: Path, workers: int, repeats: int = 3) -> dict[str, dict[str, float]]:
    """Pairs/s of each method at each depth, in one process and with ``workers`` processes."""
    global _FRAMES
    _FRAMES = open_store(store).frames.isel(frame=slice(0, PAIRS + 1)).values
    pairs = open_store(store).sizes["frame"]
    previous = cv2.getNumThreads()
    out = {}
    try:
        for method in METHODS:
            row = {}
            for depth in ("estimator", "statistics"):
                wall, cpu = best_of(repeats, lambda: _in_memory(depth, method))
                row[f"{depth}_1"], row[f"{depth}_1_cpu"] = PAIRS / wall, PAIRS / cpu
                row[f"{depth}_{workers}"] = _in_memory_all_cores(depth, method, workers, repeats)
            cv2.setNumThreads(previous)
            wall, cpu = best_of(repeats, lambda: compute_flow(store, method=method, workers=1, progress=False))
            row["store_1"], row["store_1_cpu"] = pairs / wall, pairs / cpu
            wall, _ = best_of(repeats, lambda: compute_flow(store, method=method, workers=workers, progress=False))
            row[f"store_{workers}"] = pairs / wall
            out[method] = row
    finally:
        cv2.setNumThreads(previous)
    return out


def run(workers: int | None = None, repeats: int = 3) -> dict:
    workers = workers or os.cpu_count() or 1
    store = materialise(get_entry(DATASET), size="demo")
    load_before = os.getloadavg()
    speed = flow_speed(store, workers, repeats)
    return {"cpu_count": os.cpu_count(), "workers": workers, "repeats": repeats, "pairs_in_memory": PAIRS,
            "pairs_store": int(open_store(store).sizes["frame"]), "code_version": code_version(),
            "load_average_before": load_before, "load_average_after": os.getloadavg(), "flow": speed}


def flow_table(flow: dict, workers: int) -> list[str]:
    """Markdown rows: pairs/s per method and depth, and what statistics / the store add to the estimator."""
    w = workers
    lines = [f"| method | estimator, 1 process | + statistics, 1 process | store, 1 process | estimator, {w} processes"
             f" | + statistics, {w} processes | store, {w} processes | store parallel efficiency | statistics add |"
             " statistics + store add |", "|---|---|---|---|---|---|---|---|---|---|"]
    for m, v in flow.items():
        cpu = "_cpu" if "estimator_1_cpu" in v else ""
        est, stats, store = (v[f"{d}_1{cpu}"] for d in ("estimator", "statistics", "store"))
        lines.append(f"| {m} | {v['estimator_1']:,.0f} | {v['statistics_1']:,.0f} | {v['store_1']:,.0f} | "
                     f"{v[f'estimator_{w}']:,.0f} | {v[f'statistics_{w}']:,.0f} | {v[f'store_{w}']:,.0f} | "
                     f"{v[f'store_{w}'] / v['store_1'] / w:.2f} | "
                     f"{est / stats - 1:+.0%} | {est / store - 1:+.0%} |")
    if {"farneback", "dis"} <= set(flow):
        ratio = {k: flow["dis"][k] / flow["farneback"][k] for k in ("estimator_1", "statistics_1", "store_1", f"store_{w}")}
        lines.append(f"\nDIS / Farneback speed ratio: {ratio['estimator_1']:.1f}x for the estimator, "
                     f"{ratio['statistics_1']:.1f}x with statistics, {ratio['store_1']:.1f}x through the store "
                     f"({ratio[f'store_{w}']:.1f}x with {w} processes).")
    return lines


def to_markdown(r: dict) -> str:
    load = ", ".join(f"{a:.1f}" for a in r["load_average_before"]) + " → " + ", ".join(
        f"{a:.1f}" for a in r["load_average_after"])
    lines = [f"# Optical flow throughput ({r['cpu_count']} cores, {r['workers']} workers, code {r['code_version']})", "",
             f"Pairs/s on 96x96 Atari demo frames: {r['pairs_in_memory']} pairs in memory, {r['pairs_store']:,} frames"
             f" through the store; best of {r['repeats']} wall-clock runs. Load average (1, 5, 15 min): {load}.",
             "The 'add' columns compare one-process CPU-time rates (estimator time / time with more − 1).", ""]
    lines += flow_table(r["flow"], r["workers"])
    return "\n".join(lines) + "\n"
