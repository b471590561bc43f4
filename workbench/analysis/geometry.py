"""Embedding geometry: 2-D projections (t-SNE, UMAP) with a content-addressed cache, and the
numbers behind seed 000's pictures — clusters by action rather than by game (silhouette), games
interleaved inside each action cluster (interleaving), and how faithful a projection is
(k-NN preservation).

Projection settings are tuned for interactive use on a laptop: a 10k-point, 256-d embedding is
projected from a cold start (fresh process) in 7.6 s (t-SNE) / 9.9 s (UMAP) on 2 cores, against
32–35 s for the library defaults, keeping 97 % / 92 % of the defaults' k-NN preservation
(``benchmarks/projection_timing.py``). How:

* PCA to 50 dims first (sklearn), as is standard for t-SNE/UMAP on wide embeddings.
* openTSNE: FFT gradients from 10k points (Barnes-Hut below, openTSNE's own rule: 3× faster
  at 300 points), PCA init, exact neighbours up to 20k points (sklearn's ball tree beats Annoy's
  index build there), half the iterations (125 early-exaggeration + 250), and 2 points per FFT
  interpolation interval (the final phase's cost grows with the embedding's extent; this halves
  the grid). One thread: on the shared 2-core machine ``n_jobs=2`` was 2× *slower* than 1
  (thread synchronisation every iteration competes with whatever else runs); pass ``n_jobs`` on
  an idle many-core machine.
* UMAP: exact k-NN from sklearn passed in as ``precomputed_knn`` — this skips pynndescent, whose
  numba compilation dominates UMAP's cold start — PCA init instead of the spectral one, 200
  epochs, and ``min_dist=0`` (free, and wins back local structure: 0.173 vs 0.160 k-NN
  preservation at 0.1; the value UMAP's docs advise for cluster structure).

Beyond a few tens of thousands of points, a projection is fitted on a random ``sample`` and
extended to every point with the library's own ``transform`` (:func:`project`).

Projections are computed once per embedding and stored: :class:`ProjectionCache` keys each one by
a hash of the embedding's bytes, the method, its parameters and the library version, and keeps it
as a ``.npy`` file written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.paths import atomic_write
from ..core.paths import cache_dir as workbench_cache

METHODS = ("tsne", "umap")
#: openTSNE parameters used unless overridden by ``project(..., **kw)``.
TSNE_SETTINGS = {
    "perplexity": 30.0, "early_exaggeration_iter": 125, "n_iter": 250, "ints_in_interval": 2,
    "negative_gradient_method": "auto", "initialization": "pca", "n_jobs": 1,
}
#: umap-learn parameters used unless overridden.
UMAP_SETTINGS = {"n_neighbors": 15, "n_epochs": 200, "init": "pca", "min_dist": 0.0}
#: Up to this many points neighbours are searched exactly (sklearn); beyond, approximately.
EXACT_KNN_MAX = 20_000
#: Rows placed per ``transform`` call when a projection fitted on a sample is extended to all.
TRANSFORM_BLOCK = 100_000


def _matrix(embedding) -> np.ndarray:
    x = np.asarray(embedding, dtype=np.float32)
    if x.ndim != 2 or not len(x):
        raise ValueError(f"embedding must be a non-empty (n, d) array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("embedding contains NaN or infinite values")
    return x


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")


def _pca(x: np.ndarray, pca: int | None, seed: int):
    """An unfitted PCA to ``pca`` dims (sklearn), or None when that is not fewer than the data's
    rank bound."""
    if not pca or pca >= min(x.shape):
        return None
    from sklearn.decomposition import PCA

    return PCA(n_components=pca, random_state=seed)


def _reduce(x: np.ndarray, pca: int | None, seed: int) -> np.ndarray:
    """PCA to ``pca`` dims (float32) when that is fewer than the data's rank bound."""
    model = _pca(x, pca, seed)
    return x if model is None else model.fit_transform(x).astype(np.float32)


