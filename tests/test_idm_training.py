"""IDMLatentSpatial, the pair index and split, sampling, hflip, the resumable trainer, the model
library and embedding extraction — on constructed arrays and on tiny real recordings."""

from __future__ import annotations

import re

import inspect

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from workbench.engine.library import list_models, load_card, load_model, model_path
from workbench.engine.library import ModelLibraryError
from workbench.engine.curves import read_curves
from workbench.frames.pairs import build_pair_index
from workbench.methods.idm import IDMLatentSpatial, TrainConfig, extract_embeddings, make_config, train
from workbench.frames.augment import flip_plan, hflip
from workbench.methods.idm.training import prepare
from workbench.frames.pairs import PairIndex, balanced_weights, finetune_mask
from workbench.frames.sources import resolve_source
from workbench.frames.split import PURGED, SPLITS, assign_split
from workbench.frames.stream import FrameReader, PairSampler
from conftest import record_tiny

STEER = ["LEFT", "NEUTRAL", "RIGHT"]


@pytest.fixture(scope="module")
def tiny_stores(tmp_path_factory):
    """Tiny first_person and racing recordings (2 games x 40 frames each) with Farneback flow."""
    return record_tiny(tmp_path_factory, ("first_person", "racing"), flow=True)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_config(store, **overrides) -> TrainConfig:
    """A few-step config on a tiny store; blocks of 4 frames so every game has val and test pairs."""
    values = dict(datasets=[str(store)], steps=6, batch_size=8, chunks_per_batch=2, eval_every=3,
                  checkpoint_every=2, split_block=4, input_size=32, width=16, embed_dim=32, device="cpu")
    values.update(overrides)
    return TrainConfig(**values)


def weights(model_id):
    return torch.load(model_path(model_id) / "weights.pt", weights_only=True)


# --- model -------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [32, 64, 128])
def test_model_shapes_and_16x16_grid(size):
    model = IDMLatentSpatial({"steer": 3, "key_w": 2}, input_size=size, width=16, embed_dim=24)
    x = torch.rand(5, 6, size, size)
    assert model.grid(x).shape == (5, 16, 16, 16)
    z, logits = model.embed_and_logits(x)
    assert z.shape == (5, 24) and (z >= 0).all()  # penultimate ReLU
    assert {k: tuple(v.shape) for k, v in logits.items()} == {"steer": (5, 3), "key_w": (5, 2)}
    assert torch.equal(model.embed(x), z) and torch.equal(model(x)["steer"], logits["steer"])
    assert sum(isinstance(m, torch.nn.Conv2d) and m.kernel_size != (1, 1) for m in model.modules()) == 4
    assert sum(isinstance(m, torch.nn.InstanceNorm2d) and m.affine for m in model.modules()) == 4


def test_model_takes_no_game_identity():
    assert list(inspect.signature(IDMLatentSpatial.forward).parameters) == ["self", "x"]
    assert list(inspect.signature(IDMLatentSpatial).parameters) == ["heads", "input_size", "width", "embed_dim"]
    model = IDMLatentSpatial({"steer": 3})
    assert not any(isinstance(m, torch.nn.Embedding) for m in model.modules())
    with pytest.raises(ValueError, match="frame-pair batch"):
        model(torch.rand(2, 7, 64, 64))
    with pytest.raises(ValueError, match="input_size"):
        IDMLatentSpatial({"steer": 3}, input_size=96)


# --- augmentation ------------------------------------------------------------------------------


