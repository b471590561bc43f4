"""Analyses (metrics, geometry, probes, KNN, calibration) on constructed embedding datasets whose
answers are known by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from workbench.analysis import calibration, geometry, knn, metrics, probes

STEER = ["LEFT", "NEUTRAL", "RIGHT"]


def embedding_dataset(embedding, game, labels, *, pred=None, logits=None, split=None, source_frame=None,
                      flow_dom_dx=None, flow_sign=None):
    """A dataset following the embedding contract of ``workbench.methods.idm.embed``.

    ``labels``: head -> true codes (categorical, classes LEFT/NEUTRAL/RIGHT); ``pred``/``logits``:
    head -> arrays (pred defaults to argmax of logits, logits to one-hot of the labels);
    ``split`` defaults to contiguous 64-frame blocks per game cycling train, train, train, val, test.
    """
    embedding = np.asarray(embedding, np.float32)
    game = np.asarray(game).astype(str)
    n = len(game)
    if source_frame is None:  # frames numbered within each game, in order
        source_frame = np.zeros(n, np.int64)
        for g in np.unique(game):
            source_frame[game == g] = np.arange((game == g).sum())
    if split is None:
        split = np.array(["train", "train", "train", "val", "test"])[(source_frame // 64) % 5]
    ds = xr.Dataset(
        {"embedding": (("frame", "dim"), embedding)},
        coords={"game": ("frame", game), "episode": ("frame", np.zeros(n, np.int32)),
                "step": ("frame", source_frame), "source_frame": ("frame", source_frame),
                "split": ("frame", np.asarray(split))},
        attrs={"model_id": "test", "dataset_id": "test", "variant": "constructed",
               "heads": {h: STEER for h in labels}},
    )
    for head, y in labels.items():
        y = np.asarray(y, np.int8)
        one_hot = np.eye(3, dtype=np.float32)[np.maximum(y, 0)]
        lg = np.asarray(logits[head], np.float32) if logits and head in logits else one_hot
        p = np.asarray(pred[head]) if pred and head in pred else lg.argmax(axis=1)
        attrs = {"kind": "categorical", "classes": STEER}
        ds[head] = ("frame", y, attrs)
        ds[f"pred_{head}"] = ("frame", p.astype(np.int8), attrs)
        ds[f"logits_{head}"] = (("frame", f"{head}_class"), lg)
        ds.coords[f"{head}_class"] = (f"{head}_class", STEER)
    if flow_dom_dx is not None:
        ds["flow_dom_dx"] = ("frame", np.asarray(flow_dom_dx, np.float32))
        ds["flow_steer"] = ("frame", np.full(n, -1, np.int8), {"kind": "categorical", "classes": STEER,
                                                              "flow_sign": flow_sign or {}})
    return ds


def clusters(by: str, n_games=3, n=900, d=16, seed=0, spread=0.3):
    """Embedding whose clusters follow the action (``by="action"``) or the game."""
    rng = np.random.default_rng(seed)
    action = rng.integers(3, size=n)
    game = rng.integers(n_games, size=n)
    centres = rng.normal(0, 3, (max(3, n_games), d))
    x = centres[action if by == "action" else game] + rng.normal(0, spread, (n, d))
    return x, action, np.array([f"g{i}" for i in game])


# --------------------------------------------------------------------------- metrics


def test_accuracy_table_per_game_with_chance_and_split():
    y = np.array([0, 1, 2] * 40 + [0, 1, 2] * 40)
    game = np.array(["A"] * 120 + ["B"] * 120)
    pred = np.where(game == "A", y, 1)  # A perfect, B always NEUTRAL
    y_lab = y.copy()
    y_lab[:3] = -1  # unlabeled rows are ignored
    ds = embedding_dataset(np.zeros((240, 2)), game, {"steer": y_lab}, pred={"steer": pred})
    table = metrics.accuracy_table(ds).set_index("game")
    assert table.loc["A", "balanced_accuracy"] == 1.0 and table.loc["A", "n"] == 117
    assert table.loc["B", "balanced_accuracy"] == pytest.approx(1 / 3)
    assert table.loc["B", "chance"] == pytest.approx(1 / 3)
    test_only = metrics.accuracy_table(ds, split="test")
    assert (test_only["n"] == (ds["split"].values == "test").reshape(2, -1).sum(axis=1)).all()


# --------------------------------------------------------------------------- probes


def test_probe_recovers_planted_linear_signal_and_is_at_chance_on_noise():
    rng = np.random.default_rng(0)
    n = 1200
    game = np.repeat(["A", "B"], n // 2)
    x = rng.normal(size=(n, 12))
    y = np.digitize(x[:, 0] + 0.5 * x[:, 1], [-0.6, 0.6])  # 3 classes linear in the embedding
    ds = embedding_dataset(x, game, {"steer": y})
    signal = probes.linear_probe(ds)
    assert set(signal["variant"]) == {"joint", "per_game"}
    assert (signal["balanced_accuracy"] >= 0.95).all(), signal
    noise = probes.linear_probe(embedding_dataset(rng.normal(size=(n, 12)), game, {"steer": y}))
    assert (noise["balanced_accuracy"] - 1 / 3).abs().max() < 0.08, noise


def test_probe_on_memorised_training_frames_is_at_chance_on_held_out_frames():
    """An IDM that memorised random labels on its training frames (a lookup: each train frame's
    embedding holds its label) and knows nothing elsewhere. The old all-splits probe looks good;
    the held-out protocol (fit and score on frames the IDM never trained on) scores chance."""
    rng = np.random.default_rng(0)
    n = 3200
    game = np.repeat(["A", "B"], n // 2)
    y = rng.integers(3, size=n)  # random labels: nothing to learn from the frames
    x = rng.normal(size=(n, 12))
    ds = embedding_dataset(x, game, {"steer": y})
    train = ds["split"].values == "train"
    x[train, :3] += 4 * np.eye(3)[y[train]]  # memorised: the train frames' embeddings encode their labels
    ds["embedding"].values[:] = x
    everything = probes.linear_probe(ds)
    assert (everything["balanced_accuracy"] > 0.7).all(), everything  # looks like information is present
    held_out = probes.linear_probe(ds, **probes.HELD_OUT)
    assert (held_out["balanced_accuracy"] - 1 / 3).abs().max() < 0.08, held_out
    assert (held_out["n"] == (ds["split"].values == "test").sum() // 2).all()  # scored on test frames only


def test_probe_groups_are_game_qualified_blocks():
    ds = embedding_dataset(np.zeros((256, 2)), np.repeat(["A", "B"], 128), {"steer": np.zeros(256)})
    groups = probes.block_groups(ds)
    assert len(np.unique(groups)) == 4  # 2 blocks of 64 frames in each of 2 games


# --------------------------------------------------------------------------- geometry


def test_silhouette_by_action_vs_by_game():
    x, action, game = clusters("action")
    s = geometry.silhouette_scores(x, action, game, sample=500)
    assert s["by_action"] > 0.5 > s["by_game"]
    x, action, game = clusters("game")
    s = geometry.silhouette_scores(x, action, game, sample=500)
    assert s["by_game"] > 0.5 > s["by_action"]


def test_interleaving_mixed_vs_separated():
    x, action, game = clusters("action")  # games mixed at random inside each action cluster
    mixed = geometry.interleaving(x, action, game)
    assert mixed.loc["all", "interleaving"] == pytest.approx(1.0, abs=0.1)
    rng = np.random.default_rng(1)
    offsets = {g: rng.normal(0, 5, x.shape[1]) for g in np.unique(game)}
    separated = geometry.interleaving(x + np.stack([offsets[g] for g in game]), action, game)
    assert separated.loc["all", "interleaving"] < 0.05
    assert list(separated.index) == ["0", "1", "2", "all"]


def test_knn_preservation_identity_and_random():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 2))
    assert geometry.knn_preservation(x, x) == 1.0
    assert geometry.knn_preservation(x, rng.normal(size=(500, 2)), sample=200) < 0.1


@pytest.mark.parametrize("method,kw", [("tsne", {}), ("umap", {"n_epochs": 50})])
def test_projection_shape_finite_reproducible(method, kw):
    x, _, _ = clusters("action", n=300)
    a = geometry.project(x, method, seed=3, **kw)
    assert a.shape == (300, 2) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, geometry.project(x, method, seed=3, **kw))


def test_projection_cache_stores_once_and_reuses(tmp_path, monkeypatch):
    x, _, _ = clusters("action", n=200)
    first = geometry.project(x, "tsne", cache_dir=tmp_path)
    files = list(tmp_path.glob("*.npy"))
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp"))
    mtime = files[0].stat().st_mtime_ns

    def fail(*args, **kw):
        raise AssertionError("recomputed a cached projection")

    monkeypatch.setattr(geometry, "_project_uncached", fail)
    again = geometry.project(x, "tsne", cache_dir=geometry.ProjectionCache(tmp_path))
    np.testing.assert_array_equal(first, again)
    assert files[0].stat().st_mtime_ns == mtime
    cache = geometry.ProjectionCache(tmp_path)
    assert cache.path(x, "tsne", seed=1) != files[0]  # other settings, other file
    assert cache.path(x + 1e-3, "tsne") != files[0]  # other bytes, other file


# --------------------------------------------------------------------------- KNN


def test_knn_matrix_aligned_vs_permuted_game_and_benefit_correlation():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (3, 8))
    games, xs, ys = [], [], []
    for g, perm in (("A", [0, 1, 2]), ("B", [0, 1, 2]), ("C", [1, 2, 0])):
        y = rng.integers(3, size=640)
        xs.append(centres[y] + rng.normal(0, 0.5, (640, 8)))
        ys.append(np.asarray(perm)[y])  # C's labels name a different cluster than A's and B's
        games += [g] * 640
    ds = embedding_dataset(np.concatenate(xs), games, {"steer": np.concatenate(ys)})
    m = knn.knn_matrix(ds, k=10)
    assert list(m.index) == list(m.columns) == ["A", "B", "C"]
    assert np.diag(m).min() > 0.95  # within-game (train -> test)
    assert m.loc["A", "B"] > 0.95 and m.loc["B", "A"] > 0.95
    assert m.loc["C", "A"] <= 1 / 3 + 0.05 and m.loc["A", "C"] <= 1 / 3 + 0.05

    benefit = (m ** 2 - 0.5) * 10  # any strictly increasing function of the KNN accuracy
    result = knn.knn_predicts_benefit(m, benefit)
    assert result["n_pairs"] == 6 and result["rho"] == pytest.approx(1.0)


def test_knn_references_are_validation_frames_standardised_on_their_own():
    """Queries are test frames, references validation frames; the scaler is fitted on the
    reference game's rows only, so outlying query frames of another game change nothing."""
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 3, (3, 8))
    games, xs, ys = [], [], []
    for g in ("A", "B", "C"):
        y = rng.integers(3, size=640)
        xs.append(centres[y] + rng.normal(0, 0.5, (640, 8)))
        ys.append(y)
        games += [g] * 640
    x, y = np.concatenate(xs), np.concatenate(ys)
    ds = embedding_dataset(x, games, {"steer": y})
    split = ds["split"].values
    wrong = (split == "train")
    ds["steer"].values[wrong] = (y[wrong] + 1) % 3  # train frames carry shifted labels: unused by default
    m = knn.knn_matrix(ds, k=10)
    assert np.nanmin(m.to_numpy()) > 0.95
    assert knn.knn_matrix(ds, k=10, reference_split="train").to_numpy().max() < 0.05
    outliers = ds.copy(deep=True)
    far = (np.asarray(games) == "C") & (split == "test")
    outliers["embedding"].values[far] *= 1e4  # C's test frames are only ever queries
    m2 = knn.knn_matrix(outliers, k=10)
    assert np.allclose(m2.loc[["A", "B"], ["A", "B"]], m.loc[["A", "B"], ["A", "B"]])


