"""Optical flow over a whole dataset store, in parallel, written as a derived sibling store.

The frame axis is cut into blocks of whole zarr chunks. Each task opens the store itself,
reads only its block plus the one frame after it (so the pair across a block boundary is
computed too) and returns small per-frame arrays; frames never travel through a scheduler and
nothing loads the whole dataset. Where the tasks run:

* ``workers=1`` (no ``scheduler``): in this process, one block after the other;
* ``scheduler=None`` / ``"processes"``: dask's multiprocessing scheduler, ``workers`` processes;
* ``scheduler="local"``: a ``dask.distributed`` LocalCluster of ``workers`` processes;
* ``scheduler="tcp://host:8786"``: an existing dask cluster. Its workers need ``workbench``
  installed and the store at the same path (a shared disk).

OpenCV runs single-threaded inside every task, so the speed-up measured is that of processes.
"""

from __future__ import annotations

import math
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import cv2
import dask
import numpy as np
import xarray as xr
import zarr
from dask.callbacks import Callback
from tqdm.auto import tqdm

from ..core.errors import ConfigError
from ..data.store import COORD_CHUNK, derived_path, open_store, write_dataset_atomic
from ..core.locks import store_lock
from ..core.provenance import code_version, now_utc
from ..data.episode import successor_mask
from .compute import check_method, concat_statistics, method_parameters, sequence_flow
from .labels import DEFAULT_THRESHOLD, proxy_steer

BLOCKS_PER_WORKER = 4  # several blocks per worker, so one slow block does not leave the others idle
MAX_BLOCK_CHUNKS = 8  # at most 8 x 64 frames per task: small results, a smooth progress bar


class Task(NamedTuple):
    """The arguments of one :func:`block_flow` call."""

    store: str
    start: int
    stop: int
    has_next: np.ndarray
    method: str
    grid: tuple[int, int]


@contextmanager
def _opencv_threads(n: int):
    previous = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


def plan_blocks(n_frames: int, chunk: int, workers: int) -> list[tuple[int, int]]:
    """``[start, stop)`` frame ranges of whole ``chunk``-frame zarr chunks covering ``n_frames``:
    about ``BLOCKS_PER_WORKER`` blocks per worker, at most ``MAX_BLOCK_CHUNKS`` chunks each."""
    n_chunks = math.ceil(n_frames / chunk)
    per_block = min(max(math.ceil(n_chunks / (BLOCKS_PER_WORKER * max(workers, 1))), 1), MAX_BLOCK_CHUNKS)
    size = per_block * chunk
    return [(start, min(start + size, n_frames)) for start in range(0, n_frames, size)]


def block_flow(
    store: str, start: int, stop: int, has_next: np.ndarray, method: str, grid: tuple[int, int]
) -> dict[str, np.ndarray]:
    """Flow statistics of frames ``[start, stop)`` of the store at ``store`` (one task).

    ``has_next`` (bool, ``stop - start``) says which frames pair with their successor; frame
    ``stop`` is read only when frame ``stop - 1`` needs it.
    """
    with _opencv_threads(1):
        frames = zarr.open_group(store, mode="r", zarr_format=2)["frames"]
        block = frames[start : stop + 1 if has_next[-1] else stop]
        return sequence_flow(block, has_next, method, grid)


def _run_serial(tasks: Sequence[Task], bar: tqdm, workers: int) -> list[dict]:
    out = []
    for task in tasks:
        out.append(block_flow(*task))
        bar.update(task.stop - task.start)
    return out


class _TqdmCallback(Callback):
    """Advance a tqdm bar by a block's frame count when dask finishes that block's task."""

    def __init__(self, bar: tqdm, frames_per_key: dict):
        super().__init__()
        self.bar, self.frames_per_key = bar, frames_per_key

    def _posttask(self, key, result, dsk, state, worker_id):
        self.bar.update(self.frames_per_key.get(key, 0))


def _run_processes(tasks: Sequence[Task], bar: tqdm, workers: int) -> list[dict]:
    delayed = [dask.delayed(block_flow, pure=True)(*task) for task in tasks]
    frames_per_key = {d.key: task.stop - task.start for d, task in zip(delayed, tasks)}
    # Forked workers start in milliseconds with everything already imported; spawned ones pay
    # ~1-2 s each to import xarray/zarr/OpenCV again. zarr resets its IO thread after a fork.
    context = "fork" if sys.platform.startswith("linux") else "spawn"
    with dask.config.set({"multiprocessing.context": context}), _TqdmCallback(bar, frames_per_key):
        return list(dask.compute(*delayed, scheduler="processes", num_workers=workers))


