"""Optical flow statistics, flow-proxy labels and the parallel paths, on frames with known motion."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import xarray as xr

from workbench.data.schema import STEER_CLASSES, LabelSchema
from workbench.data.store import StoreWriter, derived_path, open_dataset, open_store
from workbench.flow import agreement, compute_flow, flow_pairs, proxy_steer, sequence_flow, successor_mask
from workbench.flow.compute import ANGLE_BINS, CHUNK_PAIRS, STILL_MAG, _BIN_COS, dense_flow, flow_statistics, to_gray
from workbench.flow.parallel import plan_blocks

LEFT, NEUTRAL, RIGHT = 0, 1, 2
SIZE = 96


def moving_frames(n: int, dx: int = 2, dy: int = 0, seed: int = 0) -> np.ndarray:
    """``n`` RGB frames of a blurred noise texture whose content moves ``(dx, dy)`` px per frame.

    Each frame is a window onto a larger texture, so nothing wraps around the frame edge.
    """
    rng = np.random.default_rng(seed)
    pad = 2 * (n + 1) * max(abs(dx), abs(dy), 1)
    tex = cv2.GaussianBlur((rng.random((SIZE + pad, SIZE + pad)) * 255).astype(np.uint8), (0, 0), 1.5)
    y0, x0 = pad // 2, pad // 2
    # content moving by +dx means the window moves by -dx
    frames = [tex[y0 - k * dy : y0 - k * dy + SIZE, x0 - k * dx : x0 - k * dx + SIZE] for k in range(n)]
    return np.repeat(np.stack(frames)[..., None], 3, axis=-1)


@pytest.mark.parametrize("method", ["farneback", "dis"])
@pytest.mark.parametrize("dx,dy,angle", [(2, 0, 0.0), (-2, 0, 180.0), (0, 2, 90.0), (0, -2, 270.0)])
def test_known_shift(method, dx, dy, angle):
    frames = moving_frames(4, dx, dy)
    s = flow_pairs(frames[:-1], frames[1:], method, grid=(4, 4))
    np.testing.assert_allclose(s["flow_dx"], dx, atol=0.1)
    np.testing.assert_allclose(s["flow_dy"], dy, atol=0.1)
    np.testing.assert_allclose(s["flow_mag"], abs(dx) + abs(dy), atol=0.15)
    np.testing.assert_array_equal(s["flow_angle"], angle)
    np.testing.assert_allclose(s["flow_dom_dx"], dx, atol=0.1)
    if dx == 0:
        assert (s["flow_dom_dx"] == 0).all()  # vertical motion is exactly NEUTRAL
    assert s["flow_grid"].shape == (3, 4, 4, 2)
    np.testing.assert_allclose(s["flow_grid"][..., 0].mean(axis=(1, 2)), dx, atol=0.1)
    np.testing.assert_allclose(s["flow_grid"][..., 1].mean(axis=(1, 2)), dy, atol=0.1)


@pytest.mark.parametrize("method", ["farneback", "dis"])
def test_still_pair_has_no_angle(method):
    frames = moving_frames(1)
    s = flow_pairs(frames, frames, method)
    assert np.isnan(s["flow_angle"]).all()
    assert (s["flow_dom_dx"] == 0).all()
    assert s["flow_mag"][0] < 0.01


# The batched statistics equal the former pixel-array code up to float32 rounding: at most this
# far apart in px/frame (or relatively), with bins, angles, NaNs and labels identical.
STAT_ATOL = STAT_RTOL = 1e-5


def _reference_statistics(flow: np.ndarray, grid: tuple[int, int] = (4, 4)) -> dict[str, np.ndarray]:
    """The statistics code before vectorisation over cached chunks (commit d6c8f99), kept only
    to compare against: whole-array bincount histogram, float32 means, reduceat cell means."""
    n, h, w, _ = flow.shape
    dx = np.ascontiguousarray(flow[..., 0]).reshape(-1, 1)
    dy = np.ascontiguousarray(flow[..., 1]).reshape(-1, 1)
    mag, angle = cv2.cartToPolar(dx, dy, angleInDegrees=True)
    mag, angle = mag.reshape(n, -1), angle.reshape(n, -1)
    width = np.float32(360.0 / ANGLE_BINS)
    bins = ((angle + width / 2) / width).astype(np.uint8) % ANGLE_BINS
    weight = np.bincount((np.arange(n)[:, None] * ANGLE_BINS + bins).ravel(), mag.ravel(), n * ANGLE_BINS)
    mode = weight.reshape(n, ANGLE_BINS).argmax(axis=1)
    in_mode = bins == mode[:, None]
    mode_mag = (mag * in_mode).sum(axis=1) / np.maximum(in_mode.sum(axis=1), 1)
    mean_mag = mag.mean(axis=1)
    still = mean_mag < STILL_MAG
    ys, xs = np.linspace(0, h, grid[0] + 1).astype(int), np.linspace(0, w, grid[1] + 1).astype(int)
    sums = np.add.reduceat(np.add.reduceat(flow, ys[:-1], axis=1), xs[:-1], axis=2)
    return {
        "flow_dx": dx.reshape(n, -1).mean(axis=1).astype(np.float32),
        "flow_dy": dy.reshape(n, -1).mean(axis=1).astype(np.float32),
        "flow_mag": mean_mag.astype(np.float32),
        "flow_angle": np.where(still, np.nan, mode * float(width)).astype(np.float32),
        "flow_dom_dx": np.where(still, 0.0, _BIN_COS[mode] * mode_mag).astype(np.float32),
        "flow_grid": (sums / (np.diff(ys)[:, None] * np.diff(xs)[None, :])[None, :, :, None]).astype(np.float32),
    }


def _assert_close_to_reference(stats: dict, reference: dict):
    assert stats.keys() == reference.keys()
    for name, ref in reference.items():
        assert stats[name].dtype == np.float32 and stats[name].shape == ref.shape, name
        np.testing.assert_allclose(stats[name], ref, rtol=STAT_RTOL, atol=STAT_ATOL, err_msg=name)
    np.testing.assert_array_equal(stats["flow_angle"], reference["flow_angle"])  # same bins, NaN where still


def _uniform_flow(n: int, dx: float, dy: float, h: int = SIZE, w: int = SIZE) -> np.ndarray:
    return np.broadcast_to(np.array([dx, dy], np.float32), (n, h, w, 2)).copy()


@pytest.mark.parametrize("dx,dy,angle,dom_dx", [(3, 0, 0, 3), (-2, 0, 180, -2), (0, 2, 90, 0), (0, -1.5, 270, 0),
                                                 (3, 4, 45, 5 * np.float32(_BIN_COS[2])), (0, 0, np.nan, 0)])
def test_uniform_flow_statistics_are_exact(dx, dy, angle, dom_dx):
    """A uniform shift gives its dx, dy, magnitude, bin-centre angle and dominant dx exactly, in every
    cell; a zero flow is still (no angle, dom_dx 0)."""
    flow = _uniform_flow(3, dx, dy)
    s = flow_statistics(flow, grid=(3, 5))
    np.testing.assert_array_equal(s["flow_dx"], np.float32(dx))
    np.testing.assert_array_equal(s["flow_dy"], np.float32(dy))
    np.testing.assert_array_equal(s["flow_mag"], np.float32(np.hypot(dx, dy)))
    np.testing.assert_array_equal(s["flow_angle"], np.float32(angle))
    np.testing.assert_array_equal(s["flow_dom_dx"], np.float32(dom_dx))
    np.testing.assert_array_equal(s["flow_grid"], np.broadcast_to(np.float32([dx, dy]), (3, 3, 5, 2)))
    _assert_close_to_reference(s, _reference_statistics(flow, (3, 5)))


def test_mixed_flow_statistics_have_the_known_histogram_mode_and_cells():
    """Left half moving right at 1 px, quarter at 3 px, right quarter moving up 1 px: bin 0 holds
    1.25 px x pixels (mode), 270° holds 0.25; its pixels' mean magnitude is (0.5 + 0.75) / 0.75."""
    flow = np.zeros((2, 8, 96, 2), np.float32)
    flow[:, :, :48, 0] = 1
    flow[:, :, 48:72, 0] = 3
    flow[:, :, 72:, 1] = -1
    flow[1] = flow[1, :, ::-1] * [-1, 1]  # the mirror image: moving left, mode 180°
    s = flow_statistics(flow, grid=(2, 4))
    np.testing.assert_allclose(s["flow_dx"], [1.25, -1.25], rtol=1e-6)
    np.testing.assert_allclose(s["flow_dy"], -0.25, rtol=1e-6)
    np.testing.assert_allclose(s["flow_mag"], 1.5, rtol=1e-6)
    np.testing.assert_array_equal(s["flow_angle"], [0, 180])
    np.testing.assert_allclose(s["flow_dom_dx"], [5 / 3, -5 / 3], rtol=1e-6)
    np.testing.assert_allclose(s["flow_grid"][0, :, :, 0], [[1, 1, 3, 0]] * 2)
    np.testing.assert_allclose(s["flow_grid"][0, :, :, 1], [[0, 0, 0, -1]] * 2)
    _assert_close_to_reference(s, _reference_statistics(flow, (2, 4)))