def test_benefit_matrix_subtracts_single_game_model():
    joint = pd.DataFrame([[0.8, 0.7], [0.6, 0.9]], index=["A", "B"], columns=["A", "B"])
    b = knn.benefit_matrix(joint, pd.Series({"A": 0.75, "B": 0.5}))
    assert b.loc["A", "B"] == pytest.approx(-0.05) and b.loc["B", "A"] == pytest.approx(0.1)
    assert np.isnan(b.loc["A", "A"])


# --------------------------------------------------------------------------- calibration


def shifted_boundary_dataset(seed=0, n=1280):
    """Two games; dim 0 carries the signed turn signal; game B's turns start at |s| = 4 instead of
    1, but the IDM uses the boundary of A (|s| > 1) for both — a calibration gap on B."""
    rng = np.random.default_rng(seed)
    game = np.repeat(["A", "B"], n)
    s = rng.normal(0, 3.0, 2 * n)
    thr = np.where(game == "A", 1.0, 4.0)
    y = np.where(s < -thr, 0, np.where(s > thr, 2, 1))
    pred = np.where(s < -1, 0, np.where(s > 1, 2, 1))
    x = np.column_stack([s, rng.normal(size=(2 * n, 7))])
    return embedding_dataset(x, game, {"steer": y}, pred={"steer": pred})