def _tsne(x: np.ndarray, seed: int, **kw):
    """The fitted ``openTSNE.TSNEEmbedding`` (an (n, 2) array that can ``transform`` new points)."""
    import openTSNE

    params = {**TSNE_SETTINGS, "neighbors": "exact" if len(x) <= EXACT_KNN_MAX else "annoy", **kw}
    params["perplexity"] = min(params["perplexity"], (len(x) - 1) / 3)  # openTSNE needs 3·perplexity < n
    return openTSNE.TSNE(n_components=2, random_state=seed, **params).fit(x)


def _umap(x: np.ndarray, seed: int, extend: bool = False, **kw):
    """The fitted ``umap.UMAP`` (``embedding_``). Without ``extend``, exact neighbours from sklearn
    up to :data:`EXACT_KNN_MAX` points; with it, UMAP's own search index, which ``transform`` needs."""
    import umap
    from sklearn.neighbors import NearestNeighbors

    params = {**UMAP_SETTINGS, **kw}
    params["n_neighbors"] = min(params["n_neighbors"], len(x) - 1)
    if len(x) <= EXACT_KNN_MAX and "precomputed_knn" not in params and not extend:
        nn = NearestNeighbors(n_neighbors=params["n_neighbors"], metric=params.get("metric", "euclidean"))
        dist, idx = nn.fit(x).kneighbors(x)  # row i starts with i itself, as UMAP expects
        params["precomputed_knn"] = (idx, dist, None)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_jobs value .* overridden")
        warnings.filterwarnings("ignore", message=r"precomputed_knn\[2\] \(knn_search_index\)")
        return umap.UMAP(n_components=2, random_state=seed, **params).fit(x)


def _project_uncached(x: np.ndarray, method: str, seed: int, pca: int | None, sample: int | None = None,
                      **kw) -> np.ndarray:
    if sample and sample < len(x):
        return _project_sampled(x, method, seed, pca, sample, **kw)
    reduced = _reduce(x, pca, seed)
    out = _tsne(reduced, seed, **kw) if method == "tsne" else _umap(reduced, seed, **kw).embedding_
    return np.ascontiguousarray(out, dtype=np.float32)


def _project_sampled(x: np.ndarray, method: str, seed: int, pca: int | None, sample: int,
                     block: int = TRANSFORM_BLOCK, **kw) -> np.ndarray:
    """Fit PCA and the projection on ``sample`` random rows, keep their fitted coordinates, and
    place every other row with the library's own ``transform`` (``block`` rows at a time)."""
    fit = np.zeros(len(x), bool)
    fit[np.random.default_rng(seed).choice(len(x), sample, replace=False)] = True
    reducer = _pca(x[fit], pca, seed)
    reducer = reducer.fit(x[fit]) if reducer is not None else None

    def reduce(rows: np.ndarray) -> np.ndarray:
        return rows if reducer is None else reducer.transform(rows).astype(np.float32)

    if method == "tsne":
        model = _tsne(reduce(x[fit]), seed, **kw)
        fitted, transform = np.asarray(model), lambda a: np.asarray(model.transform(a))
    else:
        model = _umap(reduce(x[fit]), seed, extend=True, **kw)
        fitted, transform = model.embedding_, model.transform
    out = np.empty((len(x), 2), np.float32)
    out[fit] = fitted
    rest = np.flatnonzero(~fit)
    for start in range(0, len(rest), block):
        rows = rest[start:start + block]
        out[rows] = transform(reduce(x[rows]))
    return out


def _library_version(method: str) -> str:
    from importlib.metadata import version

    return version("openTSNE" if method == "tsne" else "umap-learn")