def test_statistics_do_not_depend_on_the_batch():
    """Each pair's statistics are the same computed alone or within a batch (no cross-pair lanes)."""
    rng = np.random.default_rng(0)
    flow = (rng.normal(size=(5, 24, 32, 2)) * [2, 1] + [0.5, 0]).astype(np.float32)
    batch = flow_statistics(flow, (4, 4))
    for i in range(len(flow)):
        alone = flow_statistics(flow[i : i + 1], (4, 4))
        for name, values in batch.items():
            np.testing.assert_allclose(values[i : i + 1], alone[name], rtol=STAT_RTOL, atol=STAT_ATOL, err_msg=name)
    _assert_close_to_reference(batch, _reference_statistics(flow, (4, 4)))


@pytest.mark.parametrize("method", ["farneback", "dis"])
def test_statistics_of_recorded_frames_match_the_former_code(method):
    """Real Atari frames (Enduro and MsPacman, more pairs than one chunk): the statistics and the
    flow_steer labels they give equal the former code's within STAT_ATOL / STAT_RTOL."""
    from workbench.data.recorders import get_engine

    games = [{"game": "Enduro", "engine": "ale", "buttons": {"accel": "FIRE", "brake": "DOWN"}},
             {"game": "MsPacman", "engine": "ale"}]
    frames, names = [], []
    for game in games:
        (episode,) = get_engine("ale").record(game, 1, CHUNK_PAIRS + 9, (SIZE, SIZE), 0)
        frames.append(episode.frames)
        names += [game["game"]] * (len(episode.frames) - 1)
    a = np.concatenate([f[:-1] for f in frames])
    b = np.concatenate([f[1:] for f in frames])
    stats = flow_pairs(a, b, method)
    reference = _reference_statistics(dense_flow(to_gray(a), to_gray(b), method))
    _assert_close_to_reference(stats, reference)
    assert np.isfinite(stats["flow_angle"]).sum() > len(a) // 2  # mostly moving pairs
    labels = {}
    for key, values in (("new", stats), ("reference", reference)):
        ds = xr.Dataset({"flow_dom_dx": ("frame", values["flow_dom_dx"])}, coords={"game": ("frame", names)})
        labels[key] = [proxy_steer(ds, threshold).values for threshold in (0.5, "p67")]
    np.testing.assert_array_equal(labels["new"], labels["reference"])


