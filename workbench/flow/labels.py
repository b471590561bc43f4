"""Flow-proxy steering labels (seed 000 §3) and how well they agree with true input (seed 000
could not measure this for Atari; with recorded input we can).

``flow_steer`` uses the STEER_CLASSES codes: 0 LEFT, 1 NEUTRAL, 2 RIGHT, -1 where the flow is
NaN (an episode's last frame). A pair is NEUTRAL when ``|flow_dom_dx| <= threshold``; otherwise
its side is ``sign(flow_dom_dx * flow_sign[game])``:

* ``flow_sign = +1`` when the controlled thing moves on screen in the action's direction
  (Atari sprites: pressing RIGHT moves the sprite right).
* ``flow_sign = -1`` when the camera turns and the world flows the other way (first-person
  turning, CarRacing's car-centred camera: steering right makes the road flow left).

The threshold is a number in px/frame or a per-game percentile ``"p67"``: the 67th percentile of
that game's ``|flow_dom_dx|``, seed 000 §5's rule that about two thirds of gameplay is neutral.
"""

from __future__ import annotations

import re
import warnings
from typing import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from ..data.schema import STEER_CLASSES, UNLABELED, steer_from_sign

# px/frame. Below half a pixel per frame the dominant horizontal flow of a 96x96 game frame is
# mostly background scroll, parallax and estimator noise, not a steering input.
DEFAULT_THRESHOLD = 0.5
_PERCENTILE = re.compile(r"^p(\d+(?:\.\d+)?)$")


def parse_threshold(threshold: float | str) -> tuple[str, float]:
    """``0.5`` -> ``("px", 0.5)``; ``"p67"`` -> ``("percentile", 67.0)``."""
    if isinstance(threshold, str):
        m = _PERCENTILE.match(threshold)
        if not m or not 0 <= float(m.group(1)) <= 100:
            raise ValueError(f"threshold {threshold!r}: use a number in px/frame or 'p<0..100>', e.g. 'p67'")
        return "percentile", float(m.group(1))
    value = float(threshold)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"threshold must be a non-negative number of px/frame, got {threshold!r}")
    return "px", value


def game_thresholds(dom_dx: np.ndarray, game: np.ndarray, threshold: float | str) -> dict[str, float]:
    """The neutral threshold (px/frame) of each game in ``game``.

    A percentile is taken over that game's finite ``|dom_dx|``; a game without any finite
    value gets NaN (all its labels are -1 anyway).
    """
    kind, value = parse_threshold(threshold)
    out = {}
    for g in np.unique(game):
        if kind == "px":
            out[str(g)] = value
            continue
        mags = np.abs(dom_dx[(game == g) & np.isfinite(dom_dx)])
        out[str(g)] = float(np.percentile(mags, value)) if len(mags) else float("nan")
    return out


def game_signs(games, flow_sign: Mapping[str, int] | None, attrs: Mapping) -> dict[str, int]:
    """``flow_sign`` per game: the argument, else the dataset attr ``flow_sign``, else +1."""
    given = dict(attrs.get("flow_sign", {}) if flow_sign is None else flow_sign)
    out = {str(g): int(given.get(str(g), 1)) for g in games}
    bad = {g: s for g, s in out.items() if s not in (1, -1)}
    if bad:
        raise ValueError(f"flow_sign must be +1 or -1 per game, got {bad}")
    return out


def proxy_steer(
    ds: xr.Dataset,
    threshold: float | str = DEFAULT_THRESHOLD,
    flow_sign: Mapping[str, int] | None = None,
) -> xr.DataArray:
    """The ``flow_steer`` label (int8 codes, dim ``frame``) from ``ds.flow_dom_dx`` and ``ds.game``.

    Its attrs record the rule: kind/classes like a schema label, ``threshold`` as given,
    ``threshold_px`` (game -> px/frame actually used) and ``flow_sign`` (game -> ±1).
    """
    dom_dx = np.asarray(ds["flow_dom_dx"].values, np.float64)
    game = np.asarray(ds["game"].values).astype(str)
    thresholds = game_thresholds(dom_dx, game, threshold)
    signs = game_signs(thresholds, flow_sign, ds.attrs)
    codes = np.full(len(dom_dx), UNLABELED, np.int8)
    for g, thr in thresholds.items():
        sel = game == g
        codes[sel] = steer_from_sign(dom_dx[sel] * signs[g], dead_zone=thr)
    kind, _ = parse_threshold(threshold)
    attrs = {
        "name": "flow_steer",
        "kind": "categorical",
        "classes": list(STEER_CLASSES),
        "description": "optical-flow proxy of horizontal steering (seed 000 §3): NEUTRAL when"
        " |flow_dom_dx| <= threshold_px, else the side of flow_dom_dx * flow_sign",
        "threshold": threshold if kind == "percentile" else float(threshold),
        "threshold_px": thresholds,
        "flow_sign": signs,
    }
    return xr.DataArray(codes, dims="frame", attrs=attrs, name="flow_steer")


def _shares(codes: np.ndarray) -> dict[str, float]:
    """Fraction of each steering class among ``codes`` (NaN when there are none)."""
    counts = np.bincount(codes, minlength=len(STEER_CLASSES))[: len(STEER_CLASSES)]
    return {c: k / len(codes) if len(codes) else float("nan") for c, k in zip(STEER_CLASSES, counts)}


def agreement(ds: xr.Dataset, true: str = "steer", proxy: str = "flow_steer") -> pd.DataFrame:
    """How well the proxy label matches the true one, per game (index ``game``).

    Only frames labeled in both count. Columns: ``n`` (such pairs), ``accuracy``,
    ``balanced_accuracy`` (mean recall over the true classes present), ``kappa`` (Cohen's κ;
    NaN when undefined, e.g. a single class on both sides), and the class shares
    ``true_LEFT`` … ``proxy_RIGHT``. Games without such pairs have ``n = 0`` and NaN scores.
    """
    # imported here: flow worker processes import this package and need not pay for sklearn
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, cohen_kappa_score

    y_true = np.asarray(ds[true].values).astype(np.int64)
    y_proxy = np.asarray(ds[proxy].values).astype(np.int64)
    game = np.asarray(ds["game"].values).astype(str)
    rows = []
    for g in np.unique(game):
        sel = (game == g) & (y_true >= 0) & (y_proxy >= 0)
        t, p = y_true[sel], y_proxy[sel]
        row = {"game": g, "n": int(sel.sum())}
        if len(t):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UndefinedMetricWarning)
                warnings.simplefilter("ignore", RuntimeWarning)
                warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
                warnings.filterwarnings("ignore", message="A single label was found")
                row.update(
                    accuracy=accuracy_score(t, p),
                    balanced_accuracy=balanced_accuracy_score(t, p),
                    kappa=cohen_kappa_score(t, p, labels=[0, 1, 2]),
                )
        row.update({f"true_{c}": v for c, v in _shares(t).items()})
        row.update({f"proxy_{c}": v for c, v in _shares(p).items()})
        rows.append(row)
    columns = ["game", "n", "accuracy", "balanced_accuracy", "kappa",
               *[f"true_{c}" for c in STEER_CLASSES], *[f"proxy_{c}" for c in STEER_CLASSES]]
    return pd.DataFrame(rows).reindex(columns=columns).set_index("game")