def test_few_shot_recovers_planted_boundary_shift():
    ds = shifted_boundary_dataset()
    fs = calibration.few_shot(ds, k=50, seeds=3).set_index("game")
    assert fs.loc["B", "zero_shot"] < 0.8
    assert fs.loc["B", "balanced_accuracy"] > max(0.9, fs.loc["B", "zero_shot"] + 0.1)
    assert fs.loc["A", "balanced_accuracy"] > 0.9
    assert fs.loc["B", "std"] < 0.05
    curve = calibration.few_shot_curve(ds, ks=(1, 50), seeds=2)
    assert len(curve) == 4 and set(curve["k"]) == {1, 50}

    ceiling = calibration.few_shot(ds, k=400, seeds=1)  # many labels: the calibrated ceiling
    gap = calibration.calibration_gap(metrics.accuracy_table(ds, split="test"), fs.reset_index(), ceiling)
    assert gap.loc[("B", "steer"), "gap"] > 0.15
    assert gap.loc[("B", "steer"), "few_shot_closed"] > 0.75


def test_few_shot_draw_seed_changes_only_the_label_draws():
    ds = shifted_boundary_dataset()
    a = calibration.few_shot_predictions(ds, k=5, seeds=3, seed=0)
    assert list(a.columns) == ["game", "draw_0", "draw_1", "draw_2"]
    assert a.index.equals(pd.Index(np.flatnonzero(ds["split"].values == "test"), name="row"))
    assert a.equals(calibration.few_shot_predictions(ds, k=5, seeds=3, seed=0))  # reproducible
    b = calibration.few_shot_predictions(ds, k=5, seeds=3, seed=1)
    assert a.index.equals(b.index) and a["game"].equals(b["game"])  # same test frames
    assert not a.drop(columns="game").equals(b.drop(columns="game"))  # other label draws
    table = calibration.few_shot(ds, k=5, seeds=3, seed=0).set_index("game")
    y = ds["steer"].values
    draws = [metrics.balanced_accuracy(y[a.index[a.game == "B"]], a.loc[a.game == "B", c]) for c in a.columns[1:]]
    assert table.loc["B", "balanced_accuracy"] == pytest.approx(np.mean(draws))


