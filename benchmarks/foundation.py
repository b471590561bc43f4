"""Foundation benchmarks: recording speed, optical-flow speed and parallel efficiency, DIS vs
Farneback label agreement, and flow's peak memory as the dataset grows.

Targets (issue 2): parallel efficiency >= 0.8 on 2 cores; DIS >= 10x Farneback pairs/s; peak
memory of flow flat from 1x to 10x the demo size. Figures are measured, never asserted here.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psutil

from workbench.data.catalog import CatalogEntry, get_entry, materialise
from workbench.data.recorders import get_engine
from workbench.data.store import open_dataset, open_store
from workbench.flow import agreement, compute_flow

from .flow import flow_speed, flow_table

ENGINE_GAMES = {
    "ale": {"game": "Enduro", "engine": "ale", "buttons": {"accel": "FIRE", "brake": "DOWN"}},
    "carracing": {"game": "CarRacing", "engine": "carracing"},
    "vizdoom": {"game": "freedoom1_smooth", "engine": "vizdoom", "wad": "freedoom1", "map": "E1M1"},
}


class PeakRSS:
    """Peak resident memory (MiB) of this process and all its children, polled every 20 ms."""

    def __init__(self, interval: float = 0.02):
        self.interval, self.peak, self._stop = interval, 0.0, threading.Event()

    def _total(self) -> float:
        me = psutil.Process()
        total = me.memory_info().rss
        for child in me.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total / 2**20

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._total())
            time.sleep(self.interval)

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def recording_speed(frames: int = 600) -> dict[str, float]:
    """Frames recorded per second per engine (96x96, emulator start included)."""
    out = {}
    for engine, cfg in ENGINE_GAMES.items():
        start = time.perf_counter()
        n = sum(len(ep.frames) for ep in get_engine(engine).record(cfg, 1, frames, (96, 96), 0))
        out[engine] = n / (time.perf_counter() - start)
    return out


def dis_vs_farneback(store: Path):
    """Per-game agreement of DIS proxy labels with Farneback proxy labels (both already computed)."""
    far = open_dataset(store, derived=["flow-farneback"])
    dis = open_dataset(store, derived=["flow-dis"])
    far["flow_steer_dis"] = dis["flow_steer"]
    return agreement(far.load(), true="flow_steer", proxy="flow_steer_dis")


def scaled_entry(base: CatalogEntry, factor: int) -> CatalogEntry:
    """``base`` with a ``bench<factor>x`` size of ``factor`` times the demo episodes."""
    demo = base.sizes["demo"]
    size = f"bench{factor}x"
    data = base.to_dict()
    data["sizes"] = {size: {"episodes": int(demo["episodes"]) * factor, "frames_per_episode": demo["frames_per_episode"]}}
    data["default_size"] = size
    return CatalogEntry.from_dict(data)


def flow_memory(dataset_id: str, factors=(1, 10), workers: int = 2) -> dict[int, dict[str, float]]:
    """Peak RSS (MiB, process tree) of Farneback flow over 1x and 10x the demo size."""
    out = {}
    for factor in factors:
        entry = scaled_entry(get_entry(dataset_id), factor)
        store = materialise(entry)
        frames = open_store(store).sizes["frame"]
        base = PeakRSS()._total()
        with PeakRSS() as peak:
            start = time.perf_counter()
            compute_flow(store, method="farneback", workers=workers, progress=False)
            seconds = time.perf_counter() - start
        out[factor] = {"frames": frames, "peak_rss_mib": peak.peak, "rss_before_mib": base,
                       "seconds": seconds, "pairs_per_s": frames / seconds}
    return out


def run(workers: int | None = None, memory_dataset: str = "atari") -> dict:
    workers = workers or os.cpu_count() or 1
    results = {"cpu_count": os.cpu_count(), "workers": workers}
    results["recording_frames_per_s"] = recording_speed()
    store = materialise(get_entry(memory_dataset), size="demo")
    results["flow"] = flow_speed(store, workers)
    results["dis_vs_farneback"] = dis_vs_farneback(store).reset_index().to_dict(orient="records")
    results["flow_memory"] = flow_memory(memory_dataset, workers=workers)
    return results


def to_markdown(r: dict) -> str:
    lines = [f"# Foundation benchmarks ({r['cpu_count']} cores, {r['workers']} workers)", "",
             "## Recording (96x96 frames, one 600-frame episode, emulator start included)", "",
             "| engine | frames/s |", "|---|---|"]
    lines += [f"| {k} | {v:,.0f} |" for k, v in r["recording_frames_per_s"].items()]
    lines += ["", "## Optical flow pairs/s (96x96; see the flow suite)", ""] + flow_table(r["flow"], r["workers"])
    lines += ["", "## DIS vs Farneback proxy labels (Farneback as reference)", "",
              "| game | pairs | accuracy | balanced accuracy | kappa |", "|---|---|---|---|---|"]
    lines += [f"| {a['game']} | {a['n']} | {a['accuracy']:.3f} | {a['balanced_accuracy']:.3f} | {a['kappa']:.3f} |"
              for a in r["dis_vs_farneback"]]
    lines += ["", "## Peak memory of Farneback flow (process tree RSS)", "",
              "| size | frames | peak RSS MiB | pairs/s |", "|---|---|---|---|"]
    lines += [f"| {k}x demo | {v['frames']:,} | {v['peak_rss_mib']:,.0f} | {v['pairs_per_s']:,.0f} |"
              for k, v in r["flow_memory"].items()]
    return "\n".join(lines) + "\n"
