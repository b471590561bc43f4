"""Running a model over many pairs in store order, and the balanced-accuracy tables of seed 000.

Pairs are visited sorted by (store, frame), so each zarr chunk is read and resized once.
"""

from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ...frames.stream import pair_tensor
from ...frames.stream import FrameReader


@torch.no_grad()
def infer(model: torch.nn.Module, reader: FrameReader, source: np.ndarray, frame: np.ndarray,
          batch_size: int = 256, device: torch.device | str = "cpu", progress: bool = False,
          desc: str = "embed") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Embeddings float32 ``(n, embed_dim)`` and logits ``{head: float32 (n, n_classes)}`` of
    the pairs ``(source[i], frame[i])``, in the given order."""
    was_training = model.training
    model.eval()
    n = len(frame)
    order = np.lexsort((frame, source))
    emb = np.empty((n, model.embed_dim), np.float32)
    logits = {h: np.empty((n, k), np.float32) for h, k in model.heads.items()}
    with tqdm(total=n, unit="pair", desc=desc, disable=not progress) as bar:
        for start in range(0, n, batch_size):
            sel = order[start : start + batch_size]
            first, second = reader.pairs(source[sel], frame[sel])
            z, out = model.embed_and_logits(pair_tensor(first, second, device))
            emb[sel] = z.float().cpu().numpy()
            for h, v in out.items():
                logits[h][sel] = v.float().cpu().numpy()
            bar.update(len(sel))
    model.train(was_training)
    return emb, logits


def score_table(y_true: Mapping[str, np.ndarray], y_pred: Mapping[str, np.ndarray], game: np.ndarray,
                games: Sequence[str]) -> dict[str, dict[str, dict[str, float]]]:
    """``{head: {game: {balanced_accuracy, accuracy, n}}}`` over the labeled pairs of each game.

    Balanced accuracy (mean recall over the true classes present) is seed 000's metric; games
    with no labeled pair for a head are left out of that head's table.
    """
    from sklearn.metrics import balanced_accuracy_score

    table: dict[str, dict[str, dict[str, float]]] = {}
    for head, truth in y_true.items():
        rows = {}
        for g, name in enumerate(games):
            sel = (game == g) & (truth >= 0)
            if not sel.any():
                continue
            t, p = truth[sel], y_pred[head][sel]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # one class present / predicted classes not in truth
                bacc = balanced_accuracy_score(t, p)
            rows[name] = {"balanced_accuracy": float(bacc), "accuracy": float((t == p).mean()), "n": int(sel.sum())}
        table[head] = rows
    return table


def mean_scores(table: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[str, float]:
    """Balanced accuracy per head averaged over games (a one-line summary for progress logs)."""
    return {h: float(np.mean([r["balanced_accuracy"] for r in rows.values()])) for h, rows in table.items() if rows}