def test_calibration_needs_train_rows_and_says_how_to_get_them():
    ds = shifted_boundary_dataset(n=200)
    test_only = ds.assign_coords(split=("frame", np.full(ds.sizes["frame"], "test")))
    with pytest.raises(ValueError, match="split='all'"):
        calibration.few_shot(test_only)


def percentile_dataset(neutral_share=0.67, scales=(1.0, 3.0), n=2000, seed=0):
    """Games whose neutral frames (exactly ``neutral_share`` of each) have |dx| in [0, 1)·scale
    and turns [1, 2)·scale; the IDM's logits mirror dx with a neutral logit of 1 everywhere, so
    its fixed boundary is |dx| = 1."""
    rng = np.random.default_rng(seed)
    game = np.repeat([f"g{i}" for i in range(len(scales))], n)
    scale = np.repeat(scales, n)
    neutral = np.concatenate([rng.permutation(n) < neutral_share * n for _ in scales])
    side = rng.choice([-1.0, 1.0], len(game))
    dx = side * scale * np.where(neutral, rng.random(len(game)), 1 + rng.random(len(game)))
    y = np.where(neutral, 1, np.where(side > 0, 2, 0))
    logits = np.column_stack([-dx, np.ones(len(game)), dx])
    return embedding_dataset(np.zeros((len(game), 2)), game, {"steer": y}, logits={"steer": logits},
                             flow_dom_dx=-dx, flow_sign={g: -1 for g in np.unique(game)})


