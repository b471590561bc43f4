"""Exact nearest neighbours by brute force in blocks, through torch: on the GPU when there is one,
on the CPU with memory bounded by the block sizes — for the cross-game KNN matrix at a million frames.

The distance matrix is never held whole: a block of ``query_block`` queries meets the references
``reference_block`` rows at a time, and a running top-``k`` is merged after each block, so memory
is about ``query_block × reference_block`` floats (64 Mi floats, 256 MiB, by default) whatever the
numbers of queries and references. The answers are sklearn's brute-force ones (``cosine`` or
``euclidean``; the vote's ties go to the smallest label, as in ``KNeighborsClassifier``), up to
the order of neighbours at exactly equal distances.
"""

from __future__ import annotations

import numpy as np
import torch

from ..engine.device import default_device

METRICS = ("cosine", "euclidean")
QUERY_BLOCK, REFERENCE_BLOCK = 2048, 32768


def _prepare(x: torch.Tensor, metric: str, mean: torch.Tensor | None, scale: torch.Tensor | None) -> torch.Tensor:
    x = x.float()
    if mean is not None:
        x = (x - mean) / scale
    return torch.nn.functional.normalize(x, dim=1) if metric == "cosine" else x


@torch.no_grad()
def nearest(query, reference, k: int, metric: str = "cosine", standardize: bool = False, device=None,
            query_block: int = QUERY_BLOCK, reference_block: int = REFERENCE_BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest ``reference`` rows (m, d) of each ``query`` row (n, d): distances
    (n, k) float32, ascending, and reference indices (n, k) int64. ``standardize``: z-score every
    dimension with the references' mean and standard deviation (the queries are transformed, never
    fitted), as sklearn's ``StandardScaler`` before a ``KNeighborsClassifier``."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    reference = np.asarray(reference, np.float32)
    if not 1 <= k <= len(reference):
        raise ValueError(f"k must be between 1 and the {len(reference)} references, got {k}")
    device = default_device(device)
    mean = scale = None
    if standardize:  # float64 statistics, as StandardScaler (a constant dimension keeps scale 1)
        mu, sd = reference.mean(axis=0, dtype=np.float64), reference.std(axis=0, dtype=np.float64)
        mean = torch.as_tensor(mu, dtype=torch.float32, device=device)
        scale = torch.as_tensor(np.where(sd > 0, sd, 1.0), dtype=torch.float32, device=device)
    refs = [(start, _prepare(torch.as_tensor(reference[start:start + reference_block], device=device), metric, mean, scale))
            for start in range(0, len(reference), reference_block)]
    norms = [(r * r).sum(1) for _, r in refs] if metric == "euclidean" else None
    query = np.asarray(query, np.float32)
    dist, index = np.empty((len(query), k), np.float32), np.empty((len(query), k), np.int64)
    for qs in range(0, len(query), query_block):
        q = _prepare(torch.as_tensor(query[qs:qs + query_block], device=device), metric, mean, scale)
        best_d = torch.full((len(q), k), float("inf"), device=device)
        best_i = torch.zeros((len(q), k), dtype=torch.int64, device=device)
        for j, (start, r) in enumerate(refs):
            if metric == "cosine":
                d = 1.0 - q @ r.T
            else:
                d = ((q * q).sum(1, keepdim=True) - 2.0 * (q @ r.T) + norms[j]).clamp_min_(0)
            d, i = torch.topk(d, min(k, d.shape[1]), dim=1, largest=False)
            best_d, pick = torch.topk(torch.cat([best_d, d], 1), k, dim=1, largest=False, sorted=True)
            best_i = torch.gather(torch.cat([best_i, i + start], 1), 1, pick)
        if metric == "euclidean":
            best_d = best_d.sqrt()
        dist[qs:qs + len(q)], index[qs:qs + len(q)] = best_d.cpu().numpy(), best_i.cpu().numpy()
    return dist, index


def knn_vote(reference, labels, query, k: int, **kw) -> np.ndarray:
    """Majority vote of the ``k`` nearest references' ``labels`` for each query (ties: the
    smallest label); ``kw`` goes to :func:`nearest`. Returns labels like ``labels``, (n,)."""
    classes, codes = np.unique(np.asarray(labels), return_inverse=True)
    _, index = nearest(query, reference, k, **kw)
    neighbour = codes[index]
    votes = np.stack([(neighbour == c).sum(axis=1) for c in range(len(classes))], axis=1)
    return classes[votes.argmax(axis=1)]