def test_hflip_mirrors_frames_and_swaps_left_right():
    heads = {"steer": STEER, "key_w": ["0", "1"], "key_a": ["0", "1"], "key_d": ["0", "1"],
             "vertical": ["UP", "NEUTRAL", "DOWN"]}
    kinds = {h: "categorical" if h in ("steer", "vertical") else "binary" for h in heads}
    plan = flip_plan(heads, kinds)
    first = np.arange(4 * 2 * 3 * 3, dtype=np.uint8).reshape(4, 2, 3, 3)
    second = first + 100
    y = {"steer": np.array([0, 2, 1, -1]), "key_w": np.array([1, 1, 0, 0]), "key_a": np.array([1, 0, 1, -1]),
         "key_d": np.array([0, 0, 1, 1]), "vertical": np.array([0, 0, 2, 1])}
    flip = np.array([True, False, True, True])
    f1, f2, out = hflip(first, second, y, flip, plan)
    assert np.array_equal(f1[0], first[0, :, ::-1]) and np.array_equal(f2[2], second[2, :, ::-1])
    assert np.array_equal(f1[1], first[1]) and np.array_equal(f2[1], second[1])
    assert out["steer"].tolist() == [2, 2, 1, -1]  # LEFT->RIGHT, unflipped RIGHT stays, missing stays
    assert out["key_a"].tolist() == [0, 0, 1, 1] and out["key_d"].tolist() == [1, 0, 1, -1]
    assert out["key_w"].tolist() == [1, 1, 0, 0] and out["vertical"].tolist() == [0, 0, 2, 1]
    assert y["steer"].tolist() == [0, 2, 1, -1] and first[0, 0, 0, 0] == 0  # inputs untouched


def test_hflip_mirrors_compound_actions_and_needs_both_keys():
    ale = ["NOOP", "LEFT", "RIGHT", "UPLEFT", "UPRIGHT", "LEFTFIRE", "RIGHTFIRE"]
    plan = flip_plan({"ale_action": ale}, {"ale_action": "categorical"})
    assert plan.permutations["ale_action"].tolist() == [0, 2, 1, 4, 3, 6, 5]
    with pytest.raises(ValueError, match="key_a"):
        flip_plan({"key_a": ["0", "1"]}, {"key_a": "binary"})


# --- split and sampling ------------------------------------------------------------------------


def test_split_blocks_are_disjoint_reproducible_and_per_game():
    game = np.array(["A"] * 1280 + ["B"] * 640)
    frame = np.arange(len(game))
    source = np.zeros(len(game), np.int64)
    split = assign_split(game, source, frame, 64, seed=3)
    blocks = frame // 64
    for b in np.unique(blocks):
        assert len(np.unique(split[(blocks == b) & (split != PURGED)])) == 1
    for g, n_blocks in (("A", 20), ("B", 10)):
        per_block = np.bincount(split[(game == g) & (frame % 64 == 0)], minlength=3)
        assert per_block.tolist() == [round(0.7 * n_blocks), round(0.1 * n_blocks), round(0.2 * n_blocks)]
    assert np.array_equal(split, assign_split(game, source, frame, 64, seed=3))
    assert not np.array_equal(split, assign_split(game, source, frame, 64, seed=4))
    alone = assign_split(game[game == "B"], source[game == "B"], frame[game == "B"], 64, seed=3)
    assert np.array_equal(alone, split[game == "B"])  # a game's split does not depend on the others


def test_purge_gap_no_frame_shared_between_splits():
    game = np.array(["A"] * 1280 + ["B"] * 640)
    frame = np.arange(len(game))
    split = assign_split(game, np.zeros(len(game), np.int64), frame, 64, seed=3)
    purged = split == PURGED
    # only a block's last pair (t + 1 opens the next block) is purged, and only where the split changes
    assert purged.any() and ((frame[purged] + 1) % 64 == 0).all()
    assert purged.sum() < (frame % 64 == 63).sum()

    def frames(code):  # every frame a pair of this split reads: t and t + 1 (pairs never cross games)
        sel = (split == code) & (frame + 1 < len(frame)) & (game == np.roll(game, -1))
        return set(frame[sel]) | set(frame[sel] + 1)

    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert not frames(a) & frames(b), (SPLITS[a], SPLITS[b])


