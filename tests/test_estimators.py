"""The analyses that learn from frames are scikit-learn estimators; the per-game tables built on
them give the numbers recorded from the code before they were (``tests/regression_data.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from regression_data import RECORDED, regression_outputs

from sklearn.utils.estimator_checks import parametrize_with_checks

from workbench.analysis import calibration


@pytest.mark.parametrize("name", sorted(p.stem for p in RECORDED.glob("*.csv")))
def test_same_seeds_give_the_recorded_numbers(name, recorded_outputs):
    want = pd.read_csv(RECORDED / f"{name}.csv", index_col=0)
    got = recorded_outputs[name]
    got.index = got.index.rename(want.index.name)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_exact=False, rtol=1e-12, atol=0)


@pytest.fixture(scope="module")
def recorded_outputs():
    return regression_outputs()


#: Checks that assume a classifier learns its classes from ``y``: the percentile calibrator reads
#: no label by design (its classes are LEFT/NEUTRAL/RIGHT whatever ``y`` holds).
UNLABELED = "fitted on unlabeled frames: it reads no label, by design"
EXPECTED_FAILURES = {
    "FewShotBoundary": {"check_classifiers_classes": "its binary case uses -1 as a class, which marks an unlabeled"
                                                     " frame here (scikit-learn's semi-supervised convention)"},
    "PercentileCalibrator": {name: UNLABELED for name in (
        "check_classifiers_one_label", "check_classifiers_classes", "check_classifiers_train",
        "check_classifiers_regression_target", "check_supervised_y_no_nan", "check_supervised_y_2d")},
}


@parametrize_with_checks([calibration.FewShotBoundary(k=50), calibration.PercentileCalibrator()],
                         expected_failed_checks=lambda est: EXPECTED_FAILURES.get(type(est).__name__, {}))
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def test_percentile_calibrator_learns_a_threshold_from_unlabeled_frames_only():
    rng = np.random.default_rng(0)
    magnitude = np.concatenate([rng.random(670), 1 + rng.random(330)])  # 67 % neutral below 1
    side = rng.choice([-1.0, 1.0], 1000)
    y = np.where(magnitude <= 1, 1, np.where(side > 0, 2, 0))
    X = np.column_stack([magnitude, side])
    model = calibration.PercentileCalibrator(percentile=67).fit(X)
    assert model.threshold_ == pytest.approx(1.0, abs=0.01) and model.percentile_ == 67
    assert model.score(X, y) > 0.99
    assert model.get_params()["percentile"] == 67
    assert calibration.PercentileCalibrator(percentile=67).fit(X, rng.permutation(y)).threshold_ == model.threshold_
    unlabeled = np.where(rng.random(1000) < 0.5, -1, y)  # -1 rows are left out of the score
    assert model.score(X, unlabeled) > 0.99
    auto = calibration.PercentileCalibrator(percentile="auto").fit(X, reference=np.exp(np.where(
        magnitude > 1, rng.normal(0.7, 0.3, 1000), rng.normal(-2.0, 0.4, 1000))))  # the flow of the same frames
    assert auto.percentile_ == pytest.approx(67, abs=3)


def test_few_shot_boundary_draws_k_labels_per_class_and_reads_no_others():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 4))
    y = (x[:, 0] > 0).astype(np.int64)
    y[100:] = -1  # only the first 100 frames carry a label
    model = calibration.FewShotBoundary(k=5, seed=1, draw=2).fit(x, y)
    assert len(model.support_) == 10 and (model.support_ < 100).all()
    assert np.bincount(y[model.support_]).tolist() == [5, 5]
    assert model.scaler_.mean_ == pytest.approx(x.mean(axis=0))  # standardised on every frame
    assert model.score(x[:100], y[:100]) > 0.8
    other = calibration.FewShotBoundary(k=5, seed=1, draw=3).fit(x, y)
    assert set(other.support_) != set(model.support_)
