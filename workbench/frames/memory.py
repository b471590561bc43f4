"""Frames held in memory: every frame of the sources decoded and resized once per process, so a
training step gathers its batch by index instead of reading and resizing zarr chunks.

:class:`MemoryReader` holds the frames of each of its stores as one uint8 tensor ``(n, S, S, 3)``
and answers the readers' interface — ``pairs(source, frame)``,
``clips(source, start, length)``, ``batch(index, positions)`` — with uint8 tensors on the
reader's device, the same values as :class:`~workbench.frames.stream.FrameReader`'s arrays
(the same per-frame resize). Where the tensor lives:

* on the accelerator when there is one and the frames fit in half its free memory (batches are
  gathered there: no host work per step but the indices);
* otherwise in host memory, pinned when CUDA is available so a gathered batch is copied to the
  device asynchronously (``non_blocking``);
* not at all when the frames exceed the memory budget: :func:`open_reader` then returns a
  streaming :class:`~workbench.frames.stream.FrameReader`.

Loaded tensors are shared per store: readers of the same store, size and device in one process
(the autoencoder, world model and controller of a study; training and evaluation; a joint model
and the single-game ones) reuse one copy, and the least recently used are let go beyond the budget.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Sequence

import numpy as np
import psutil
import torch
import zarr

from ..data.episode import resize_frames
from .sources import Source
from .stream import FrameReader

if TYPE_CHECKING:
    from .clips import ClipIndex

AUTO_SHARE = 0.5  # of the free host (or device) memory the frames may take when no budget is given
_HELD: OrderedDict[tuple, torch.Tensor] = OrderedDict()
_LOCK = threading.Lock()


def frames_nbytes(sources: Sequence[Source], size: int) -> int:
    """Bytes of the sources' frames as uint8 at ``size`` × ``size`` RGB."""
    return sum(src.n_frames for src in sources) * int(size) ** 2 * 3


def budget_bytes(memory_gb: float | None) -> float:
    """The bytes of frames a process may hold: ``memory_gb`` GiB, or :data:`AUTO_SHARE` of the free
    host memory when None."""
    return AUTO_SHARE * psutil.virtual_memory().available if memory_gb is None else float(memory_gb) * 2**30


def placement(nbytes: int, device: torch.device | str | None = None, memory_gb: float | None = None) -> str | None:
    """Where frames of ``nbytes`` are held: ``"device"``, ``"pinned"`` or ``"host"`` memory, or
    None (stream them). ``memory_gb`` caps what a process holds (None: :data:`AUTO_SHARE` of the
    free memory; 0: always stream)."""
    budget = None if memory_gb is None else budget_bytes(memory_gb)
    if budget is not None and nbytes > budget:
        return None
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if nbytes <= AUTO_SHARE * free:
            return "device"
    host_ok = budget is not None or nbytes <= budget_bytes(None)
    if not host_ok:
        return None
    return "pinned" if device.type == "cuda" else "host"


def load_frames(source: Source, size: int, threads: int = 4) -> np.ndarray:
    """uint8 ``(n_frames, size, size, 3)``: every frame of ``source`` resized (area filter), read a
    zarr chunk at a time on ``threads`` threads."""
    frames = zarr.open_group(str(source.path), mode="r", zarr_format=2)["frames"]
    out = np.empty((source.n_frames, int(size), int(size), 3), np.uint8)

    def read(start: int) -> None:
        out[start : start + source.chunk] = resize_frames(frames[start : start + source.chunk], (size, size))

    with ThreadPoolExecutor(max(1, min(threads, os.cpu_count() or 1))) as pool:
        list(pool.map(read, range(0, source.n_frames, source.chunk)))
    return out


