"""Constructed inputs and the calls whose outputs were recorded from the code before the analyses
became estimators (``tests/data/calibration_regression/``): the same seeds must keep giving the
same numbers. Run as a script only to re-record after a change that is meant to alter them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from test_analysis import embedding_dataset

RECORDED = Path(__file__).parent / "data" / "calibration_regression"


def regression_dataset(n: int = 700, seed: int = 7):
    """Three games, listed out of alphabetical order (a per-game random draw must follow the order
    of first appearance), with embeddings, noisy logits and flow whose scales differ by game."""
    rng = np.random.default_rng(seed)
    names = ["zeta", "alpha", "mid"]
    game = np.repeat(names, n)
    scale = np.repeat([1.0, 2.5, 0.6], n)
    s = rng.normal(0, 2.0, len(game)) * scale
    thr = scale * np.repeat([1.0, 2.0, 0.5], n)
    y = np.where(s < -thr, 0, np.where(s > thr, 2, 1))
    y[rng.random(len(y)) < 0.05] = -1  # a few unlabeled frames
    x = np.column_stack([s + rng.normal(0, 0.3, len(s)), rng.normal(size=(len(s), 5))])
    logits = np.column_stack([-s, np.ones(len(s)), s]) + rng.normal(0, 0.5, (len(s), 3))
    dx = -(s + rng.normal(0, 0.2, len(s)))
    dx[rng.random(len(dx)) < 0.02] = np.nan  # frames without flow
    return embedding_dataset(x, game, {"steer": y}, logits={"steer": logits}, flow_dom_dx=dx,
                             flow_sign={g: -1 for g in names})


def regression_outputs() -> dict:
    """The tables the calibration analyses produce on :func:`regression_dataset`."""
    from workbench.analysis import calibration

    ds = regression_dataset()
    pct, pct_pred = calibration.percentile_calibration(ds, percentile=67, seed=3, n_unlabeled=300,
                                                       return_predictions=True)
    auto, auto_pred = calibration.percentile_calibration(ds, percentile="auto", seed=3, n_unlabeled=300,
                                                         return_predictions=True)
    return {
        "few_shot": calibration.few_shot(ds, k=10, seeds=3, seed=5),
        "few_shot_predictions": calibration.few_shot_predictions(ds, k=10, seeds=3, seed=5),
        "few_shot_curve": calibration.few_shot_curve(ds, ks=(1, 20), seeds=2, seed=1),
        "percentile": pct, "percentile_predictions": pct_pred,
        "auto": auto, "auto_predictions": auto_pred,
        "mapping": calibration.percentile_calibration(ds, percentile={"zeta": 60, "alpha": 70, "mid": 50},
                                                      variants=[("model", "flow")], seed=4),
        "sweep": calibration.percentile_sweep(ds, percentiles=[40, 67, 90], seed=3, n_unlabeled=300),
    }


if __name__ == "__main__":
    RECORDED.mkdir(parents=True, exist_ok=True)
    for name, table in regression_outputs().items():
        table.to_csv(RECORDED / f"{name}.csv", float_format="%.17g")