def test_successor_mask_respects_games_episodes_and_steps():
    game = np.array(["A", "A", "A", "A", "B", "B", "B"])
    episode = np.array([0, 0, 1, 1, 1, 1, 1])
    step = np.array([0, 1, 0, 1, 0, 1, 0])  # last B frame: step goes back -> a new recording
    expected = [True, False, True, False, True, False, False]
    np.testing.assert_array_equal(successor_mask(game, episode, step), expected)


def test_sequence_flow_has_no_pairs_across_episodes():
    right, left = moving_frames(5, dx=2, seed=1), moving_frames(5, dx=-2, seed=2)
    frames = np.concatenate([right, left])
    has_next = successor_mask(np.zeros(10), np.repeat([0, 1], 5), np.tile(np.arange(5), 2))
    s = sequence_flow(frames, has_next, "dis")
    assert np.isnan(s["flow_dx"][[4, 9]]).all() and np.isnan(s["flow_grid"][[4, 9]]).all()
    np.testing.assert_allclose(s["flow_dx"][:4], 2, atol=0.1)
    np.testing.assert_allclose(s["flow_dx"][5:9], -2, atol=0.1)


def _dom_dx_dataset(values, games, attrs=None) -> xr.Dataset:
    return xr.Dataset(
        {"flow_dom_dx": ("frame", np.asarray(values, np.float32))},
        coords={"game": ("frame", np.asarray(games))},
        attrs=attrs or {},
    )


