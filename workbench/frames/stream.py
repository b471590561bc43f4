"""Frame pairs and clips straight from the zarr stores, a chunk at a time, and the training batch
sampler for pairs and clips.

Nothing loads a whole dataset: :class:`FrameReader` reads one zarr chunk of frames (plus the
frame after it, the successor of the chunk's last frame), resizes it once to the model's input
size and keeps a bounded least-recently-used set of resized chunks; the chunks a batch misses
are read on a few threads at once (zarr's decompression and OpenCV's resize release the GIL).
It is the path for data that do not fit in memory; :mod:`workbench.frames.memory` serves the
same batches from frames held in memory. :class:`PairSampler` draws batches of pairs (or of
clips, by their first frame) chunk-first, which keeps reads local and makes any per-pair
sampling weights exact in expectation:

* pick ``chunks_per_batch`` chunks with probability ∝ the sum of their pairs' weights,
* pick pairs inside each chunk with probability ∝ their weights,

so a pair is drawn with probability ``(W_chunk / W) · (w / W_chunk) = w / W``. Uniform
sampling is the case ``w = 1``; balanced sampling uses :func:`workbench.frames.pairs.balanced_weights`.
All randomness comes from one ``numpy.random.Generator`` the caller owns (and checkpoints).
"""

from __future__ import annotations

from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
import zarr

from ..core.errors import DataError
from ..data.episode import resize_frames
from .sources import Source

if TYPE_CHECKING:
    from .clips import ClipIndex

READ_THREADS = 4  # chunks of one batch read at once on a cache miss


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
        return self.put(c, self.read(c))

    def read(self, c: int) -> np.ndarray:
        """Chunk ``c`` read and resized, not cached (thread-safe)."""
        start = int(c) * self.chunk
        return resize_frames(self.frames[start : start + self.chunk + 1], (self.size, self.size))

    def put(self, c: int, block: np.ndarray) -> np.ndarray:
        self._cache[int(c)] = block
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return block

    def missing(self, chunks: np.ndarray) -> list[int]:
        return [int(c) for c in chunks if int(c) not in self._cache]


class FrameReader:
    """The frame pairs and clips of the sources at the model's input size, read chunk by chunk."""

    def __init__(self, sources: Sequence[Source], size: int, capacity: int = 256):
        self.caches = [ChunkCache(src, size, capacity) for src in sources]
        self.size = int(size)
        self._pool: ThreadPoolExecutor | None = None

    def _blocks(self, source: np.ndarray, chunk: np.ndarray) -> dict[int, np.ndarray]:
        """The resized chunks keyed ``source << 40 | chunk`` for every distinct (source, chunk); the
        ones not cached are read concurrently."""
        key = np.unique(np.asarray(source, np.int64) * (1 << 40) + chunk)
        src, chk = key >> 40, key & ((1 << 40) - 1)
        todo = [(int(s), c) for s in np.unique(src) for c in self.caches[int(s)].missing(chk[src == s])]
        if len(todo) > 1:
            self._pool = self._pool or ThreadPoolExecutor(READ_THREADS, thread_name_prefix="frames")
            for (s, c), block in zip(todo, self._pool.map(lambda sc: self.caches[sc[0]].read(sc[1]), todo)):
                self.caches[s].put(c, block)
        return {int(k): self.caches[int(s)].get(int(c)) for k, s, c in zip(key, src, chk)}

    def pairs(self, source: np.ndarray, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 ``(B, size, size, 3)`` frames ``t`` and ``t+1`` for pairs ``(source[i], frame[i])``."""
        both = self.clips(source, frame, 2)
        return both[:, 0], both[:, 1]

    def clips(self, source: np.ndarray, start: np.ndarray, length: int) -> np.ndarray:
        """uint8 ``(B, length, size, size, 3)``: frames ``start[i] .. start[i] + length - 1`` of
        store ``source[i]``. A frame after a clip's first is read from its predecessor's chunk
        where it can be (a chunk is held with its successor frame), so a pair needs one chunk."""
        source = np.asarray(source, np.int64)[:, None]
        frame = np.asarray(start, np.int64)[:, None] + np.arange(int(length))
        chunk_len = np.array([c.chunk for c in self.caches], np.int64)[source]
        chunk = (frame - (np.arange(int(length)) > 0)) // chunk_len
        blocks = self._blocks(np.broadcast_to(source, chunk.shape).ravel(), chunk.ravel())
        out = np.empty((*frame.shape, self.size, self.size, 3), np.uint8)
        key = source * (1 << 40) + chunk
        for k in np.unique(key):
            rows, cols = np.nonzero(key == k)
            out[rows, cols] = blocks[int(k)][frame[rows, cols] - chunk[rows, cols] * chunk_len[rows, 0]]
        return out

    def batch(self, index: "ClipIndex", positions: np.ndarray) -> np.ndarray:
        """The clips of ``index`` at ``positions``."""
        return self.clips(index.source[positions], index.start[positions], index.length)


class PairSampler:
    """Draws batches of pair positions with probability ∝ ``weights`` (see module docstring).

    ``source``, ``frame``, ``weights`` are per pair; ``chunk_len[s]`` is source ``s``'s zarr
    chunk length. Pairs with weight 0 are never drawn. The draws are those of
    ``rng.choice(n, size, p=...)`` (inverse-CDF sampling of ``rng.random``), with the cumulative
    distributions computed once here rather than at every draw.
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
        self.chunk_cdf = _cdf(self.chunk_p)
        self.pair_cdf = np.zeros(len(self.weights))  # per chunk, the CDF of its pairs' weights
        for c in np.flatnonzero(chunk_weight > 0):
            a, b = self.offsets[c], self.offsets[c + 1]
            self.pair_cdf[a:b] = _cdf(self.weights[a:b] / self.weights[a:b].sum())
        self.batch_size = int(batch_size)
        self.chunks_per_batch = max(1, min(int(chunks_per_batch), self.batch_size))
        self.per_chunk = np.full(self.chunks_per_batch, self.batch_size // self.chunks_per_batch)
        self.per_chunk[: self.batch_size % self.chunks_per_batch] += 1

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """int64 ``(batch_size,)`` positions into the arrays the sampler was built from."""
        chunks = self.chunk_cdf.searchsorted(rng.random(self.chunks_per_batch), side="right")
        out = []
        for c, m in zip(chunks, self.per_chunk):
            a, b = self.offsets[c], self.offsets[c + 1]
            out.append(self.order[a + self.pair_cdf[a:b].searchsorted(rng.random(m), side="right")])
        return np.concatenate(out)


def _cdf(p: np.ndarray) -> np.ndarray:
    """The cumulative distribution ``rng.choice`` builds from probabilities ``p``."""
    cdf = p.cumsum()
    cdf /= cdf[-1]
    return cdf


def pair_tensor(first: np.ndarray, second: np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """The network input of a batch of pairs: uint8 frames ``(B, S, S, 3)`` at ``t`` and ``t+1``
    (arrays or tensors) -> float ``(B, 6, S, S)`` in [0, 1] on ``device``."""
    x = torch.cat([torch.as_tensor(first), torch.as_tensor(second)], dim=-1).to(device)
    return x.permute(0, 3, 1, 2).float().div_(255.0).contiguous()
