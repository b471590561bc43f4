"""Frame pairs straight from the zarr stores, a chunk at a time, and the training batch sampler.

Nothing loads a whole dataset: :class:`FrameReader` reads one zarr chunk of frames (plus the
frame after it, the successor of the chunk's last frame), resizes it once to the model's input
size and keeps a bounded least-recently-used set of resized chunks. :class:`PairSampler` draws
training batches chunk-first, which keeps reads local and makes any per-pair sampling weights
exact in expectation:

* pick ``chunks_per_batch`` chunks with probability ∝ the sum of their pairs' weights,
* pick pairs inside each chunk with probability ∝ their weights,

so a pair is drawn with probability ``(W_chunk / W) · (w / W_chunk) = w / W``. Uniform
sampling is the case ``w = 1``; balanced sampling uses :func:`workbench.frames.pairs.balanced_weights`.
All randomness comes from one ``numpy.random.Generator`` the caller owns (and checkpoints).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Sequence

import numpy as np
import zarr

from ..core.errors import DataError
from ..data.episode import resize_frames
from .pairs import Source


class ChunkCache:
    """Resized frame chunks of one store, at most ``capacity`` kept (least recently used out).

    ``get(c)`` returns uint8 ``(m, size, size, 3)``: frames ``[c·chunk, (c+1)·chunk + 1)`` of
    the store (clipped at its end), so pair ``t -> t+1`` of any ``t`` in chunk ``c`` is inside.
    """

    def __init__(self, source: Source, size: int, capacity: int = 256):
        self.frames = zarr.open_group(str(source.path), mode="r", zarr_format=2)["frames"]
        self.chunk, self.size, self.capacity = source.chunk, int(size), int(capacity)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def get(self, c: int) -> np.ndarray:
        c = int(c)
        if c in self._cache:
            self._cache.move_to_end(c)
            return self._cache[c]
        start = c * self.chunk
        block = resize_frames(self.frames[start : start + self.chunk + 1], (self.size, self.size))
        self._cache[c] = block
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return block


class FrameReader:
    """The frame pairs of a :class:`PairIndex`'s sources at the model's input size."""

    def __init__(self, sources: Sequence[Source], size: int, capacity: int = 256):
        self.caches = [ChunkCache(src, size, capacity) for src in sources]
        self.size = int(size)

    def pairs(self, source: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 ``(B, size, size, 3)`` frames ``t`` and ``t+1`` for pairs ``(source[i], frame[i])``."""
        n = len(frame)
        first = np.empty((n, self.size, self.size, 3), np.uint8)
        second = np.empty_like(first)
        chunk_len = np.array([c.chunk for c in self.caches], np.int64)[source]
        chunk = frame // chunk_len
        key = np.asarray(source, np.int64) * (1 << 40) + chunk
        for k in np.unique(key):
            sel = np.flatnonzero(key == k)
            block = self.caches[int(source[sel[0]])].get(int(chunk[sel[0]]))
            local = frame[sel] - chunk[sel] * chunk_len[sel]
            first[sel], second[sel] = block[local], block[local + 1]
        return first, second


class PairSampler:
    """Draws batches of pair positions with probability ∝ ``weights`` (see module docstring).

    ``source``, ``frame``, ``weights`` are per pair; ``chunk_len[s]`` is source ``s``'s zarr
    chunk length. Pairs with weight 0 are never drawn.
    """

    def __init__(self, source: np.ndarray, frame: np.ndarray, weights: np.ndarray, chunk_len: Sequence[int],
                 batch_size: int, chunks_per_batch: int = 8):
        weights = np.asarray(weights, np.float64)
        if not (weights > 0).any():
            raise DataError("no pairs to sample from (all sampling weights are 0)")
        key = np.asarray(source, np.int64) * (1 << 40) + np.asarray(frame, np.int64) // np.asarray(chunk_len)[source]
        _, chunk_of = np.unique(key, return_inverse=True)
        self.order = np.argsort(chunk_of, kind="stable")  # pair positions grouped by chunk
        counts = np.bincount(chunk_of)
        self.offsets = np.concatenate([[0], np.cumsum(counts)])
        self.weights = weights[self.order]
        chunk_weight = np.add.reduceat(self.weights, self.offsets[:-1])
        self.chunk_p = chunk_weight / chunk_weight.sum()
        self.batch_size = int(batch_size)
        self.chunks_per_batch = max(1, min(int(chunks_per_batch), self.batch_size))

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """int64 ``(batch_size,)`` positions into the arrays the sampler was built from."""
        chunks = rng.choice(len(self.chunk_p), size=self.chunks_per_batch, p=self.chunk_p)
        per_chunk = np.full(self.chunks_per_batch, self.batch_size // self.chunks_per_batch)
        per_chunk[: self.batch_size % self.chunks_per_batch] += 1
        out = []
        for c, m in zip(chunks, per_chunk):
            a, b = self.offsets[c], self.offsets[c + 1]
            w = self.weights[a:b]
            out.append(self.order[a + rng.choice(b - a, size=m, p=w / w.sum())])
        return np.concatenate(out)