def test_flow_steer_sign_conventions():
    ds = _dom_dx_dataset([2.0, -2.0, 0.1, np.nan, 2.0, -2.0], ["A"] * 4 + ["B"] * 2)
    steer = proxy_steer(ds, threshold=0.5, flow_sign={"B": -1})
    np.testing.assert_array_equal(steer.values, [RIGHT, LEFT, NEUTRAL, -1, LEFT, RIGHT])
    assert steer.dtype == np.int8
    assert steer.attrs["classes"] == list(STEER_CLASSES) and steer.attrs["kind"] == "categorical"
    assert steer.attrs["flow_sign"] == {"A": 1, "B": -1}
    # default: the dataset's flow_sign attr
    ds.attrs["flow_sign"] = {"A": -1}
    np.testing.assert_array_equal(proxy_steer(ds).values, [LEFT, RIGHT, NEUTRAL, -1, RIGHT, LEFT])
    with pytest.raises(ValueError, match="flow_sign"):
        proxy_steer(ds, flow_sign={"A": 2})


def test_constant_threshold_is_inclusive_neutral_band():
    ds = _dom_dx_dataset([-1.0, -0.99, 0.0, 0.99, 1.0, 1.01], ["A"] * 6)
    steer = proxy_steer(ds, threshold=1.0)
    np.testing.assert_array_equal(steer.values, [NEUTRAL, NEUTRAL, NEUTRAL, NEUTRAL, NEUTRAL, RIGHT])
    assert steer.attrs["threshold_px"] == {"A": 1.0}


def test_percentile_threshold_is_per_game():
    rng = np.random.default_rng(0)
    mags = rng.permutation(np.arange(1, 101, dtype=float))
    signs = rng.choice([-1.0, 1.0], 100)
    values = np.concatenate([mags * signs, 10 * mags * signs, [np.nan]])
    ds = _dom_dx_dataset(values, ["A"] * 100 + ["B"] * 101)
    steer = proxy_steer(ds, threshold="p67").values
    for sel in (slice(0, 100), slice(100, 200)):
        assert (steer[sel] == NEUTRAL).sum() == 67  # |value| in 1..67 (x10 for B)
        moving = np.abs(values[sel]) > 67.5 * (1 if sel.start == 0 else 10)
        np.testing.assert_array_equal(steer[sel][moving], np.where(signs[moving] > 0, RIGHT, LEFT))
    assert steer[-1] == -1
    thr = proxy_steer(ds, threshold="p67").attrs["threshold_px"]
    assert thr["A"] == pytest.approx(67.33) and thr["B"] == pytest.approx(673.3)
    for bad in ("67%", "p120", "auto2", "-1"):
        with pytest.raises(ValueError, match="threshold"):
            proxy_steer(ds, threshold=bad)
    assert proxy_steer(ds, threshold="0.5").attrs["threshold_px"] == {"A": 0.5, "B": 0.5}  # as the CLI passes it


def test_auto_threshold_finds_each_games_neutral_share_without_labels():
    """Two games whose neutral shares (0.45, 0.85) and flow scales (x1, x0.05) differ: the
    Gaussian-mixture rule finds each share from unlabeled magnitudes, where 0.5 px/frame calls
    the small-scale game all NEUTRAL and p67 misses both shares."""
    rng = np.random.default_rng(0)
    values, games, neutral = [], [], []
    for g, share, scale in (("A", 0.45, 1.0), ("B", 0.85, 0.05)):
        is_neutral = rng.random(2000) < share
        mag = scale * np.exp(np.where(is_neutral, rng.normal(-2.5, 0.5, 2000), rng.normal(1.0, 0.3, 2000)))
        values.append(mag * rng.choice([-1, 1], 2000))
        games += [g] * 2000
        neutral.append(is_neutral)
    ds = _dom_dx_dataset(np.concatenate(values), games)
    neutral = np.concatenate(neutral)
    steer = proxy_steer(ds, threshold="auto")
    np.testing.assert_array_equal(steer.values == NEUTRAL, neutral)  # separable: every frame right
    assert steer.attrs["threshold"] == "auto" and "Gaussian mixture" in steer.attrs["threshold_rule"]
    assert steer.attrs["mixture_percentile"]["A"] == pytest.approx(100 * neutral[:2000].mean(), abs=1)
    assert steer.attrs["mixture_percentile"]["B"] == pytest.approx(100 * neutral[2000:].mean(), abs=1)
    assert steer.attrs["threshold_px"]["B"] == steer.attrs["mixture_split_px"]["B"] < 0.5
    # A's split lies above the cap: its threshold is 0.5 px, which still separates its populations
    assert steer.attrs["mixture_split_px"]["A"] > 0.5 and steer.attrs["threshold_px"]["A"] == 0.5
    assert (proxy_steer(ds, threshold=0.5).values[2000:] == NEUTRAL).all()  # the degenerate default it replaces
    p67 = proxy_steer(ds, threshold="p67").values == NEUTRAL
    assert abs(p67[:2000].mean() - 0.67) < 0.01 and abs(p67[2000:].mean() - 0.67) < 0.01
    assert "mixture_percentile" not in proxy_steer(ds, threshold=0.5).attrs


