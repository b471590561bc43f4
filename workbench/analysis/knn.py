"""Cross-game KNN accuracy (seed 000 §4.2): for a frame of game A, do its nearest neighbours
among game B's frames carry the same action label? The A×B matrix measures how well the two
games' actions align in embedding space, and is meant to predict which pairs gain from joint
training before running it — :func:`knn_predicts_benefit` checks that claim.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd
import xarray as xr

from .metrics import balanced_accuracy, require_rows, use_torch
from .neighbours import METRICS, knn_vote

#: ``backend="auto"`` runs torch (:mod:`.neighbours`) on a GPU, or on the CPU in blocks from this
#: many query × reference pairs per reference game; below, sklearn (the numbers of before).
TORCH_ABOVE = 50_000_000


def knn_matrix(
    ds: xr.Dataset,
    head: str = "steer",
    k: int = 10,
    metric: str = "cosine",
    standardize: bool = True,
    query_split: str | Iterable[str] | None = "test",
    reference_split: str | Iterable[str] | None = "val",
    backend: str = "auto",
    device=None,
) -> pd.DataFrame:
    """Balanced accuracy of predicting A's ``head`` labels by majority vote of their ``k``
    nearest neighbours among B's labeled frames (sklearn ``KNeighborsClassifier``, or the same
    exact search through torch in blocks: ``backend`` ``"torch"``, or ``"auto"`` on a GPU or
    from :data:`TORCH_ABOVE` pairs; ``device`` for torch, default CUDA when available).

    Rows (index ``query``) are the games A whose ``query_split`` frames are classified; columns
    (``reference``) the games B whose ``reference_split`` frames vote. Query rows are never
    references, so the diagonal is a held-out within-game score (extract the embeddings with
    ``split="all"`` so that both splits are there). The defaults keep both sides off the IDM's
    training frames (test queries, validation references), whose embeddings may have memorised
    their labels. With ``standardize`` every dimension is z-scored with B's reference rows only
    (the queries are transformed, never fitted, so game offsets stay).
    """
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(ds[head].values, np.int64)
    game = np.asarray(ds["game"].values).astype(str)
    query = (y >= 0) & require_rows(ds, query_split, "knn_matrix (query)")
    reference = (y >= 0) & require_rows(ds, reference_split, "knn_matrix (reference)") & ~query
    x = np.asarray(ds["embedding"].values, np.float32)
    games = list(dict.fromkeys(game[query | reference]))
    out = pd.DataFrame(np.nan, index=pd.Index(games, name="query"), columns=pd.Index(games, name="reference"))
    xq, yq, gq = x[query], y[query], game[query]
    for b in games:
        ref = reference & (game == b)
        if not ref.any() or not len(yq):
            continue
        n_neighbors = min(k, int(ref.sum()))
        if metric in METRICS and use_torch(backend, len(xq) * int(ref.sum()), TORCH_ABOVE):
            pred = knn_vote(x[ref], y[ref], xq, n_neighbors, metric=metric, standardize=standardize, device=device)
        else:
            clf = KNeighborsClassifier(n_neighbors=n_neighbors, metric=metric)
            clf = make_pipeline(StandardScaler(), clf) if standardize else clf
            pred = clf.fit(x[ref], y[ref]).predict(xq)
        for a in games:
            out.loc[a, b] = balanced_accuracy(yq[gq == a], pred[gq == a])
    out.attrs.update(head=head, k=k, metric=metric)
    return out


def benefit_matrix(joint: pd.DataFrame, single: pd.Series) -> pd.DataFrame:
    """Benefit of joint training: ``joint[A, B]`` (accuracy on A of a model trained on A+B)
    minus ``single[A]`` (the single-game model on A); the diagonal is NaN."""
    out = joint.sub(single.reindex(joint.index), axis=0).astype(float)
    for g in out.index.intersection(out.columns):
        out.loc[g, g] = np.nan
    return out


def knn_predicts_benefit(knn: pd.DataFrame, benefit: pd.DataFrame) -> dict:
    """Does the KNN matrix rank game pairs the way joint training helps them?

    Spearman rank correlation between off-diagonal ``knn[A, B]`` and ``benefit[A, B]`` over the
    pairs finite in both (games matched by name). Returns ``rho``, ``p_value``, ``n_pairs``
    (rho and p are NaN below 3 pairs).
    """
    from scipy.stats import spearmanr

    rows = knn.index.intersection(benefit.index)
    cols = knn.columns.intersection(benefit.columns)
    a = knn.loc[rows, cols].to_numpy(float)
    b = benefit.loc[rows, cols].to_numpy(float)
    off_diagonal = np.asarray(rows)[:, None] != np.asarray(cols)[None, :]
    ok = off_diagonal & np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return {"rho": float("nan"), "p_value": float("nan"), "n_pairs": int(ok.sum())}
    rho, p = spearmanr(a[ok], b[ok])
    return {"rho": float(rho), "p_value": float(p), "n_pairs": int(ok.sum())}