def test_percentile_threshold_follows_the_game_scale():
    ds = percentile_dataset()
    out = calibration.percentile_calibration(ds, percentile=67)
    assert set(zip(out["gate"], out["side"])) == set(calibration.VARIANTS)
    flow = out[out["gate"] == "flow"].drop_duplicates("game").set_index("game")
    assert flow.loc["g0", "threshold"] == pytest.approx(1.0, abs=0.1)
    assert flow.loc["g1", "threshold"] / flow.loc["g0", "threshold"] == pytest.approx(3.0, rel=0.1)
    assert (out["n_fit"] == 1000).all()  # N = 1000 unlabeled train frames per game
    assert (out["balanced_accuracy"] > 0.9).all(), out
    assert out.set_index("game").loc["g1", "zero_shot"].iloc[0] < 0.8  # the gap that was closed

    sweep = calibration.percentile_sweep(ds, percentiles=[30, 67, 95], variants=[("flow", "flow")])
    best = sweep.loc[sweep.groupby("game")["balanced_accuracy"].idxmax(), "percentile"]
    assert (best == 67).all()


def lognormal_motion(neutral_share, n=1000, seed=0):
    rng = np.random.default_rng(seed)
    neutral = rng.random(n) < neutral_share
    mag = np.exp(np.where(neutral, rng.normal(-2.0, 0.7, n), rng.normal(0.5, 0.5, n)))
    mag[neutral & (rng.random(n) < 0.2)] = 0.0  # static frames: exact-zero flow
    return mag, neutral.mean()


@pytest.mark.parametrize("share", [0.5, 0.8])
def test_auto_percentile_lands_near_planted_neutral_share(share):
    mag, true = lognormal_motion(share)
    assert calibration.auto_percentile(mag) / 100 == pytest.approx(true, abs=0.07)
    assert 0 <= calibration.auto_percentile(mag, method="otsu") <= 100


def test_auto_percentile_per_game_in_calibration():
    a, share_a = lognormal_motion(0.5, n=1600, seed=1)
    b, share_b = lognormal_motion(0.8, n=1600, seed=2)
    game = np.repeat(["A", "B"], 1600)
    dx = np.concatenate([a, b]) * np.random.default_rng(3).choice([-1, 1], 3200)
    y = np.where(np.concatenate([a, b]) < 0.4, 1, np.where(dx > 0, 2, 0))
    ds = embedding_dataset(np.zeros((3200, 2)), game, {"steer": y}, flow_dom_dx=dx)
    out = calibration.percentile_calibration(ds, percentile="auto", variants=[("flow", "flow")]).set_index("game")
    assert out.loc["A", "percentile"] / 100 == pytest.approx(share_a, abs=0.07)
    assert out.loc["B", "percentile"] / 100 == pytest.approx(share_b, abs=0.07)


def neutral_share_dataset(shares, n=2000, seed=0):
    """One game per planted neutral share: log-normal flow magnitudes, neutral exp(N(-2, 0.4))
    and turns exp(N(0.7, 0.3)), so a threshold at the game's own share labels every frame right."""
    rng = np.random.default_rng(seed)
    game = np.repeat([f"share{s:g}" for s in shares], n)
    neutral = np.concatenate([rng.permutation(n) < s * n for s in shares])
    side = rng.choice([-1.0, 1.0], len(game))
    dx = side * np.exp(np.where(neutral, rng.normal(-2.0, 0.4, len(game)), rng.normal(0.7, 0.3, len(game))))
    y = np.where(neutral, 1, np.where(side > 0, 2, 0))
    return embedding_dataset(np.zeros((len(game), 2)), game, {"steer": y}, flow_dom_dx=dx)