class ProjectionCache:
    """Projections stored as ``<folder>/<method>-<key>.npy``; ``key`` hashes the embedding's
    dtype, shape and bytes with the method, seed, PCA dims, extra parameters and library version,
    so a changed embedding or setting is a different file and nothing is ever stale.

    ``folder`` defaults to ``<WORKBENCH_CACHE>/projections``. Files are plain ``.npy`` (read
    with ``allow_pickle=False``) and written to a temporary file then renamed, so a reader never
    sees a partial one.
    """

    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = Path(folder) if folder is not None else workbench_cache() / "projections"

    def path(self, embedding, method: str = "tsne", seed: int = 0, pca: int | None = 50, sample: int | None = None,
             **kw) -> Path:
        """Where the projection of ``embedding`` with these settings is (or would be) stored."""
        _check_method(method)
        x = _matrix(embedding)
        digest = hashlib.sha256(f"{x.dtype.str}{x.shape}".encode())
        digest.update(x.tobytes())
        settings = TSNE_SETTINGS if method == "tsne" else UMAP_SETTINGS
        params = {"method": method, "seed": seed, "pca": pca, "version": _library_version(method), **settings, **kw}
        if sample and sample < len(x):  # a projection fitted on every row keeps its key
            params["sample"] = sample
        digest.update(json.dumps(params, sort_keys=True, default=str).encode())
        return self.folder / f"{method}-{digest.hexdigest()[:40]}.npy"

    def project(self, embedding, method: str = "tsne", seed: int = 0, pca: int | None = 50,
                sample: int | None = None, **kw) -> np.ndarray:
        """The stored projection if there is one, else compute, store and return it."""
        x = _matrix(embedding)
        path = self.path(x, method, seed, pca, sample, **kw)
        if path.exists():
            return np.load(path, allow_pickle=False)
        out = _project_uncached(x, method, seed, pca, sample, **kw)
        atomic_write(path, lambda tmp: np.save(tmp, out, allow_pickle=False))
        return out


def project(
    embedding,
    method: str = "tsne",
    seed: int = 0,
    pca: int | None = 50,
    cache_dir: str | os.PathLike | ProjectionCache | None = None,
    sample: int | None = None,
    **kw,
) -> np.ndarray:
    """2-D projection, float32 ``(n, 2)``, of an ``(n, d)`` embedding.

    ``method`` is ``"tsne"`` (openTSNE) or ``"umap"`` (umap-learn), after PCA to ``pca`` dims
    (``None``/0: none). ``kw`` overrides :data:`TSNE_SETTINGS` / :data:`UMAP_SETTINGS`. The same
    input and ``seed`` give the same output. With ``cache_dir`` (a folder or a
    :class:`ProjectionCache`) the result is read from / written to that cache. With ``sample``
    (fewer than n), PCA and the projection are fitted on that many random rows and every other row
    is placed by the library's own ``transform`` (openTSNE's ``TSNEEmbedding.transform``, umap's
    ``UMAP.transform``): how a million frames are projected.
    """
    _check_method(method)
    if cache_dir is not None:
        cache = cache_dir if isinstance(cache_dir, ProjectionCache) else ProjectionCache(cache_dir)
        return cache.project(embedding, method, seed, pca, sample, **kw)
    return _project_uncached(_matrix(embedding), method, seed, pca, sample, **kw)


