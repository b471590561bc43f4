"""The calibration gap (seed 000 §5) and the ways to close it.

The IDM's embedding may hold an action while its decision boundary sits at the wrong place for a
game (e.g. what counts as "neutral" camera motion). This module measures how much accuracy each
re-placement of the boundary recovers:

* few-shot: a new linear boundary fitted on frozen embeddings with ``k`` labels per class
  (the estimator :class:`FewShotBoundary`);
* zero-label percentile calibration (the estimator :class:`PercentileCalibrator`): a per-game
  neutral threshold at a percentile (67th: "about two thirds of gameplay is neutral") of motion
  magnitudes over 1000 unlabeled frames, with the turn side taken from the IDM's logits or from
  the flow sign;
* an automatic per-game percentile from the unlabeled flow distribution alone (the paper's open
  problem): :func:`auto_percentile`, ``PercentileCalibrator(percentile="auto")``;
* :func:`calibration_gap`: the share of the gap (ceiling − zero-shot) each method closes.

Inputs follow the embedding-dataset contract of :func:`workbench.methods.idm.embed.extract_embeddings`,
extracted with ``split="all"``: calibration is fitted on a game's train frames and scored on its
test frames.

What learns from frames is a scikit-learn estimator (``fit`` on one game's unlabeled or
k-labeled frames, learned attributes ending in ``_``, ``predict``, ``score``); the functions
here fit one per game (xarray ``groupby("game")``) and return tidy tables.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ..core.errors import ConfigError, DataError
from ..flow.labels import auto_percentile, game_signs
from .metrics import balanced_accuracy, head_classes, require_rows
from .probes import one_blas_thread

#: (gate, side) pairs: what decides turn vs NEUTRAL, and what decides LEFT vs RIGHT.
#: gate "flow" = |flow_dom_dx|, "model" = the IDM's turn score; side "model" = RIGHT vs LEFT
#: logit, "flow" = sign of flow_dom_dx × flow_sign.
VARIANTS = (("flow", "model"), ("flow", "flow"), ("model", "model"))


# --------------------------------------------------------------------------- few-shot


class FewShotBoundary(ClassifierMixin, BaseEstimator):
    """A new linear decision boundary on frozen embeddings from ``k`` labels per class.

    ``fit(X, y)``: ``X`` (n, d) one game's frames, ``y`` (n,) int codes with -1 for unlabeled rows
    (scikit-learn's semi-supervised convention). Every row of ``X`` sets the standardisation (no
    label read); ``k`` labeled rows of each class (all of a class when it has fewer), drawn with
    ``numpy.random.default_rng([seed, draw])``, fit a class-balanced logistic regression.
    Learned: ``scaler_``, ``support_`` (rows of ``X`` whose labels were used), ``boundary_``,
    ``classes_``. ``score``: balanced accuracy over the labeled rows.
    """

    def __init__(self, k: int = 50, C: float = 1.0, seed: int = 0, draw: int = 0, max_iter: int = 1000):
        self.k, self.C, self.seed, self.draw, self.max_iter = k, C, seed, draw, max_iter

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        labeled = ~_unlabeled(y)
        classes = np.unique(y[labeled])
        if len(classes) < 2:
            raise DataError(f"a few-shot boundary needs labeled frames of 2 classes or more; got {len(classes)} class")
        self.scaler_ = StandardScaler().fit(X)
        rng = np.random.default_rng([int(self.seed), int(self.draw)])
        self.support_ = np.concatenate([rng.choice(r, min(self.k, len(r)), replace=False)
                                        for r in (np.flatnonzero(labeled & (y == c)) for c in classes)])
        self.boundary_ = LogisticRegression(C=self.C, class_weight="balanced", max_iter=self.max_iter)
        self.boundary_.fit(self.scaler_.transform(X[self.support_]), y[self.support_])
        self.classes_, self.n_iter_ = self.boundary_.classes_, self.boundary_.n_iter_
        return self

    def decision_function(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.boundary_.decision_function(self.scaler_.transform(validate_data(self, X, reset=False)))

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self.boundary_.predict(self.scaler_.transform(validate_data(self, X, reset=False)))

    def score(self, X, y, sample_weight=None) -> float:
        return _labeled_score(self, X, y)


def _unlabeled(y: np.ndarray) -> np.ndarray:
    """Rows without a label: negative numeric codes (-1; none for text labels)."""
    y = np.asarray(y)
    return y < 0 if y.dtype.kind in "iuf" else np.zeros(len(y), bool)


def _labeled_score(model, X, y) -> float:
    """Balanced accuracy of ``model.predict`` over the rows with a label (codes ``y >= 0``)."""
    labeled = ~_unlabeled(y)
    pred = model.predict(np.asarray(X)[labeled]) if labeled.any() else []
    _, codes = np.unique(np.concatenate([np.asarray(y)[labeled], pred]), return_inverse=True)
    return balanced_accuracy(codes[:labeled.sum()], codes[labeled.sum():])


def _seeds(seeds: int | Iterable[int]) -> list[int]:
    return list(range(seeds)) if isinstance(seeds, int) else list(seeds)


def _with_rows(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` with a ``row`` coordinate: each frame's position in ``ds``, kept through groupby."""
    return ds.assign_coords(row=("frame", np.arange(ds.sizes["frame"])))


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

    For each game and draw ``s`` in ``seeds``: a :class:`FewShotBoundary` (``draw=s``, so
    ``seed`` — a study's draw seed — changes every draw and nothing else) fitted on the game's
    ``train_split`` frames (standardised on all of them, ``k`` labels per class), predicting the
    game's test frames. Index ``row`` (position in ``ds``); columns ``game`` and ``draw_<s>``
    (int codes, -1 where the game has no train frames or a single class).
    """
    y = np.asarray(ds[head].values, np.int64)
    train = require_rows(ds, train_split, "few_shot")
    test = require_rows(ds, test_split, "few_shot") & (y >= 0)
    draws = _seeds(seeds)
    rows = np.flatnonzero(test)
    out = pd.DataFrame({"game": np.asarray(ds["game"].values).astype(str)[rows],
                        **{f"draw_{s}": np.full(len(rows), -1, np.int64) for s in draws}},
                       index=pd.Index(rows, name="row"))
    frames = _with_rows(ds[["embedding", head]]).assign(train=("frame", train), test=("frame", test))
    with one_blas_thread():
        for _, part in frames.groupby("game"):
            fit, scored = part.isel(frame=part["train"].values), part.isel(frame=part["test"].values)
            labels = np.asarray(fit[head].values, np.int64)
            if not scored.sizes["frame"] or len(np.unique(labels[labels >= 0])) < 2:
                continue
            x_fit, x_test = np.asarray(fit["embedding"].values, np.float32), np.asarray(scored["embedding"].values, np.float32)
            for s in draws:
                boundary = FewShotBoundary(k=k, C=C, seed=seed, draw=s).fit(x_fit, labels)
                out.loc[scored["row"].values, f"draw_{s}"] = boundary.predict(x_test)
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
    by_game = dict(list(preds.groupby("game", sort=False)))
    rows = []
    for g in dict.fromkeys(np.asarray(ds["game"].values).astype(str)):
        draws = by_game[g].drop(columns="game") if g in by_game else pd.DataFrame()
        te = draws.index
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
        raise ConfigError(f"{name}: pass one k/variant (the table has several {variant_cols} values)")
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
        raise ConfigError("calibration_gap needs the ceiling (e.g. a fine-tuned model or a probe)")
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


class PercentileCalibrator(ClassifierMixin, BaseEstimator):
    """Zero-label steering: NEUTRAL at or below a percentile of a game's unlabeled motion.

    ``X`` is (n, 2): a motion magnitude (the gate: |flow_dom_dx| in px/frame, or the IDM's
    :func:`turn_score`) and a side signal (> 0: RIGHT, else LEFT). ``fit(X)`` reads no label
    (``y`` is ignored) and learns ``percentile_`` (``percentile``, or with ``"auto"``
    :func:`~workbench.flow.labels.auto_percentile` of ``reference`` — the magnitudes the neutral
    share is estimated from, default ``X[:, 0]``) and ``threshold_`` (that percentile of
    ``X[:, 0]``). ``predict``: codes into ``classes`` (:func:`gated_steer`). ``score``: balanced
    accuracy over the rows with a label (``y >= 0``).
    """

    def __init__(self, percentile: float | str = 67.0, classes: Sequence[str] = ("LEFT", "NEUTRAL", "RIGHT"),
                 auto_method: str = "gmm", seed: int = 0):
        self.percentile, self.classes, self.auto_method, self.seed = percentile, classes, auto_method, seed

    def fit(self, X, y=None, reference=None):
        X = validate_data(self, X, ensure_min_features=2)
        if isinstance(self.percentile, str):
            if self.percentile != "auto":
                raise ConfigError(f"percentile must be a number or 'auto', got {self.percentile!r}")
            self.percentile_ = auto_percentile(X[:, 0] if reference is None else reference, self.auto_method,
                                               seed=self.seed)
        else:
            self.percentile_ = float(self.percentile)
        self.threshold_ = float(np.percentile(X[:, 0], self.percentile_))
        i = _steer_index(self.classes)
        self.classes_ = np.array(sorted(i.values()))
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return gated_steer(X[:, 0], X[:, 1], self.threshold_, self.classes)

    def score(self, X, y, sample_weight=None) -> float:
        return _labeled_score(self, X, y)


def _signals(ds: xr.Dataset, head: str, variants, flow_sign) -> xr.Dataset:
    """Per frame, the gates and sides ``variants`` use (``<gate>_gate``, ``<side>_side``, float64),
    ``flow_fit`` (|flow_dom_dx|, which the automatic percentile reads), ``valid`` (frames with
    finite flow) and the true labels / zero-shot predictions; coords ``game`` and ``row``."""
    classes = head_classes(ds)[head]
    _steer_index(classes)
    gates, sides = {g for g, _ in variants}, {s for _, s in variants}
    if "flow" in gates | sides and "flow_dom_dx" not in ds:
        raise DataError("flow variants need flow_dom_dx in the embedding dataset (compute flow first)")
    game = np.asarray(ds["game"].values).astype(str)
    logits = np.asarray(ds[f"logits_{head}"].values, np.float64)
    signal = {"y": np.asarray(ds[head].values, np.int64), "pred": np.asarray(ds[f"pred_{head}"].values, np.int64),
              "model_gate": turn_score(logits, classes),
              "model_side": logits[:, classes.index("RIGHT")] - logits[:, classes.index("LEFT")]}
    if "flow_dom_dx" in ds:
        dom_dx = np.asarray(ds["flow_dom_dx"].values, np.float64)
        sign_attrs = ds["flow_steer"].attrs if "flow_steer" in ds else ds.attrs
        signs = game_signs(np.unique(game), flow_sign or None, sign_attrs)  # {} = not given
        names, inverse = np.unique(game, return_inverse=True)
        signal.update(flow_gate=np.abs(dom_dx), valid=np.isfinite(dom_dx),
                      flow_side=dom_dx * np.array([signs[g] for g in names], np.float64)[inverse])
    else:
        signal["valid"] = np.ones(len(game), bool)
    out = xr.Dataset({name: ("frame", values) for name, values in signal.items()},
                     coords={"game": ("frame", game), "row": ("frame", np.arange(len(game)))})
    out.attrs["classes"] = classes
    return out


def _prepare(ds, head, variants, n_unlabeled, fit_split, eval_split, flow_sign, seed) -> list[dict]:
    """Per game (in order of first appearance: the unlabeled draws share one generator), the
    (unlabeled) fit frames and the labeled eval frames of :func:`_signals`."""
    signal = _signals(ds, head, variants, flow_sign)
    signal["fit"] = ("frame", signal["valid"].values & require_rows(ds, fit_split, "percentile calibration"))
    signal["eval"] = ("frame", signal["valid"].values & require_rows(ds, eval_split, "percentile calibration")
                      & (signal["y"].values >= 0))
    parts = dict(list(signal.groupby("game")))
    rng = np.random.default_rng(seed)
    out = []
    for g in dict.fromkeys(signal["game"].values):
        part = parts[g]
        fit = np.flatnonzero(part["fit"].values)
        fit = part.isel(frame=np.sort(rng.choice(fit, min(n_unlabeled, len(fit)), replace=False)))
        ev = part.isel(frame=part["eval"].values)
        y = ev["y"].values
        out.append({
            "game": g, "classes": signal.attrs["classes"], "fit": fit, "eval": ev, "y": y,
            "true_neutral_share": float(np.mean(y == signal.attrs["classes"].index("NEUTRAL"))) if len(y) else float("nan"),
            "zero_shot": balanced_accuracy(y, ev["pred"].values),
        })
    return out


def _columns(part: xr.Dataset, gate: str, side: str) -> np.ndarray:
    """The (n, 2) input of :class:`PercentileCalibrator`: a variant's gate and side of ``part``."""
    return np.column_stack([part[f"{gate}_gate"].values, part[f"{side}_side"].values])


def _evaluate(game: dict, percentile: float | str, variants, head: str, auto_method: str = "gmm",
              seed: int = 0) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Fit a :class:`PercentileCalibrator` per variant on the game's fit frames and score it on its
    eval frames: the table rows and the eval frames' predictions (``<gate>-<side>`` -> codes)."""
    rows, preds = [], {}
    fit, ev = game["fit"], game["eval"]
    reference = fit["flow_gate"].values if "flow_gate" in fit else None
    if percentile == "auto" and reference is None:
        raise DataError("percentile='auto' estimates the neutral share from flow_dom_dx, which the dataset lacks")
    for gate, side in variants:
        model = PercentileCalibrator(percentile, game["classes"], auto_method, seed)
        if fit.sizes["frame"]:
            model.fit(_columns(fit, gate, side), reference=reference)
            p, threshold = model.percentile_, model.threshold_
        else:
            p, threshold = (float("nan") if percentile == "auto" else float(percentile)), float("nan")
        x_eval = _columns(ev, gate, side)
        preds[f"{gate}-{side}"] = gated_steer(x_eval[:, 0], x_eval[:, 1], threshold, game["classes"])
        rows.append({
            "game": game["game"], "head": head, "gate": gate, "side": side, "percentile": float(p),
            "true_neutral_share": game["true_neutral_share"], "threshold": threshold,
            "n_fit": fit.sizes["frame"], "n_eval": ev.sizes["frame"],
            "balanced_accuracy": model.score(x_eval, game["y"]) if fit.sizes["frame"] and len(x_eval) else float("nan"),
            "zero_shot": game["zero_shot"],
        })
    return rows, preds


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

    Per game and variant, a :class:`PercentileCalibrator` fitted on ``n_unlabeled`` random frames
    of ``fit_split`` (fewer if the game has fewer; their labels are never read) sets the neutral
    threshold at ``percentile`` of the gate's magnitude; frames at or below it are NEUTRAL, the
    others LEFT/RIGHT by the side signal (see :data:`VARIANTS`). ``percentile`` is a number, a
    game -> number mapping, or ``"auto"`` (:func:`auto_percentile` of the fit frames'
    |flow_dom_dx|, applied to every gate). ``flow_sign`` (game -> ±1) defaults to the one
    recorded on ``flow_steer``, else +1. ``return_predictions`` also returns the per-frame
    predictions: index ``row`` (position in ``ds`` of a labeled ``eval_split`` frame), columns
    ``game`` and ``<gate>-<side>`` (codes).

    Returns one row per game and variant: ``game``, ``head``, ``gate``, ``side``,
    ``percentile``, ``true_neutral_share`` (the NEUTRAL share of the scored frames' true labels,
    so a reader can see whether a percentile matched the game: p67 is the oracle prior only where
    this is about 0.67), ``threshold`` (px/frame for the flow gate), ``n_fit``, ``n_eval``,
    ``balanced_accuracy`` on the labeled ``eval_split`` frames, and ``zero_shot`` (the IDM's
    argmax on the same frames).
    """
    if isinstance(percentile, str) and percentile != "auto":
        raise ConfigError(f"percentile must be a number, a mapping or 'auto', got {percentile!r}")
    rows, preds = [], []
    for game in _prepare(ds, head, variants, n_unlabeled, fit_split, eval_split, flow_sign, seed):
        p = float(percentile[game["game"]]) if isinstance(percentile, Mapping) else percentile
        new, pred = _evaluate(game, p, variants, head, auto_method, seed)
        rows += new
        preds.append(pd.DataFrame({"game": game["game"], **pred},
                                  index=pd.Index(game["eval"]["row"].values, name="row")))
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
    return pd.DataFrame([row for p in percentiles for game in prepared
                         for row in _evaluate(game, float(p), variants, head)[0]])
