"""The torch paths of the probe and the cross-game KNN matrix (GPU when present, chunked on CPU)
give the answers of the sklearn paths on small data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.neighbors import NearestNeighbors
from sklearn.utils.estimator_checks import parametrize_with_checks
from test_analysis import clusters, embedding_dataset

from workbench.analysis import knn, linear, metrics, neighbours, probes


@pytest.mark.parametrize("metric", neighbours.METRICS)
def test_blocked_nearest_neighbours_are_sklearns(metric):
    rng = np.random.default_rng(0)
    reference, query = rng.normal(size=(500, 12)), rng.normal(size=(130, 12))
    dist, index = neighbours.nearest(query, reference, 7, metric=metric, query_block=50, reference_block=64)
    want_d, want_i = NearestNeighbors(n_neighbors=7, metric=metric).fit(reference).kneighbors(query)
    assert np.array_equal(index, want_i)
    np.testing.assert_allclose(dist, want_d, atol=1e-5)


def test_knn_matrix_torch_equals_sklearn():
    x, action, game = clusters("action", n_games=3, n=900, d=16, spread=1.5)
    ds = embedding_dataset(x, game, {"steer": action})
    for metric in neighbours.METRICS:
        for standardize in (True, False):
            kw = dict(metric=metric, standardize=standardize)
            want = knn.knn_matrix(ds, backend="sklearn", **kw)
            got = knn.knn_matrix(ds, backend="torch", device="cpu", **kw)
            assert np.array_equal(got.to_numpy(), want.to_numpy(), equal_nan=True), (kw, got, want)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_torch_probe_reaches_sklearns_optimum(n_classes):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 10)) * rng.uniform(0.5, 4, 10) + rng.normal(0, 3, 10)
    y = (x[:, :n_classes] * [1.0, -0.7, 0.4][:n_classes]).argmax(axis=1) if n_classes > 2 else (x[:, 0] + x[:, 1] > 0)
    y = np.where(rng.random(600) < 0.1, rng.integers(n_classes, size=600), y)  # noisy, unbalanced
    ref = probes.make_probe(C=0.5).fit(x, y)
    got = linear.TorchLogisticProbe(C=0.5, device="cpu").fit(x, y)
    ref_lr = ref[-1]
    ref_logits = ref.decision_function(x)
    got_logits = got.decision_function(x)  # binary: the difference of the two softmax logits
    np.testing.assert_allclose(got_logits, ref_logits, atol=2e-3 * np.abs(ref_logits).max())
    assert (got.predict(x) == ref.predict(x)).mean() > 0.99 and ref_lr.n_iter_[0] < 1000


def test_linear_probe_torch_backend_matches_sklearn():
    rng = np.random.default_rng(0)
    x, action, game = clusters("action", n_games=2, n=800, d=8, spread=2.0)
    ds = embedding_dataset(x + rng.normal(size=x.shape), game, {"steer": action})
    want = probes.linear_probe(ds, backend="sklearn")
    got = probes.linear_probe(ds, backend="torch", device="cpu")
    assert np.abs(got["balanced_accuracy"] - want["balanced_accuracy"]).max() < 0.01, (got, want)
    with pytest.raises(ValueError, match="backend"):
        probes.linear_probe(ds, backend="gpu")
    assert metrics.use_torch("auto", 10, 100) is __import__("torch").cuda.is_available()


@parametrize_with_checks([linear.TorchLogisticProbe(device="cpu")])
def test_torch_probe_is_a_scikit_learn_classifier(estimator, check):
    check(estimator)


@pytest.mark.parametrize("method", ["tsne", pytest.param("umap", marks=pytest.mark.slow)])  # umap: numba compiles
def test_projection_fitted_on_a_sample_places_every_point_with_transform(method, tmp_path):
    from workbench.analysis import geometry

    x, action, _ = clusters("action", n_games=2, n=900, d=16, spread=0.5)
    kw = {"n_epochs": 50} if method == "umap" else {}
    if method == "tsne":  # a sample of every row is the plain fit
        assert np.array_equal(geometry.project(x, method, sample=900), geometry.project(x, method))
    xy = geometry.project(x, method, sample=300, cache_dir=tmp_path, **kw)
    assert xy.shape == (900, 2) and np.isfinite(xy).all()
    assert np.array_equal(xy, geometry.project(x, method, sample=300, cache_dir=tmp_path, **kw))  # stored
    assert len(list(tmp_path.glob("*.npy"))) == 1
    # the placed points land among the fitted points of their own action
    fit = np.zeros(900, bool)
    fit[np.random.default_rng(0).choice(900, 300, replace=False)] = True
    nearest_fitted = NearestNeighbors(n_neighbors=1).fit(xy[fit]).kneighbors(xy[~fit], return_distance=False)[:, 0]
    assert (action[fit][nearest_fitted] == action[~fit]).mean() > 0.95
