"""The calibration gap (seed 000 §5) and the ways to close it.

The IDM's embedding may hold an action while its decision boundary sits at the wrong place for a
game (e.g. what counts as "neutral" camera motion). This module measures how much accuracy each
re-placement of the boundary recovers:

* few-shot: a new linear boundary fitted on frozen embeddings with ``k`` labels per class;
* zero-label percentile calibration: a per-game neutral threshold at a percentile (67th: "about
  two thirds of gameplay is neutral") of motion magnitudes over 1000 unlabeled frames, with the
  turn side taken from the IDM's logits or from the flow sign;
* an automatic per-game percentile from the unlabeled flow distribution alone (the paper's open
  problem): :func:`auto_percentile`;
* :func:`calibration_gap`: the share of the gap (ceiling − zero-shot) each method closes.

Inputs follow the embedding-dataset contract of :func:`workbench.methods.idm.embed.extract_embeddings`,
extracted with ``split="all"``: calibration is fitted on a game's train frames and scored on its
test frames.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..core.errors import ConfigError, DataError
from ..flow.labels import auto_percentile, game_signs
from .metrics import balanced_accuracy, head_classes, require_rows
from .probes import one_blas_thread

#: (gate, side) pairs: what decides turn vs NEUTRAL, and what decides LEFT vs RIGHT.
#: gate "flow" = |flow_dom_dx|, "model" = the IDM's turn score; side "model" = RIGHT vs LEFT
#: logit, "flow" = sign of flow_dom_dx × flow_sign.
VARIANTS = (("flow", "model"), ("flow", "flow"), ("model", "model"))


# --------------------------------------------------------------------------- few-shot


def _seeds(seeds: int | Iterable[int]) -> list[int]:
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)


def few_shot_predictions(
    ds: xr.Dataset,
    head: str = "steer",
    k: int = 50,
    seeds: int | Iterable[int] = 5,
    C: float = 1.0,
    train_split: str | Iterable[str] = "train",
    test_split: str | Iterable[str] = "test",
    seed: int = 0,
) -> pd.DataFrame:
    """Per labeled ``test_split`` frame, the few-shot boundary's prediction for each label draw.

    For each game and draw ``s`` in ``seeds``: draw ``k`` labeled ``train_split`` frames of each
    class (all of a class when it has fewer) with ``numpy.random.default_rng([seed, s])`` — so
    ``seed`` (a study's draw seed) changes every draw and nothing else — fit a class-balanced
    LogisticRegression on their frozen embeddings (standardised with the game's unlabeled
    ``train_split`` statistics — no labels), and predict the game's test frames. Index ``row``
    (position in ``ds``); columns ``game`` and ``draw_<s>`` (int codes, -1 where the game has no
    train frames or a single class).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x = np.asarray(ds["embedding"].values, np.float32)
    y = np.asarray(ds[head].values, np.int64)
    game = np.asarray(ds["game"].values).astype(str)
    train = require_rows(ds, train_split, "few_shot")
    test = require_rows(ds, test_split, "few_shot") & (y >= 0)
    draws = _seeds(seeds)
    rows = np.flatnonzero(test)
    out = pd.DataFrame({"game": game[rows], **{f"draw_{s}": np.full(len(rows), -1, np.int64) for s in draws}},
                       index=pd.Index(rows, name="row"))
    with one_blas_thread():
        for g in dict.fromkeys(game[rows]):
            tr, te = train & (game == g), rows[game[rows] == g]
            by_class = [np.flatnonzero(tr & (y == c)) for c in np.unique(y[tr & (y >= 0)])]
            if len(by_class) < 2:
                continue
            scaler = StandardScaler().fit(x[tr])
            x_test = scaler.transform(x[te])
            for s in draws:
                rng = np.random.default_rng([int(seed), int(s)])
                pick = np.concatenate([rng.choice(r, min(k, len(r)), replace=False) for r in by_class])
                clf = LogisticRegression(C=C, class_weight="balanced", max_iter=1000)
                out.loc[te, f"draw_{s}"] = clf.fit(scaler.transform(x[pick]), y[pick]).predict(x_test)
    return out


def few_shot(ds: xr.Dataset, head: str = "steer", k: int = 50, **kw) -> pd.DataFrame:
    """Re-fit only the decision boundary, per game, from ``k`` labeled frames per class
    (:func:`few_shot_predictions`, which takes ``kw``: ``seeds``, ``C``, ``train_split``,
    ``test_split``, ``seed``), scored by balanced accuracy on the game's labeled test frames.
    Columns: ``game``, ``head``, ``k``, ``n_test``, ``balanced_accuracy`` (mean over the
    draws), ``std``, ``zero_shot`` (the IDM's own ``pred_<head>`` on the same frames).
    """
    preds = few_shot_predictions(ds, head, k, **kw)
    y = np.asarray(ds[head].values, np.int64)
    pred = np.asarray(ds[f"pred_{head}"].values, np.int64)
    rows = []
    for g in dict.fromkeys(np.asarray(ds["game"].values).astype(str)):
        te = preds.index[preds["game"] == g]
        draws = preds.loc[te].drop(columns="game")
        scores = [balanced_accuracy(y[te], d) for _, d in draws.items() if (d >= 0).all()] if len(te) else []
        rows.append({
            "game": g, "head": head, "k": k, "n_test": len(te),
            "balanced_accuracy": float(np.mean(scores)) if scores else float("nan"),
            "std": float(np.std(scores)) if scores else float("nan"),
            "zero_shot": balanced_accuracy(y[te], pred[te]),
        })
    return pd.DataFrame(rows)


def few_shot_curve(ds: xr.Dataset, head: str = "steer", ks: Sequence[int] = (1, 5, 10, 20, 50, 100),
                   **kw) -> pd.DataFrame:
    """:func:`few_shot` for each ``k`` in ``ks``, stacked (one row per game and k)."""
    return pd.concat([few_shot(ds, head, k=k, **kw) for k in ks], ignore_index=True)


# --------------------------------------------------------------------------- the gap

#: What a table says instead of a fraction closed when the ceiling does not beat zero-shot.
NO_GAP = "no gap at this budget"


def _scores(x, name: str) -> pd.Series:
    """Balanced accuracies as a Series: a Series/mapping as is, or one of this package's tables
    (indexed by its ``game``/``head`` columns; it must hold a single k / variant)."""
    if not isinstance(x, pd.DataFrame):
        return pd.Series(x, dtype=float, name=name)
    variant_cols = [c for c in ("k", "variant", "gate", "side") if c in x.columns]
    if variant_cols and len(x[variant_cols].drop_duplicates()) > 1:
        raise ValueError(f"{name}: pass one k/variant (the table has several {variant_cols} values)")
    keys = [c for c in ("game", "head") if c in x.columns]
    out = x.set_index(keys)["balanced_accuracy"] if keys else x["balanced_accuracy"]
    return out.astype(float).rename(name)


def calibration_gap(zero_shot, few_shot=None, ceiling=None, **methods) -> pd.DataFrame:
    """How much of the calibration gap each method closes.

    All inputs are balanced accuracies indexed alike (Series by game or (game, head), or this
    package's tables: :func:`~workbench.analysis.metrics.accuracy_table`, :func:`few_shot`,
    :func:`percentile_calibration` filtered to one variant, ...). Columns: ``zero_shot``,
    ``ceiling``, ``gap`` (ceiling − zero-shot), ``gap_note`` (:data:`NO_GAP` where the gap is
    not positive — the ceiling did not beat zero-shot at this training budget, so there is
    nothing to close — else empty), and per method (``few_shot`` and any keyword) its accuracy
    and ``<method>_closed`` = (method − zero-shot) / gap (1 = gap closed; NaN where ``gap_note``
    says there is no gap).
    """
    if ceiling is None:
        raise ValueError("calibration_gap needs the ceiling (e.g. a fine-tuned model or a probe)")
    methods = {"few_shot": few_shot, **methods} if few_shot is not None else methods
    out = pd.concat([_scores(zero_shot, "zero_shot"), _scores(ceiling, "ceiling")], axis=1, join="inner")
    out["gap"] = out["ceiling"] - out["zero_shot"]
    out["gap_note"] = np.where(out["gap"] <= 0, NO_GAP, "")
    gap = out["gap"].where(out["gap"] > 0)
    for name, scores in methods.items():
        out[name] = _scores(scores, name).reindex(out.index)
        out[f"{name}_closed"] = (out[name] - out["zero_shot"]) / gap
    return out


# --------------------------------------------------------------------------- zero-label percentiles


def turn_score(logits: np.ndarray, classes: Sequence[str]) -> np.ndarray:
    """The IDM's own motion magnitude: logsumexp(LEFT, RIGHT) − NEUTRAL logit, (n,) float64."""
    lg = np.asarray(logits, np.float64)
    i = _steer_index(classes)
    return np.logaddexp(lg[:, i["LEFT"]], lg[:, i["RIGHT"]]) - lg[:, i["NEUTRAL"]]


def gated_steer(magnitude: np.ndarray, side: np.ndarray, threshold: float, classes: Sequence[str]) -> np.ndarray:
    """Steer codes (int64): NEUTRAL where ``magnitude <= threshold`` (``<=`` so that exact-zero
    flow is neutral at a zero threshold, as in :mod:`workbench.flow.labels`), else RIGHT where
    ``side > 0`` and LEFT otherwise."""
    i = _steer_index(classes)
    turn = np.where(np.asarray(side) > 0, i["RIGHT"], i["LEFT"])
    return np.where(np.asarray(magnitude) <= threshold, i["NEUTRAL"], turn).astype(np.int64)


def _steer_index(classes: Sequence[str]) -> dict[str, int]:
    missing = {"LEFT", "NEUTRAL", "RIGHT"} - set(classes)
    if missing:
        raise DataError(f"percentile calibration needs LEFT/NEUTRAL/RIGHT classes, got {list(classes)}")
    return {c: list(classes).index(c) for c in ("LEFT", "NEUTRAL", "RIGHT")}


def _prepare(ds, head, variants, n_unlabeled, fit_split, eval_split, flow_sign, seed) -> list[dict]:
    """Per game: gate magnitudes of the (unlabeled) fit frames and of the labeled eval frames,
    side signals and true labels of the eval frames, the IDM's zero-shot predictions."""
    classes = head_classes(ds)[head]
    _steer_index(classes)
    gates = {g for g, _ in variants}
    sides = {s for _, s in variants}
    needs_flow = "flow" in gates | sides
    if needs_flow and "flow_dom_dx" not in ds:
        raise DataError("flow variants need flow_dom_dx in the embedding dataset (compute flow first)")
    game = np.asarray(ds["game"].values).astype(str)
    y = np.asarray(ds[head].values, np.int64)
    pred = np.asarray(ds[f"pred_{head}"].values, np.int64)
    logits = np.asarray(ds[f"logits_{head}"].values, np.float64)
    signal = {}
    if "flow_dom_dx" in ds:
        dom_dx = np.asarray(ds["flow_dom_dx"].values, np.float64)
        sign_attrs = ds["flow_steer"].attrs if "flow_steer" in ds else ds.attrs
        signs = game_signs(np.unique(game), flow_sign or None, sign_attrs)  # {} = not given
        signal["flow_gate"] = np.abs(dom_dx)
        names, inverse = np.unique(game, return_inverse=True)
        signal["flow_side"] = dom_dx * np.array([signs[g] for g in names], np.float64)[inverse]
        valid = np.isfinite(dom_dx)
    else:
        valid = np.ones(len(game), bool)
    signal["model_gate"] = turn_score(logits, classes)
    signal["model_side"] = logits[:, classes.index("RIGHT")] - logits[:, classes.index("LEFT")]
    fit_rows = valid & require_rows(ds, fit_split, "percentile calibration")
    eval_rows = valid & require_rows(ds, eval_split, "percentile calibration") & (y >= 0)
    rng = np.random.default_rng(seed)
    out = []
    for g in dict.fromkeys(game):
        fit = np.flatnonzero(fit_rows & (game == g))
        fit = np.sort(rng.choice(fit, min(n_unlabeled, len(fit)), replace=False))
        ev = eval_rows & (game == g)
        out.append({
            "game": g, "classes": classes, "n_fit": len(fit), "n_eval": int(ev.sum()), "y": y[ev],
            "true_neutral_share": float(np.mean(y[ev] == classes.index("NEUTRAL"))) if ev.any() else float("nan"),
            "zero_shot": balanced_accuracy(y[ev], pred[ev]),
            "fit": {gate: signal[f"{gate}_gate"][fit] for gate in gates},
            "eval_gate": {gate: signal[f"{gate}_gate"][ev] for gate in gates},
            "eval_side": {side: signal[f"{side}_side"][ev] for side in sides},
            "flow_fit": signal["flow_gate"][fit] if "flow_gate" in signal else None,
        })
        out[-1]["rows"] = np.flatnonzero(ev)  # positions in ds of the eval frames
    return out


def _evaluate(game: dict, percentile: float, variants, head: str) -> list[dict]:
    rows = []
    for gate, side in variants:
        fit = game["fit"][gate]
        threshold = float(np.percentile(fit, percentile)) if len(fit) else float("nan")
        ok = len(fit) and game["n_eval"]
        pred = gated_steer(game["eval_gate"][gate], game["eval_side"][side], threshold, game["classes"])
        rows.append({
            "game": game["game"], "head": head, "gate": gate, "side": side, "percentile": float(percentile),
            "true_neutral_share": game["true_neutral_share"], "threshold": threshold, "n_fit": game["n_fit"], "n_eval": game["n_eval"],
            "balanced_accuracy": balanced_accuracy(game["y"], pred) if ok else float("nan"),
            "zero_shot": game["zero_shot"],
        })
    return rows


def percentile_calibration(
    ds: xr.Dataset,
    head: str = "steer",
    percentile: float | str | Mapping[str, float] = 67.0,
    variants: Sequence[tuple[str, str]] = VARIANTS,
    n_unlabeled: int = 1000,
    fit_split: str | Iterable[str] = "train",
    eval_split: str | Iterable[str] = "test",
    flow_sign: Mapping[str, int] | None = None,
    auto_method: str = "gmm",
    seed: int = 0,
    return_predictions: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Zero-label calibration of a LEFT/NEUTRAL/RIGHT head (seed 000 §5).

    Per game, ``n_unlabeled`` random frames of ``fit_split`` (fewer if the game has fewer; their
    labels are never read) set the neutral threshold at ``percentile`` of the gate's magnitude;
    frames at or below it are NEUTRAL, the others LEFT/RIGHT by the side signal (see
    :data:`VARIANTS`). ``percentile`` is a number, a game -> number mapping, or ``"auto"``
    (:func:`auto_percentile` of the fit frames' |flow_dom_dx|, applied to every gate).
    ``flow_sign`` (game -> ±1) defaults to the one recorded on ``flow_steer``, else +1.
    ``return_predictions`` also returns the per-frame predictions: index ``row`` (position in
    ``ds`` of a labeled ``eval_split`` frame), columns ``game`` and ``<gate>-<side>`` (codes).

    Returns one row per game and variant: ``game``, ``head``, ``gate``, ``side``,
    ``percentile``, ``true_neutral_share`` (the NEUTRAL share of the scored frames' true labels,
    so a reader can see whether a percentile matched the game: p67 is the oracle prior only where
    this is about 0.67), ``threshold`` (px/frame for the flow gate), ``n_fit``, ``n_eval``,
    ``balanced_accuracy`` on the labeled ``eval_split`` frames, and ``zero_shot`` (the IDM's
    argmax on the same frames).
    """
    rows, preds = [], []
    for game in _prepare(ds, head, variants, n_unlabeled, fit_split, eval_split, flow_sign, seed):
        if isinstance(percentile, str):
            if percentile != "auto":
                raise ConfigError(f"percentile must be a number, a mapping or 'auto', got {percentile!r}")
            if game["flow_fit"] is None:
                raise DataError("percentile='auto' estimates the neutral share from flow_dom_dx,"
                                " which the dataset lacks")
            p = auto_percentile(game["flow_fit"], auto_method, seed=seed)
        elif isinstance(percentile, Mapping):
            p = float(percentile[game["game"]])
        else:
            p = float(percentile)
        new = _evaluate(game, p, variants, head)
        rows += new
        if return_predictions:
            preds.append(pd.DataFrame(
                {"game": game["game"], **{f"{r['gate']}-{r['side']}": gated_steer(
                    game["eval_gate"][r["gate"]], game["eval_side"][r["side"]], r["threshold"], game["classes"])
                    for r in new}}, index=pd.Index(game["rows"], name="row")))
    if return_predictions:
        return pd.DataFrame(rows), pd.concat(preds) if preds else pd.DataFrame()
    return pd.DataFrame(rows)


def percentile_sweep(
    ds: xr.Dataset,
    head: str = "steer",
    percentiles: Iterable[float] = range(30, 100, 5),
    variants: Sequence[tuple[str, str]] = VARIANTS,
    n_unlabeled: int = 1000,
    fit_split: str | Iterable[str] = "train",
    eval_split: str | Iterable[str] = "test",
    flow_sign: Mapping[str, int] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Accuracy against the percentile: :func:`percentile_calibration` at each of
    ``percentiles`` (same fit frames throughout), stacked; one row per game, variant and
    percentile."""
    prepared = _prepare(ds, head, variants, n_unlabeled, fit_split, eval_split, flow_sign, seed)
    return pd.DataFrame([row for p in percentiles for game in prepared for row in _evaluate(game, p, variants, head)])
