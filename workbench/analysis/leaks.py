"""Leak audit: does one frame, or one region of it, predict an action label as well as the
motion between two frames does?

An inverse dynamics model should read the label from motion. If a single frame shows it (a HUD's
steering bar, a score that grows while firing, a sprite drawn in its turning pose), a model can
score well without understanding motion, and an accuracy built on it says nothing about motion.

For each game and head, over frame pairs ``(t, t+1)`` of one episode, linear probes
(:func:`workbench.analysis.probes.make_probe`, balanced accuracy out of fold) are fitted per
image region on grey frames mean-pooled by ``pool``, three ways: ``frame_t1`` (frame t+1 alone),
``frame_t`` (frame t alone) and ``difference`` (t+1 − t). Regions: a ``grid`` × ``grid`` grid
(``r<i>c<j>``), bands of ``band`` pooled rows/columns along each edge, and ``whole`` (the frame
pooled to ``whole_size``). The motion signal is the best of the whole-frame difference probe and
the probe on the optical-flow statistics (``flow_*``, when the flow store is merged).

Folds are ``GroupKFold`` over ``block``-frame blocks of the store (the project's block split);
pairs whose two frames fall in different blocks are dropped, so no frame is on both sides.

A region is flagged when its single-frame accuracy is at least ``margin`` over chance and at
least the motion signal minus ``tolerance``: a frame shows the answer as well as motion does. A
flagged region is a leak unless the catalog entry accepts it as part of the game world
(``accept_cues: {<game>: {<region, or * for any>: <why>}}``, e.g. a car sprite drawn in its
steering pose, a player sprite facing the way it moves): a HUD is removed with ``crop``/``mask``,
a sprite cannot be, and is reported, not hidden. The whole frame
is reported (``single_frame`` in :func:`audit_verdict`) beside every pair-based accuracy.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd
import xarray as xr
from sklearn.model_selection import GroupKFold

from ..core.errors import WorkbenchError
from ..data.episode import successor_mask
from ..core.paths import atomic_write
from .metrics import balanced_accuracy, chance_level
from .probes import make_probe, one_blas_thread

FEATURES = ("frame_t1", "frame_t", "difference")
SINGLE_FRAME = ("frame_t1", "frame_t")
FLOW_VARIABLES = ("flow_dx", "flow_dy", "flow_mag", "flow_dom_dx")
#: Defaults of :func:`leak_audit`; also what :func:`cached_audit` keys its file on.
DEFAULTS = {"heads": ("steer",), "grid": 4, "band": 4, "pool": 2, "whole_size": 24, "block": 64, "n_splits": 3,
            "max_pairs": 4000, "C": 0.1, "margin": 0.15, "tolerance": 0.02, "seed": 0, "accepted": None}
PROBE_COLUMNS = ["game", "head", "region", "feature", "n", "chance", "balanced_accuracy"]
#: What the rule and the entry decide, not the probes: applied again when a cached audit is read.
RULE = ("margin", "tolerance", "accepted")
VERDICT_COLUMNS = ["game", "head", "chance", "motion", "difference_whole", "flow", "single_frame", "single_frame_t",
                   "best_region", "best_region_accuracy", "flagged", "accepted", "leak"]
_cache_lock = threading.Lock()


def regions(height: int, width: int, grid: int = 4, band: int = 4) -> dict[str, tuple[slice, slice]]:
    """Named ``(rows, cols)`` slices of a ``height × width`` image: grid cells ``r<i>c<j>`` and
    edge bands ``top``/``bottom``/``left``/``right`` of ``band`` rows or columns."""
    ys, xs = np.linspace(0, height, grid + 1).astype(int), np.linspace(0, width, grid + 1).astype(int)
    out = {f"r{i}c{j}": (slice(ys[i], ys[i + 1]), slice(xs[j], xs[j + 1])) for i in range(grid) for j in range(grid)}
    out.update({"top": (slice(0, band), slice(None)), "bottom": (slice(height - band, height), slice(None)),
                "left": (slice(None), slice(0, band)), "right": (slice(None), slice(width - band, width))})
    return out


def grey_pooled(frames: np.ndarray, pool: int) -> np.ndarray:
    """``(n, y, x, 3)`` uint8 frames → float32 ``(n, y // pool, x // pool)`` grey, mean-pooled."""
    grey = np.asarray(frames, np.float32).mean(-1) / 255.0
    n, h, w = grey.shape
    h, w = h // pool * pool, w // pool * pool
    return grey[:, :h, :w].reshape(n, h // pool, pool, w // pool, pool).mean((2, 4))


def _resize_grey(grey: np.ndarray, size: int) -> np.ndarray:
    """Mean-pool ``(n, h, w)`` to at most ``size × size`` (integer factors) and flatten."""
    factor = max(1, int(np.ceil(max(grey.shape[1:]) / size)))
    h, w = grey.shape[1] // factor * factor, grey.shape[2] // factor * factor
    pooled = grey[:, :h, :w].reshape(len(grey), h // factor, factor, w // factor, factor).mean((2, 4))
    return pooled.reshape(len(grey), -1)


def audit_pairs(ds: xr.Dataset, game: str, block: int, max_pairs: int, seed: int) -> np.ndarray:
    """Frame indices ``t`` of ``game``'s pairs whose frame ``t+1`` continues the episode in the
    same ``block``; at most ``max_pairs``, as whole blocks drawn with ``seed``."""
    games = np.asarray(ds["game"].values).astype(str)
    nxt = successor_mask(games, ds["episode"].values, ds["step"].values)
    t = np.flatnonzero(nxt & (games == game))
    t = t[t // block == (t + 1) // block]
    blocks = np.unique(t // block)
    if len(t) > max_pairs:
        order = np.random.default_rng(seed).permutation(blocks)
        sizes = np.bincount(np.searchsorted(blocks, t // block), minlength=len(blocks))[np.searchsorted(blocks, order)]
        keep = order[np.cumsum(sizes) <= max_pairs]
        t = t[np.isin(t // block, keep)]
    return t


def _grey_frames(ds: xr.Dataset, index: np.ndarray, pool: int, chunk: int = 512) -> np.ndarray:
    parts = [grey_pooled(ds["frames"].isel(frame=index[i:i + chunk]).values, pool) for i in range(0, len(index), chunk)]
    return np.concatenate(parts)


def _score(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_splits: int, C: float) -> float:
    """Balanced accuracy of out-of-fold probe predictions (GroupKFold over ``groups``)."""
    pred = np.full(len(y), -1, np.int64)
    with one_blas_thread():
        for train, test in GroupKFold(n_splits=n_splits).split(x, y, groups):
            if len(np.unique(y[train])) < 2:
                return float("nan")
            pred[test] = make_probe(C=C).fit(x[train], y[train]).predict(x[test])
    return balanced_accuracy(y, pred)


def leak_audit(ds: xr.Dataset, heads=DEFAULTS["heads"], grid: int = 4, band: int = 4, pool: int = 2,
               whole_size: int = 24, block: int = 64, n_splits: int = 3, max_pairs: int = 4000, C: float = 0.1,
               margin: float = 0.15, tolerance: float = 0.02, seed: int = 0,
               accepted: Mapping[str, Mapping[str, str]] | None = None) -> pd.DataFrame:
    """Probe accuracy per game, head, region and feature (see the module docstring).

    ``ds``: a dataset store as opened by :func:`workbench.data.store.open_dataset` (frames,
    labels, ``game``/``episode``/``step``; ``flow_*`` used when present). Columns: ``game``,
    ``head``, ``region``, ``feature`` (:data:`FEATURES`, or ``flow`` for region ``flow``), ``n``,
    ``chance``, ``balanced_accuracy``, ``motion`` (the game/head's motion signal), ``flagged``,
    ``accepted`` (why the entry accepts a flagged region; ``accepted``: ``{game: {region: why}}``)
    and ``leak`` (flagged, not accepted). A game/head with fewer than ``n_splits`` blocks or 2
    classes is skipped.
    """
    games = list(dict.fromkeys(np.asarray(ds["game"].values).astype(str)))
    rows = []
    for game in games:
        t = audit_pairs(ds, game, block, max_pairs, seed)
        labels = {h: np.asarray(ds[h].values)[t] for h in heads if h in ds}
        if not len(t) or not labels:
            continue
        frames = np.unique(np.concatenate([t, t + 1]))
        grey = _grey_frames(ds, frames, pool)
        g0, g1 = grey[np.searchsorted(frames, t)], grey[np.searchsorted(frames, t + 1)]
        views = {"frame_t1": g1, "frame_t": g0, "difference": g1 - g0}
        named = regions(*grey.shape[1:], grid=grid, band=band)
        flow = None
        if all(v in ds for v in (*FLOW_VARIABLES, "flow_grid")):
            flow = np.concatenate([np.stack([ds[v].values[t] for v in FLOW_VARIABLES], 1),
                                   np.asarray(ds["flow_grid"].values[t]).reshape(len(t), -1)], 1)
            flow = np.nan_to_num(flow.astype(np.float32))
        for head, y in labels.items():
            ok = y >= 0
            groups = t[ok] // block
            if len(np.unique(groups)) < n_splits or len(np.unique(y[ok])) < 2:
                continue
            base = {"game": game, "head": head, "n": int(ok.sum()), "chance": chance_level(y[ok])}

            def add(region: str, feature: str, x: np.ndarray) -> None:
                score = _score(x[ok], y[ok].astype(np.int64), groups, n_splits, C)
                rows.append({**base, "region": region, "feature": feature, "balanced_accuracy": score})

            for feature, view in views.items():
                add("whole", feature, _resize_grey(view, whole_size))
                for region, (ry, rx) in named.items():
                    add(region, feature, view[:, ry, rx].reshape(len(view), -1))
            if flow is not None:
                add("flow", "flow", flow)
    return flag_leaks(pd.DataFrame(rows, columns=PROBE_COLUMNS), margin, tolerance, accepted)


def flag_leaks(table: pd.DataFrame, margin: float = 0.15, tolerance: float = 0.02,
               accepted: Mapping[str, Mapping[str, str]] | None = None) -> pd.DataFrame:
    """Add ``motion`` (best of the whole-frame difference and flow probes per game/head),
    ``flagged`` (a single-frame region probe ≥ chance + ``margin`` and ≥ motion − ``tolerance``),
    ``accepted`` (the entry's reason for accepting that game's region or ``*``, else "") and ``leak``."""
    table = table.copy()
    is_motion = ((table.region == "whole") & (table.feature == "difference")) | (table.feature == "flow")
    motion = table[is_motion].groupby(["game", "head"])["balanced_accuracy"].max().rename("motion")
    table = table.join(motion, on=["game", "head"])
    single = table.feature.isin(SINGLE_FRAME) & ~table.region.isin(["whole", "flow"])
    acc = table.balanced_accuracy
    table["flagged"] = single & (acc >= table.chance + margin) & (acc >= table.motion - tolerance)
    cues = {g: dict(c) for g, c in (accepted or {}).items()}
    table["accepted"] = [str(cues.get(g, {}).get(r) or cues.get(g, {}).get("*", "")) if f else ""
                         for g, r, f in zip(table.game, table.region, table.flagged)]
    table["leak"] = table.flagged & (table.accepted == "")
    return table


def audit_verdict(table: pd.DataFrame) -> pd.DataFrame:
    """One row per game and head: chance, the motion signal (and its parts), the whole-frame
    single-frame probes, the best single-frame region, the regions flagged, and ``leak``."""
    rows = []
    for (game, head), part in table.groupby(["game", "head"], sort=False):
        acc = part.set_index(["region", "feature"])["balanced_accuracy"]
        single = part[part.feature.isin(SINGLE_FRAME) & ~part.region.isin(["whole", "flow"])]
        best = single.loc[single.balanced_accuracy.idxmax()] if single.balanced_accuracy.notna().any() else None
        flagged, ok = single[single.flagged], single[single.flagged & ~single.leak]
        rows.append({
            "game": game, "head": head, "chance": part.chance.iloc[0], "motion": part.motion.iloc[0],
            "difference_whole": acc.get(("whole", "difference"), np.nan), "flow": acc.get(("flow", "flow"), np.nan),
            "single_frame": acc.get(("whole", "frame_t1"), np.nan), "single_frame_t": acc.get(("whole", "frame_t"), np.nan),
            "best_region": None if best is None else f"{best.region} ({best.feature})",
            "best_region_accuracy": np.nan if best is None else best.balanced_accuracy,
            "flagged": ", ".join(f"{r.region} ({r.feature}) {r.balanced_accuracy:.2f}" for r in flagged.itertuples()),
            "accepted": "; ".join(dict.fromkeys(f"{r.region}: {r.accepted}" for r in ok.itertuples())),
            "leak": bool(single.leak.any()),
        })
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)


def audit_regions(table: pd.DataFrame) -> pd.DataFrame:
    """The audit's probe accuracy per (game, head, region) row and feature column (balanced accuracy)."""
    return table.pivot_table(index=["game", "head", "region"], columns="feature", values="balanced_accuracy",
                             sort=False)


def audit_path(store: Path, ds: xr.Dataset, **params) -> Path:
    """Where :func:`cached_audit` keeps the probes of ``store`` (opened as ``ds``) with ``params``:
    ``leak-audit-<hash>.csv`` beside the store, the hash over the probe parameters (not the
    :data:`RULE`), the store's write time and the derived (flow) stores merged."""
    settings = {k: v for k, v in {**DEFAULTS, **params}.items() if k not in RULE}
    settings["heads"] = list(settings["heads"])
    meta = Path(store) / ".zmetadata"
    key = json.dumps({**settings, "store": meta.stat().st_mtime_ns if meta.exists() else 0,
                      "derived": list(ds.attrs.get("derived", []))}, sort_keys=True)
    return Path(store).parent / f"leak-audit-{hashlib.sha1(key.encode()).hexdigest()[:10]}.csv"


def cached_audit(store: Path, ds: xr.Dataset, **params) -> pd.DataFrame:
    """:func:`leak_audit` of the dataset of ``store`` (opened as ``ds``): the probes are computed
    once per store and probe parameters and kept at :func:`audit_path` (written atomically); the
    :data:`RULE` (thresholds, the entry's accepted cues) is applied on every read."""
    settings = {**DEFAULTS, **params}
    path = audit_path(store, ds, **params)
    with _cache_lock:
        if not path.is_file():
            probes = leak_audit(ds, **{k: v for k, v in settings.items() if k not in RULE})[PROBE_COLUMNS]
            atomic_write(path, lambda tmp: probes.to_csv(tmp, index=False))
    return flag_leaks(pd.read_csv(path), settings["margin"], settings["tolerance"], settings["accepted"])


class LeakError(WorkbenchError, ValueError):
    """A dataset's leak audit flags a region; a study refuses to report it unless told to go on."""


def audit_summary(table: pd.DataFrame) -> str:
    """One line for a run's log: how many game · head checks an audit ``table`` made, how many
    flagged a region the entry accepts as a game-world cue, and how many leaks it found."""
    verdict = audit_verdict(table)
    accepted = int((verdict.accepted.astype(bool) & ~verdict.leak.astype(bool)).sum())
    leaks = verdict[verdict.leak.astype(bool)]
    named = f" ({', '.join(f'{r.game} · {r.head}' for r in leaks.itertuples())})" if len(leaks) else ""
    return (f"leak audit: {len(verdict)} game · head checks, {accepted} with an accepted cue, "
            f"{len(leaks)} leak{'' if len(leaks) == 1 else 's'}{named}")


def refuse_leaks(table: pd.DataFrame, where: str) -> None:
    """Raise :class:`LeakError` naming every game and head of an audit ``table`` with a leak
    (a flagged region the entry does not accept)."""
    verdict = audit_verdict(table)
    flagged = verdict[verdict.leak.astype(bool)]
    if len(flagged):
        found = "; ".join(f"{r.game} · {r.head}: {r.flagged} vs motion {r.motion:.2f}" for r in flagged.itertuples())
        raise LeakError(f"{where}: the leak audit finds single-frame regions that predict the label as well as motion"
                        f" ({found}); remove a HUD with crop/mask in the catalog entry, accept a game-world cue"
                        " (e.g. a sprite's pose) with the entry's accept_cues, or pass --allow-leaks")