def _neighbours(x: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    """Indices (len(query), k) of the k nearest points of ``x`` to each ``x[query]``, itself excluded."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x[query], return_distance=False)
    is_self = nn == query[:, None]
    is_self[~is_self.any(axis=1), -1] = True  # duplicates can push a point out of its own list
    return nn[~is_self].reshape(len(query), k)


def knn_preservation(high, low, k: int = 10, sample: int | None = None, seed: int = 0) -> float:
    """Mean fraction of each point's ``k`` nearest neighbours in ``high`` (n, d) that are also
    among its ``k`` nearest in ``low`` (n, 2): 1 = local structure kept, ~k/n = random.

    ``sample`` scores that many random query points (neighbours are still searched among all).
    """
    high, low = np.asarray(high, np.float32), np.asarray(low, np.float32)
    if len(high) != len(low):
        raise ValueError(f"high has {len(high)} rows, low has {len(low)}")
    n = len(high)
    query = np.arange(n) if not sample or sample >= n else np.random.default_rng(seed).choice(n, sample, replace=False)
    a, b = _neighbours(high, query, k), _neighbours(low, query, k)
    return float((a[:, :, None] == b[:, None, :]).any(axis=2).mean())


def _labeled(action) -> np.ndarray:
    action = np.asarray(action)
    return action >= 0 if np.issubdtype(action.dtype, np.number) else np.ones(len(action), bool)


def silhouette_scores(embedding, action, game, sample: int | None = 5000, seed: int = 0,
                      metric: str = "euclidean", return_values: bool = False):
    """Silhouette of the labeled rows grouped by action and by game (sklearn, in [-1, 1]).

    Seed 000's "clusters by action, not by game" reads ``by_action > by_game``. Both scores use
    the same random ``sample`` of rows (silhouette is O(n²)); NaN where fewer than 2 groups.
    ``return_values``: also the per-row silhouettes whose means these are (DataFrame indexed by
    row position in ``embedding``, columns ``by_action``, ``by_game``), to resample by block.
    """
    x = _matrix(embedding)
    action, game = np.asarray(action), np.asarray(game)
    rows = np.flatnonzero(_labeled(action))
    if sample and sample < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, sample, replace=False))
    from sklearn.metrics import silhouette_samples

    def values(labels):
        if not 1 < len(np.unique(labels[rows])) < len(rows):  # silhouette needs 2..n-1 groups
            return np.full(len(rows), np.nan)
        return silhouette_samples(x[rows], labels[rows], metric=metric)

    per_row = pd.DataFrame({"by_action": values(action), "by_game": values(game)}, index=rows)
    scores = pd.Series({"by_action": per_row["by_action"].mean(skipna=False),
                        "by_game": per_row["by_game"].mean(skipna=False), "n": len(rows)})
    return (scores, per_row) if return_values else scores


def interleaving(embedding, action, game, k: int = 10, metric: str = "euclidean", return_values: bool = False):
    """How mixed the games are inside each action cluster.

    For every labeled point, take its ``k`` nearest neighbours among the points with the same
    action; ``observed`` is the share of them from other games, ``expected`` the share that random
    mixing within that action would give ((n_a − n_a,g) / (n_a − 1)). ``interleaving`` =
    Σ observed / Σ expected: 1 = games perfectly interleaved, 0 = each game in its own
    sub-cluster. One row per action (index: the action label as text) and a row ``all``; columns
    ``n``, ``n_games``, ``observed``, ``expected`` (means over points), ``interleaving``.
    ``return_values``: also the per-point ``observed`` / ``expected`` (DataFrame indexed by row
    position in ``embedding``, labeled rows only; NaN for an action with a single point).
    """
    from sklearn.neighbors import NearestNeighbors

    x = _matrix(embedding)
    action, game = np.asarray(action), np.asarray(game)
    keep = _labeled(action)
    per_row = pd.DataFrame({"observed": np.nan, "expected": np.nan}, index=np.flatnonzero(keep))
    rows = {}
    for a in np.unique(action[keep]):
        idx = np.flatnonzero(keep & (action == a))
        _, g = np.unique(game[idx], return_inverse=True)
        row = {"n": len(idx), "n_games": int(g.max()) + 1}
        if len(idx) > 1:
            nn = NearestNeighbors(n_neighbors=min(k, len(idx) - 1), metric=metric).fit(x[idx])
            nn = nn.kneighbors(return_distance=False)  # without a query: each point's own excluded
            observed = (g[nn] != g[:, None]).mean(axis=1)
            expected = (len(idx) - np.bincount(g)[g]) / (len(idx) - 1)
            per_row.loc[idx, "observed"], per_row.loc[idx, "expected"] = observed, expected
            row.update(observed=observed.mean(), expected=expected.mean(),
                       interleaving=observed.sum() / expected.sum() if expected.sum() else np.nan)
        rows[str(a)] = row
    sums = per_row.sum()  # NaN (single-point actions) count as 0 over all labeled points
    rows["all"] = {"n": int(keep.sum()), "n_games": len(np.unique(game[keep])),
                   "observed": sums["observed"] / keep.sum() if keep.any() else np.nan,
                   "expected": sums["expected"] / keep.sum() if keep.any() else np.nan,
                   "interleaving": sums["observed"] / sums["expected"] if sums["expected"] else np.nan}
    out = pd.DataFrame.from_dict(rows, orient="index").rename_axis("action")
    out = out.reindex(columns=["n", "n_games", "observed", "expected", "interleaving"])
    return (out, per_row) if return_values else out