def constructed_index(counts: dict[str, list[int]]) -> PairIndex:
    """An index without stores: per game, ``counts[g][c]`` pairs of steer class ``c`` laid out in
    runs along the frame axis (so classes cluster in chunks, as in real play)."""
    games, game, y = list(counts), [], []
    for g, per_class in counts.items():
        for c, n in enumerate(per_class):
            game += [games.index(g)] * n
            y += [c] * n
    n = len(y)
    return PairIndex(sources=[], games=games, heads={"steer": STEER}, kinds={"steer": "categorical"},
                     targets={"steer": "steer"}, source=np.zeros(n, np.int16), frame=np.arange(n, dtype=np.int64),
                     game=np.array(game, np.int16), split=np.zeros(n, np.int8), y={"steer": np.array(y, np.int64)})


def test_balanced_sampler_equalises_class_by_game():
    index = constructed_index({"A": [900, 60, 15], "B": [40, 500, 120]})
    index.y["steer"][::97] = -1  # a few unlabeled pairs: never drawn when balancing
    w = balanced_weights(index, "steer")
    sampler = PairSampler(index.source, index.frame, w, [64], batch_size=64, chunks_per_batch=8)
    rng = np.random.default_rng(0)
    pos = np.concatenate([sampler.draw(rng) for _ in range(600)])
    assert (index.y["steer"][pos] >= 0).all()
    cell = index.game[pos] * 3 + index.y["steer"][pos]
    freq = np.bincount(cell, minlength=6) / len(pos)
    assert np.abs(freq - 1 / 6).max() < 0.02, freq
    # uniform sampling keeps the imbalance; the same seed draws the same batches
    uniform = PairSampler(index.source, index.frame, np.ones(len(index)), [64], 64, 8)
    pos = np.concatenate([uniform.draw(np.random.default_rng(1)) for _ in range(300)])
    assert np.bincount(index.game[pos] * 3 + np.maximum(index.y["steer"][pos], 0), minlength=6).argmax() == 0
    assert np.array_equal(uniform.draw(np.random.default_rng(5)), uniform.draw(np.random.default_rng(5)))


def test_finetune_subsets():
    index = constructed_index({"A": [300, 300, 300], "B": [200, 10, 200]})
    k = finetune_mask(index, "B", "steer", k_per_class=50, seed=0)
    assert (index.game[k] == 1).all()
    assert np.bincount(index.y["steer"][k], minlength=3).tolist() == [50, 10, 50]
    pct = finetune_mask(index, "A", "steer", fraction=0.2, seed=0)
    assert pct.sum() == 180 and (index.game[pct] == 0).all()
    assert np.array_equal(pct, finetune_mask(index, "A", "steer", fraction=0.2, seed=0))


# --- configs -----------------------------------------------------------------------------------


def test_presets_and_yaml_roundtrip(tmp_path):
    assert make_config("joint_v2", datasets=["racing"]).balanced
    v3 = make_config("joint_v3", datasets="racing")
    assert v3.balanced and v3.hflip and v3.datasets == ["racing"]
    assert make_config("single", datasets=["racing"]).games == ["Enduro"]
    ft = make_config("finetune_k", init_from="joint_v3-x", finetune={"game": "Enduro"})
    assert ft.finetune == {"k_per_class": 50, "game": "Enduro"}
    assert make_config("finetune_pct", init_from="m", finetune={"game": "Enduro"}).finetune["fraction"] == 0.2
    path = ft.save(tmp_path / "ft.yaml")
    assert TrainConfig.load(path) == ft and TrainConfig.from_yaml(ft.to_yaml()) == ft
    assert yaml.safe_load(path.read_text())["finetune"]["game"] == "Enduro"
    with pytest.raises(ValueError, match="unknown keys"):
        TrainConfig.from_dict({"datasets": ["racing"], "stpes": 3})
    with pytest.raises(ValueError, match="init_from"):
        TrainConfig(datasets=["racing"], finetune={"game": "Enduro", "k_per_class": 5})
    with pytest.raises(ValueError, match="unknown preset"):
        make_config("joint_v9", datasets=["racing"])


# --- pair index and streaming on real recordings -----------------------------------------------