def _run_distributed(tasks: Sequence[Task], bar: tqdm, workers: int, address: str | None) -> list[dict]:
    from distributed import Client, LocalCluster, as_completed

    cluster = None
    if address is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster if cluster is not None else address)
    try:
        futures = [client.submit(block_flow, *task) for task in tasks]
        index = {f.key: i for i, f in enumerate(futures)}
        results: list[dict] = [{}] * len(tasks)
        for future in as_completed(futures):
            i = index[future.key]
            results[i] = future.result()
            bar.update(tasks[i].stop - tasks[i].start)
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _runner(workers: int, scheduler: str | None) -> Callable[[Sequence[Task], tqdm, int], list[dict]]:
    if scheduler is None:
        return _run_serial if workers == 1 else _run_processes
    if scheduler == "processes":
        return _run_processes
    if scheduler == "local":
        return lambda tasks, bar, n: _run_distributed(tasks, bar, n, None)
    if "://" in scheduler:
        return lambda tasks, bar, n: _run_distributed(tasks, bar, n, scheduler)
    raise ConfigError(
        f"scheduler {scheduler!r}: use None, 'processes', 'local' or a dask scheduler address like 'tcp://host:8786'"
    )


def _flow_dataset(stats: dict[str, np.ndarray], src: xr.Dataset) -> xr.Dataset:
    """Per-frame statistics as a dataset on ``frame``, with the source's game/episode/step."""
    units = {"flow_dx": "px/frame", "flow_dy": "px/frame", "flow_mag": "px/frame",
             "flow_angle": "degrees (0 right, 90 down)", "flow_dom_dx": "px/frame"}
    variables = {name: ("frame", stats[name], {"units": u}) for name, u in units.items()}
    variables["flow_grid"] = (("frame", "gy", "gx", "component"), stats["flow_grid"], {"units": "px/frame"})
    coords = {name: ("frame", src[name].values) for name in ("game", "episode", "step")}
    coords["component"] = ("component", np.array(["dx", "dy"]))
    return xr.Dataset(variables, coords=coords)


def compute_flow(
    frames_store: Path,
    method: str = "farneback",
    grid: tuple[int, int] = (4, 4),
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    threshold: float | str = DEFAULT_THRESHOLD,
    flow_sign: dict[str, int] | None = None,
) -> Path:
    """Compute flow statistics and ``flow_steer`` proxy labels for every frame of a store.

    Writes the sibling store ``flow-<method>.zarr`` atomically, holding the folder's lock
    (:func:`workbench.core.locks.store_lock`), and returns its path;
    ``open_dataset(frames_store)`` then carries ``flow_dx`` … ``flow_grid`` and ``flow_steer``.
    ``workers`` defaults to the CPU count; see the module docstring for ``scheduler``.
    ``threshold`` and ``flow_sign`` are those of :func:`workbench.flow.labels.proxy_steer`
    (``flow_sign`` defaults to the dataset's ``flow_sign`` attr, then +1).
    """
    check_method(method)
    grid = (int(grid[0]), int(grid[1]))
    frames_store = Path(frames_store).resolve()
    workers = int(workers or os.cpu_count() or 1)
    run = _runner(workers, scheduler)

    with store_lock(frames_store.parent):  # the frames store stays put; no other writer in its folder
        src = open_store(frames_store)
        n = src.sizes["frame"]
        has_next = successor_mask(src["game"].values, src["episode"].values, src["step"].values)
        blocks = plan_blocks(n, src["frames"].encoding["chunks"][0], workers)
        tasks = [Task(str(frames_store), a, b, has_next[a:b], method, grid) for a, b in blocks]
        with tqdm(total=n, unit="frame", desc=f"flow ({method})", disable=not progress) as bar:
            stats = concat_statistics(run(tasks, bar, workers))

        ds = _flow_dataset(stats, src)
        signs = src.attrs.get("flow_sign", {}) if flow_sign is None else flow_sign
        ds["flow_steer"] = proxy_steer(ds, threshold, signs)
        attrs = {
            "method": method,
            "parameters": method_parameters(method),
            "grid": list(grid),
            "n_pairs": int(has_next.sum()),
            "source": frames_store.name,
            "code_version": code_version(),
            "opencv": cv2.__version__,
            "created": now_utc(),
        }
        encoding = {name: {"chunks": (COORD_CHUNK, *ds[name].shape[1:])} for name in ds.variables
                    if "frame" in ds[name].dims}
        return write_dataset_atomic(ds, derived_path(frames_store, f"flow-{method}"), attrs, encoding)