def test_agreement_on_known_confusion():
    true = np.array([LEFT] * 30 + [NEUTRAL] * 40 + [RIGHT] * 30 + [-1, NEUTRAL] + [LEFT, RIGHT] * 5)
    proxy = true.copy()
    proxy[30:40] = LEFT  # 10 NEUTRAL read as LEFT
    proxy[70:80] = NEUTRAL  # 10 RIGHT read as NEUTRAL
    proxy[100:102] = [LEFT, -1]  # unlabeled on either side: ignored
    ds = xr.Dataset(
        {"steer": ("frame", true.astype(np.int8)), "flow_steer": ("frame", proxy.astype(np.int8))},
        coords={"game": ("frame", np.array(["A"] * 102 + ["B"] * 10))},
    )
    table = agreement(ds)
    a, b = table.loc["A"], table.loc["B"]
    assert a["n"] == 100 and a["accuracy"] == pytest.approx(0.8)
    assert a["balanced_accuracy"] == pytest.approx((1 + 30 / 40 + 20 / 30) / 3)
    assert 0 < a["kappa"] < 1
    assert (a["true_LEFT"], a["true_NEUTRAL"], a["true_RIGHT"]) == pytest.approx((0.3, 0.4, 0.3))
    assert (a["proxy_LEFT"], a["proxy_NEUTRAL"], a["proxy_RIGHT"]) == pytest.approx((0.4, 0.4, 0.2))
    assert b["n"] == 10 and b["accuracy"] == 1 and b["kappa"] == pytest.approx(1)
    assert b["balanced_accuracy_flipped"] == 0  # LEFT read as RIGHT and back: an inverted sign
    assert a["balanced_accuracy_flipped"] < a["balanced_accuracy"]


def test_plan_blocks_are_chunk_aligned_and_cover_everything():
    blocks = plan_blocks(1000, 64, workers=2)
    assert blocks[0][0] == 0 and blocks[-1][1] == 1000
    assert all(a % 64 == 0 and b == c for (a, b), (c, _) in zip(blocks, blocks[1:]))


@pytest.fixture
def store(tmp_path, monkeypatch):
    """Two games, three episodes, 170 frames (3 zarr chunks), moving right at 2 px/frame.

    Game B is first-person-like (``flow_sign`` -1): its true steer is the opposite of the flow.
    """
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    schema = LabelSchema.from_list([{"name": "steer", "kind": "categorical", "classes": list(STEER_CLASSES)}])
    path = tmp_path / "demo" / "frames.zarr"
    episodes = [("A", 0, 70, RIGHT), ("A", 1, 50, RIGHT), ("B", 0, 50, LEFT)]
    with StoreWriter(path, schema, ["A", "B"], (SIZE, SIZE), attrs={"flow_sign": {"B": -1}}) as w:
        for i, (game, ep, n, steer) in enumerate(episodes):
            w.append(moving_frames(n, dx=2, seed=i), game, ep, np.arange(n), labels={"steer": np.full(n, steer)})
    return path


def _flow_arrays(path) -> dict[str, np.ndarray]:
    ds = open_store(path)
    return {name: ds[name].values for name in ds.data_vars}


def test_store_flow_serial(store):
    out = compute_flow(store, method="dis", workers=1, progress=False, threshold=0.5)
    assert out == derived_path(store, "flow-dis")
    ds = open_dataset(store)
    assert {"frames", "steer", "flow_dx", "flow_grid", "flow_steer"} <= set(ds.variables)
    last = np.array([69, 119, 169])
    dx = ds["flow_dx"].values
    assert np.isnan(dx[last]).all()
    np.testing.assert_allclose(np.delete(dx, last), 2, atol=0.15)  # incl. pairs across chunk edges
    steer = ds["flow_steer"].values
    assert (steer[last] == -1).all()
    np.testing.assert_array_equal(np.delete(steer, last), np.delete(ds["steer"].values, last))
    table = agreement(ds)
    assert table["accuracy"].tolist() == [1.0, 1.0] and table["n"].tolist() == [118, 49]
    attrs = open_store(out).attrs
    assert attrs["method"] == "dis" and attrs["grid"] == [4, 4] and attrs["opencv"] == cv2.__version__
    assert ds["flow_steer"].attrs["threshold_px"] == {"A": 0.5, "B": 0.5}


