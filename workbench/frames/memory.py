"""Frames held in memory: every frame of the sources decoded and resized once per process, so a
training step gathers its batch by index instead of reading and resizing zarr chunks.

:class:`MemoryReader` holds the frames of its sources as one uint8 tensor ``(N, S, S, 3)`` (the
stores one after another) and answers the readers' interface — ``pairs(source, frame)``,
``clips(source, start, length)``, ``batch(index, positions)`` — with uint8 tensors on the
reader's device, the same values as :class:`~workbench.frames.stream.FrameReader`'s arrays
(the same per-frame resize). Where the tensor lives:

* on the accelerator when there is one and the frames fit in half its free memory (batches are
  gathered there: no host work per step but the indices);
* otherwise in host memory, pinned when CUDA is available so a gathered batch is copied to the
  device asynchronously (``non_blocking``);
* not at all when the frames exceed the memory budget: :func:`open_reader` then returns a
  streaming :class:`~workbench.frames.stream.FrameReader`.

Loaded tensors are shared: readers of the same stores, size and device in one process (the
autoencoder, world model and controller of a study; training and evaluation) reuse one copy.
"""

from __future__ import annotations

import os
import threading
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
_HELD: dict[tuple, torch.Tensor] = {}
_LOCK = threading.Lock()


def frames_nbytes(sources: Sequence[Source], size: int) -> int:
    """Bytes of the sources' frames as uint8 at ``size`` × ``size`` RGB."""
    return sum(src.n_frames for src in sources) * int(size) ** 2 * 3


def placement(nbytes: int, device: torch.device | str | None = None, memory_gb: float | None = None) -> str | None:
    """Where frames of ``nbytes`` are held: ``"device"``, ``"pinned"`` or ``"host"`` memory, or
    None (stream them). ``memory_gb`` caps what a process holds (None: :data:`AUTO_SHARE` of the
    free memory; 0: always stream)."""
    budget = None if memory_gb is None else float(memory_gb) * 2**30
    if budget is not None and nbytes > budget:
        return None
    device = torch.device(device or "cpu")
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if nbytes <= AUTO_SHARE * free:
            return "device"
    host_ok = budget is not None or nbytes <= AUTO_SHARE * psutil.virtual_memory().available
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


def held_frames(sources: Sequence[Source], size: int, where: str, device: torch.device | str | None = None
                ) -> torch.Tensor:
    """The frames of ``sources`` one store after another, as a uint8 tensor held where
    :func:`placement` said; loaded once per process and shared."""
    device = torch.device(device or "cpu")
    key = (tuple((str(s.path), s.n_frames) for s in sources), int(size), where, str(device))
    with _LOCK:
        if key not in _HELD:
            data = torch.from_numpy(np.concatenate([load_frames(s, size) for s in sources]))
            if where == "device":
                data = data.to(device)
            elif where == "pinned":
                data = data.pin_memory()
            _HELD[key] = data
        return _HELD[key]


def release_frames() -> None:
    """Forget every held tensor (readers that hold one keep it alive until they go)."""
    with _LOCK:
        _HELD.clear()


class MemoryReader:
    """Pairs and clips gathered by index from frames held in memory (see the module docstring);
    uint8 tensors on ``device`` (default the CPU)."""

    def __init__(self, sources: Sequence[Source], size: int, device: torch.device | str | None = None,
                 where: str = "host"):
        self.size = int(size)
        self.device = torch.device(device or "cpu")
        self.frames = held_frames(sources, size, where, self.device)
        self.offset = np.cumsum([0] + [s.n_frames for s in sources])[:-1].astype(np.int64)

    def _gather(self, rows: np.ndarray) -> torch.Tensor:
        """Frames at global ``rows`` (any shape) -> uint8 ``(*rows.shape, S, S, 3)`` on the device."""
        rows = np.ascontiguousarray(rows, np.int64).ravel()
        if self.frames.device.type != "cpu":  # held on the accelerator: gather there
            return self.frames.index_select(0, torch.from_numpy(rows).to(self.frames.device, non_blocking=True))
        if self.device.type == "cpu":  # numpy's gather is the fastest on the host (a memcpy per frame)
            return torch.from_numpy(self.frames.numpy()[rows])
        out = torch.empty((len(rows), *self.frames.shape[1:]), dtype=torch.uint8, pin_memory=self.frames.is_pinned())
        torch.index_select(self.frames, 0, torch.from_numpy(rows), out=out)
        return out.to(self.device, non_blocking=True)  # asynchronous from pinned memory

    def clips(self, source: np.ndarray, start: np.ndarray, length: int) -> torch.Tensor:
        """uint8 ``(B, length, S, S, 3)``: frames ``start[i] .. start[i] + length - 1`` of ``source[i]``."""
        rows = (self.offset[np.asarray(source, np.int64)] + np.asarray(start, np.int64))[:, None] + np.arange(length)
        return self._gather(rows).reshape(*rows.shape, *self.frames.shape[1:])

    def pairs(self, source: np.ndarray, frame: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 ``(B, S, S, 3)`` frames ``t`` and ``t+1`` for pairs ``(source[i], frame[i])``."""
        rows = self.offset[np.asarray(source, np.int64)] + np.asarray(frame, np.int64)
        both = self._gather(np.concatenate([rows, rows + 1]))
        return both[: len(rows)], both[len(rows) :]

    def batch(self, index: "ClipIndex", positions: np.ndarray) -> torch.Tensor:
        """The clips of ``index`` at ``positions``."""
        return self.clips(index.source[positions], index.start[positions], index.length)


def open_reader(sources: Sequence[Source], size: int, capacity: int = 256, memory_gb: float | None = None,
                device: torch.device | str | None = None) -> MemoryReader | FrameReader:
    """A :class:`MemoryReader` when the sources' frames at ``size`` fit (see :func:`placement`),
    else a streaming :class:`FrameReader` keeping ``capacity`` chunks per store."""
    where = placement(frames_nbytes(sources, size), device, memory_gb)
    if where is None:
        return FrameReader(sources, size, capacity)
    return MemoryReader(sources, size, device, where)