def test_pair_index_on_a_real_recording(tiny_stores):
    src = resolve_source(tiny_stores["first_person"])
    assert src.dataset_id == "first_person" and src.n_frames == 80 and src.chunk == 64
    index = build_pair_index([src], ["steer", "key_w", "key_a", "key_d"], block=4)
    assert index.games == ["freedoom1_smooth", "freedoom2_flick"]
    everything = build_pair_index([src], ["steer"], block=1000)  # one block per game: nothing purged
    assert len(everything) == 78  # each episode's last frame has no successor
    assert 60 < len(index) < 78 and set(index.split) == {0, 1, 2}  # purged at split boundaries
    read = {s: set(index.frame[index.split == s]) | set(index.frame[index.split == s] + 1) for s in range(3)}
    assert not read[0] & read[2] and not read[0] & read[1] and not read[1] & read[2]
    assert index.heads["key_w"] == ["0", "1"] and index.kinds["steer"] == "categorical"
    from workbench.data.store import open_dataset

    ds = open_dataset(tiny_stores["first_person"])
    assert np.array_equal(index.y["steer"], ds["steer"].values[index.frame])
    proxy = build_pair_index([src], ["steer"], targets={"steer": "flow_steer"}, block=4)
    assert np.array_equal(proxy.y["steer"], ds["flow_steer"].values[proxy.frame])
    one = build_pair_index([src], ["steer"], games=["freedoom2_flick"], block=4)
    assert one.games == ["freedoom2_flick"] and np.array_equal(one.split, index.split[index.game == 1])
    with pytest.raises(ValueError, match="in none of the datasets"):
        build_pair_index([src], ["accel"])

    reader = FrameReader([src], 32, capacity=1)
    first, second = reader.pairs(index.source[[0, 40, 62]], index.frame[[0, 40, 62]])
    from workbench.data.episode import resize_frames

    raw = ds["frames"].values
    for i, t in enumerate(index.frame[[0, 40, 62]]):  # frame 63 -> 64 crosses the zarr chunk
        assert np.array_equal(first[i], resize_frames(raw[t : t + 1], (32, 32))[0])
        assert np.array_equal(second[i], resize_frames(raw[t + 1 : t + 2], (32, 32))[0])


# --- trainer and model library -----------------------------------------------------------------


def test_resume_equals_uninterrupted_and_same_seed_same_weights(tiny_stores):
    store = tiny_stores["first_person"]
    interrupted = train(tiny_config(store, model_id="resumed", hflip=True, balanced=True), max_steps=4, progress=False)
    assert not interrupted.finished and interrupted.step == 4  # mid-way between validations
    assert (model_path("resumed") / "checkpoint.pt").is_file() and not (model_path("resumed") / "card.yaml").exists()
    done = train(tiny_config(store, model_id="resumed", hflip=True, balanced=True), progress=False)
    assert done.finished and done.step == 6 and not (model_path("resumed") / "checkpoint.pt").exists()

    straight = train(tiny_config(store, model_id="straight", hflip=True, balanced=True), progress=False)
    train(tiny_config(store, model_id="again", hflip=True, balanced=True), progress=False)
    train(tiny_config(store, model_id="other", hflip=True, balanced=True, seed=1), progress=False)
    a, b, c, d = (weights(m) for m in ("resumed", "straight", "again", "other"))
    for k in b:
        assert torch.equal(a[k], b[k]), k  # bit-identical after a resume
        assert torch.equal(b[k], c[k]), k
    assert any(not torch.allclose(b[k], d[k]) for k in b)
    assert done.card.history == straight.card.history
    assert done.card.weights_sha256 == straight.card.weights_sha256  # the same bytes on disk
    # the resumed run's curves: every step once, the same losses and validation scores as the straight run
    resumed, whole = (read_curves(model_path(m)) for m in ("resumed", "straight"))
    assert not resumed.duplicated(["step", "tag"]).any()
    assert sorted(resumed[resumed.tag == "train/loss"].step) == list(range(1, 7))
    learned = lambda t: t[~t.tag.str.startswith("throughput/")].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(learned(resumed), learned(whole))
    assert (resumed[resumed.tag == "throughput/pairs_per_s"].value > 0).all()