def test_store_records_the_threshold_rule_and_warns_on_an_inverted_sign(store, capsys):
    """The default rule and its per-game thresholds are written to the flow store; a wrong
    flow_sign (B recorded as +1) is named by the summary's warning, the right one is not."""
    from workbench.analysis.summary import dataset_summary, proxy_warnings
    from workbench.cli import _print_summary

    out = compute_flow(store, method="dis", workers=1, progress=False)
    attrs = open_store(out)["flow_steer"].attrs
    assert attrs["threshold"] == "auto" and "no true labels" in attrs["threshold_rule"]
    assert set(attrs["threshold_px"]) == set(attrs["mixture_split_px"]) == {"A", "B"}
    table = dataset_summary(open_dataset(store))
    assert {"flow_threshold_px", "flow_steer_NEUTRAL", "flow_balanced_accuracy_flipped"} <= set(table.columns)
    assert proxy_warnings(table) == []

    compute_flow(store, method="dis", workers=1, progress=False, threshold=0.5, flow_sign={"A": 1, "B": 1})
    table = dataset_summary(open_dataset(store))
    assert table.loc["B", "flow_balanced_accuracy"] == 0 and table.loc["B", "flow_balanced_accuracy_flipped"] == 1
    (warning,) = proxy_warnings(table)
    assert warning.startswith("flow_sign looks inverted for B")
    _print_summary(store)
    assert "warning: flow_sign looks inverted for B" in capsys.readouterr().err


def _assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_processes_equal_serial(store):
    serial = _flow_arrays(compute_flow(store, workers=1, progress=False))
    parallel = _flow_arrays(compute_flow(store, workers=2, scheduler="processes", progress=False))
    _assert_same(serial, parallel)


def test_distributed_cluster_equals_serial(store):
    distributed = pytest.importorskip("distributed")
    serial = _flow_arrays(compute_flow(store, method="dis", workers=1, progress=False))
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        remote = _flow_arrays(compute_flow(store, method="dis", scheduler=cluster.scheduler_address, progress=False))
    _assert_same(serial, remote)


@pytest.mark.slow
def test_builtin_flow_proxies_agree_with_the_true_steering(workbench_dirs):
    """Every built-in game, recorded from its real emulator (two 300-frame episodes) with
    Farneback flow and the default threshold rule: the proxy beats chance and beats its own
    LEFT/RIGHT swap by a margin, so no summary calls its sign inverted. With Enduro's former flow_sign +1 this fails (balanced
    accuracy 0.32, 0.42 with LEFT and RIGHT swapped)."""
    from workbench.analysis.summary import AGREEMENT_MARGIN, CHANCE, dataset_summary
    from workbench.data.catalog import load_catalog, materialise

    for entry in load_catalog().values():
        # reactive players steer only when the game calls for it (Enduro's driver ~9 % of steps, Pong's
        # paddle moves vertically): there a chance-level proxy describes the data, not a wrong sign
        if entry.kind != "record" or any(g.get("player") for g in entry.source["games"]):
            continue
        entry.sizes["check"] = {"episodes": 2, "frames_per_episode": 300}
        path = materialise(entry, size="check", progress=False)
        compute_flow(path, workers=2, progress=False)
        table = dataset_summary(open_dataset(path))
        unturned = [g["game"] for g in entry.source["games"] if "mouse_dx" not in g.get("inputs", ["mouse_dx"])]
        table = table.drop(index=unturned)  # a scenario that only strafes (take_cover) has no steering to agree with
        shown = table[["flow_balanced_accuracy", "flow_balanced_accuracy_flipped"]].round(3).to_dict("index")
        assert (table["flow_balanced_accuracy"] > CHANCE).all(), shown
        assert (table["flow_balanced_accuracy_flipped"] < table["flow_balanced_accuracy"] - AGREEMENT_MARGIN).all(), shown