def held_frames(source: Source, size: int, where: str, device: torch.device | str | None = None,
                keep_bytes: float = float("inf")) -> torch.Tensor:
    """The frames of ``source`` as a uint8 tensor held where :func:`placement` said, loaded once per
    process and shared; the least recently used other stores' tensors are let go while the held
    total exceeds ``keep_bytes`` (readers using them keep theirs alive until they go)."""
    device = torch.device(device or "cpu")
    key = (str(source.path), source.n_frames, int(size), where, str(device))
    with _LOCK:
        if key in _HELD:
            _HELD.move_to_end(key)
            return _HELD[key]
        data = torch.from_numpy(load_frames(source, size))
        if where == "device":
            data = data.to(device)
        elif where == "pinned":
            data = data.pin_memory()
        _HELD[key] = data
        while len(_HELD) > 1 and sum(t.nbytes for t in _HELD.values()) > keep_bytes:
            _HELD.popitem(last=False)
        return data


def release_frames() -> None:
    """Forget every held tensor (readers that hold one keep it alive until they go)."""
    with _LOCK:
        _HELD.clear()


class MemoryReader:
    """Pairs and clips gathered by index from frames held in memory (see the module docstring);
    uint8 tensors on ``device`` (default the CPU). ``keep_bytes`` bounds what the process holds."""

    def __init__(self, sources: Sequence[Source], size: int, device: torch.device | str | None = None,
                 where: str = "host", keep_bytes: float = float("inf")):
        self.size = int(size)
        self.device = torch.device(device or "cpu")
        self.frames = [held_frames(src, size, where, self.device, keep_bytes) for src in sources]

    def _gather(self, source: np.ndarray, rows: np.ndarray) -> torch.Tensor:
        """Frames ``rows[i]`` of store ``source[i]`` -> uint8 ``(B, S, S, 3)`` on the device."""
        if len(self.frames) == 1:
            return self._take(self.frames[0], rows)
        out = torch.empty((len(rows), self.size, self.size, 3), dtype=torch.uint8, device=self.device)
        for s in np.unique(source):
            sel = np.flatnonzero(source == s)
            out[torch.from_numpy(sel).to(self.device)] = self._take(self.frames[int(s)], rows[sel])
        return out

    def _take(self, frames: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        if frames.device.type != "cpu":  # held on the accelerator: gather there
            return frames.index_select(0, torch.from_numpy(rows).to(frames.device, non_blocking=True))
        if self.device.type == "cpu":  # numpy's gather is the fastest on the host (a memcpy per frame)
            return torch.from_numpy(frames.numpy()[rows])
        out = torch.empty((len(rows), *frames.shape[1:]), dtype=torch.uint8, pin_memory=frames.is_pinned())
        torch.index_select(frames, 0, torch.from_numpy(rows), out=out)
        return out.to(self.device, non_blocking=True)  # asynchronous from pinned memory

    def clips(self, source: np.ndarray, start: np.ndarray, length: int) -> torch.Tensor:
        """uint8 ``(B, length, S, S, 3)``: frames ``start[i] .. start[i] + length - 1`` of ``source[i]``."""
        rows = np.asarray(start, np.int64)[:, None] + np.arange(length)
        source = np.repeat(np.asarray(source, np.int64), length)
        return self._gather(source, rows.ravel()).reshape(*rows.shape, self.size, self.size, 3)

    def pairs(self, source: np.ndarray, frame: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 ``(B, S, S, 3)`` frames ``t`` and ``t+1`` for pairs ``(source[i], frame[i])``."""
        both = self.clips(source, frame, 2)
        return both[:, 0], both[:, 1]

    def batch(self, index: "ClipIndex", positions: np.ndarray) -> torch.Tensor:
        """The clips of ``index`` at ``positions``."""
        return self.clips(index.source[positions], index.start[positions], index.length)


def open_reader(sources: Sequence[Source], size: int, capacity: int = 256, memory_gb: float | None = None,
                device: torch.device | str | None = None) -> MemoryReader | FrameReader:
    """A :class:`MemoryReader` when the sources' frames at ``size`` fit (see :func:`placement`),
    else a streaming :class:`FrameReader` keeping ``capacity`` chunks per store."""
    nbytes = frames_nbytes(sources, size)
    where = placement(nbytes, device, memory_gb)
    if where is None:
        return FrameReader(sources, size, capacity)
    return MemoryReader(sources, size, device, where, max(nbytes, budget_bytes(memory_gb)))