def test_p67_misses_where_the_neutral_share_is_not_two_thirds_and_auto_does_not():
    """p67 is the oracle prior only at a 0.67 neutral share: it hits there and misses at 0.45;
    the automatic percentile is judged on the games far from 0.67 (0.45 and 0.85)."""
    ds = neutral_share_dataset([0.45, 0.67, 0.85])
    flow = [("flow", "flow")]
    p67 = calibration.percentile_calibration(ds, percentile=67, variants=flow).set_index("game")
    auto = calibration.percentile_calibration(ds, percentile="auto", variants=flow).set_index("game")
    for share in (0.45, 0.67, 0.85):  # the true share sits beside every percentile result
        assert p67.loc[f"share{share:g}", "true_neutral_share"] == pytest.approx(share, abs=0.04)
        assert auto.loc[f"share{share:g}", "true_neutral_share"] == p67.loc[f"share{share:g}", "true_neutral_share"]
    assert p67.loc["share0.67", "balanced_accuracy"] > 0.97
    assert p67.loc["share0.45", "balanced_accuracy"] < 0.8  # ~40 % of the turns called NEUTRAL
    for far in ("share0.45", "share0.85"):
        assert auto.loc[far, "percentile"] / 100 == pytest.approx(auto.loc[far, "true_neutral_share"], abs=0.04)
        assert auto.loc[far, "balanced_accuracy"] > max(0.95, p67.loc[far, "balanced_accuracy"] + 0.04)
    sweep = calibration.percentile_sweep(ds, percentiles=[45, 67, 85], variants=flow)
    assert "true_neutral_share" in sweep
    best = sweep.loc[sweep.groupby("game")["balanced_accuracy"].idxmax()].set_index("game")["percentile"]
    assert best.to_dict() == {"share0.45": 45, "share0.67": 67, "share0.85": 85}


def test_calibration_gap_fraction_closed():
    idx = pd.MultiIndex.from_tuples([("A", "steer"), ("B", "steer")], names=["game", "head"])
    zero, ceiling = pd.Series([0.5, 0.8], idx), pd.Series([0.9, 0.8], idx)
    gap = calibration.calibration_gap(zero, pd.Series([0.8, 0.8], idx), ceiling, flow=pd.Series([0.6, 0.7], idx))
    assert gap.loc[("A", "steer"), "gap"] == pytest.approx(0.4)
    assert gap.loc[("A", "steer"), "few_shot_closed"] == pytest.approx(0.75)
    assert gap.loc[("A", "steer"), "flow_closed"] == pytest.approx(0.25)
    assert np.isnan(gap.loc[("B", "steer"), "flow_closed"])  # no gap to close
    assert gap.loc[("B", "steer"), "gap_note"] == calibration.NO_GAP == "no gap at this budget"
    assert gap.loc[("A", "steer"), "gap_note"] == ""
    below = calibration.calibration_gap(zero, few_shot=zero, ceiling=pd.Series([0.4, 0.9], idx))
    assert below.loc[("A", "steer"), "gap_note"] == calibration.NO_GAP  # ceiling below zero-shot


def test_percentile_predictions_are_the_scored_ones():
    ds = percentile_dataset()
    table, preds = calibration.percentile_calibration(ds, percentile=67, return_predictions=True)
    y = ds["steer"].values
    assert list(preds.columns) == ["game"] + [f"{g}-{s}" for g, s in calibration.VARIANTS]
    assert set(ds["split"].values[preds.index]) == {"test"} and (y[preds.index] >= 0).all()
    for _, row in table.iterrows():
        sel = preds[preds.game == row["game"]]
        score = metrics.balanced_accuracy(y[sel.index], sel[f"{row['gate']}-{row['side']}"])
        assert score == pytest.approx(row["balanced_accuracy"])