def test_card_weights_and_library(tiny_stores):
    cfg = tiny_config(tiny_stores["racing"], name="joint_v1")
    result = train(cfg, progress=False)
    assert re.fullmatch(r"joint_v1-racing-tiny-seed0-mask[0-9a-f]{8}-all-s0-[0-9a-f]{6}", result.model_id)
    assert prepare(cfg.replace(steps=cfg.steps + 1))[0].model_id != result.model_id  # another config, another id
    assert list_models() == [result.model_id]
    card = load_card(result.model_id)
    assert card["architecture"] == "IDMLatentSpatial" and card["seed"] == 0
    assert card["heads"] == {"steer": {"classes": STEER, "kind": "categorical", "target": "steer"},
                             "accel": {"classes": ["0", "1"], "kind": "binary", "target": "accel"},
                             "brake": {"classes": ["0", "1"], "kind": "binary", "target": "brake"}}
    assert card["data"][0]["dataset_id"] == "racing" and card["data"][0]["n_frames"] == 80
    assert card["games"] == ["Enduro", "CarRacing"]
    for split in ("val", "test"):
        for game, row in card["metrics"][split]["steer"].items():
            assert 0 <= row["balanced_accuracy"] <= 1 and row["n"] > 0
    assert card["training"]["steps"] == 6 and card["training"]["pairs_per_s"] > 0
    assert {"code_version", "versions", "created", "weights_sha256"} <= set(card)
    assert TrainConfig.from_dict(card["config"]).heads == ["steer", "accel", "brake"]

    state = torch.load(model_path(result.model_id) / "weights.pt", weights_only=True)
    model = load_model(result.model_id, "cpu")
    assert not model.training and all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert sorted(p.name for p in model_path(result.model_id).iterdir()) == ["card.yaml", "curves", "weights.pt"]

    mtime = (model_path(result.model_id) / "weights.pt").stat().st_mtime_ns
    again = train(cfg, progress=False)  # finished: returned, not retrained
    assert again.finished and (model_path(result.model_id) / "weights.pt").stat().st_mtime_ns == mtime
    with pytest.raises(ModelLibraryError, match="different config"):  # an explicit id is not re-used silently
        train(cfg.replace(lr=0.5, model_id=result.model_id), progress=False)


def test_finetune_from_a_joint_model(tiny_stores):
    store = tiny_stores["first_person"]
    joint = train(tiny_config(store, name="joint_v3", hflip=True, balanced=True), progress=False)
    cfg = make_config("finetune_k", init_from=joint.model_id, finetune={"game": "freedoom2_flick", "k_per_class": 3},
                      steps=2, eval_every=1, batch_size=4, chunks_per_batch=1, device="cpu")
    ft = train(cfg, progress=False)
    card = ft.card
    assert ft.model_id.startswith(f"finetune_k-freedoom2_flick-{joint.model_id}-s0-")
    assert card["init_from"] == joint.model_id and card["games"] == ["freedoom2_flick"]
    assert card["model"] == load_card(joint.model_id)["model"]
    assert 1 <= card["train_pairs_used"] <= 9
    assert card["config"]["datasets"] == [str(store)] and card["config"]["split_block"] == 4  # inherited
    assert card["config"]["balanced"] is True and card["config"]["hflip"] is True  # v3's sampling and flips
    plain = prepare(cfg.replace(balanced=False, finetune={**cfg.finetune, "seed": 7}))[0]
    assert plain.balanced is False and plain.hflip is True and plain.finetune["seed"] == 7


# --- embeddings --------------------------------------------------------------------------------


def test_extract_embeddings_contract(tiny_stores, workbench_dirs):
    store = tiny_stores["first_person"]
    result = train(tiny_config(store, name="joint_v1", targets={"steer": "flow_steer"}), progress=False)
    ds = extract_embeddings(result.model_id, store, split="all", batch_size=16, progress=False)
    n = len(build_pair_index([resolve_source(store)], ["steer"], block=4, labeled_only=False))  # 78 less purged
    assert ds.sizes["frame"] == n and ds.sizes["dim"] == 32
    assert ds["embedding"].dtype == np.float32 and ds["embedding"].dims == ("frame", "dim")
    assert ds["game"].values.dtype.kind == "U" and set(ds["game"].values) == {"freedoom1_smooth", "freedoom2_flick"}
    assert set(ds["split"].values) == {"train", "val", "test"}
    assert {"episode", "step", "source_frame"} <= set(ds.coords)
    from workbench.data.store import open_dataset

    src = open_dataset(store)
    t = ds["source_frame"].values
    heads = {"steer": STEER, "key_w": ["0", "1"], "key_a": ["0", "1"], "key_d": ["0", "1"]}
    assert ds.attrs["heads"] == heads and ds.attrs["model_id"] == result.model_id
    assert ds.attrs["dataset_id"] == "first_person" and ds.attrs["variant"] == "tiny-seed0"
    for head, classes in heads.items():
        assert ds[head].dtype == np.int8 and ds[head].attrs["classes"] == classes
        assert np.array_equal(ds[head].values, src[head].values[t])  # TRUE labels, not the flow targets
        assert ds[f"pred_{head}"].dtype == np.int8
        assert ds[f"logits_{head}"].dims == ("frame", f"{head}_class")
        assert ds[f"{head}_class"].values.tolist() == classes
        assert np.array_equal(ds[f"pred_{head}"].values, ds[f"logits_{head}"].values.argmax(1))
    for name in ("flow_steer", "flow_dom_dx", "flow_mag"):
        assert np.array_equal(ds[name].values, src[name].values[t], equal_nan=True)

    # the embeddings are the model's own, the split its rule, and the result is cached and reused
    model = load_model(result.model_id, "cpu")
    from workbench.frames.stream import pair_tensor
    from workbench.data.episode import resize_frames

    frames = resize_frames(src["frames"].values, (32, 32))
    with torch.no_grad():
        z = model.embed(pair_tensor(frames[t[:5]], frames[t[:5] + 1])).numpy()
    assert np.allclose(z, ds["embedding"].values[:5], atol=1e-5)
    test = extract_embeddings(result.model_id, store, split="test", progress=False)
    assert set(test["split"].values) == {"test"}
    assert np.allclose(test["embedding"].values, ds["embedding"].values[ds["split"].values == "test"], atol=1e-5)
    from workbench.methods.idm.embed import embeddings_path

    path = embeddings_path(result.model_id, resolve_source(store), "all")
    assert path.is_dir() and path.is_relative_to(workbench_dirs["cache"])
    written = path.stat().st_mtime_ns
    cached = extract_embeddings(result.model_id, store, split="all", progress=False)
    assert path.stat().st_mtime_ns == written  # read back, not recomputed
    assert cached["embedding"].equals(ds["embedding"]) and cached["split"].equals(ds["split"])
    assert cached.attrs["heads"] == heads and cached["steer"].attrs["classes"] == STEER


@pytest.mark.slow
def test_training_beats_chance_on_a_real_recording(tiny_stores):
    """A few hundred steps on tiny racing learn steering well above chance (1/3) on train pairs."""
    cfg = TrainConfig(datasets=[str(tiny_stores["racing"])], name="joint_v2", balanced=True, steps=300,
                      batch_size=16, chunks_per_batch=2, eval_every=100, split_block=4, lr=1e-3, device="cpu")
    card = train(cfg, progress=False).card
    steer = card["metrics"]["train"]["steer"]
    assert np.mean([row["balanced_accuracy"] for row in steer.values()]) > 0.6, steer
    assert card.history[-1]["train"]["loss"] < card.history[0]["train"]["loss"]
