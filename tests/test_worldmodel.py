"""Latent-action world models (seed 002): the regularisers on constructed inputs, CEM on a known
minimum, configs, clips and action spaces, the causal forward model, and a tiny end-to-end run
(train -> evaluate -> transfer -> control -> plan) on real first_person recordings."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
import yaml

from workbench.core.errors import ConfigError
from workbench.engine.library import load_card, load_model
from workbench.frames.actions import ActionSpace, step_actions
from workbench.frames.clips import build_clip_index
from workbench.frames.stream import FrameReader
from workbench.methods.worldmodel import (ControllerConfig, DiscreteLatent, LatentActionWorldModel,
                                  NoisyLatent, SparseLatent, WorldModelConfig, ate, by_capacity,
                                  capacity, capacity_levels, cem, controller_rollouts, cycle_consistency,
                                  future_leakage, gaussian_kl, health_summary, integrate_motion, latent_actions,
                                  latent_probes, navigation_eval, planning_eval, rpe, sample_latents, save_filmstrip,
                                  save_gif, sparse_energy, sweep_configs, train_controller,
                                  train_world_model, transfer_filmstrip, vcm_loss, vector_quantize)
from workbench.methods.worldmodel.regularizers import PAPER_SWEEPS
from workbench.engine.fit import lr_factor
from conftest import record_tiny

ENCODER = {"input_size": 32, "width": 8, "rep_channels": 4}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- regularisers -------------------------------------------------------------------------------

def test_gaussian_kl_known_values():
    zeros = torch.zeros(3, 5)
    assert torch.allclose(gaussian_kl(zeros, zeros), torch.zeros(3))
    # per dim 0.5 (mu² + σ² - 1 - log σ²): mu=1, σ²=1 -> 0.5; mu=0, log σ²=1 -> 0.5 (e - 2)
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert gaussian_kl(mu, logvar).item() == pytest.approx(0.5 + 0.5 * (math.e - 2), rel=1e-6)


def test_noisy_latent_loss_and_modes():
    reg = NoisyLatent(2, beta=0.1)
    h = torch.tensor([[1.0, 0.0, 0.0, 1.0]])  # mu = (1, 0), logvar = (0, 1)
    reg.eval()
    z, loss, stats = reg(h)
    assert torch.equal(z, h[:, :2])  # evaluation: the mean
    assert loss.item() == pytest.approx(0.1 * (0.5 + 0.5 * (math.e - 2)), rel=1e-6)
    reg.train()
    torch.manual_seed(0)
    z_train, _, _ = reg(h)
    assert not torch.equal(z_train, h[:, :2])  # training: a sample


def test_sparse_energy_and_vcm_on_constructed_batches():
    assert sparse_energy(torch.zeros(1, 4), l1=0.01, l2=1.0).item() == pytest.approx(2.0)  # √D - 0
    # ‖z‖² = 4 ≥ √4: the hinge is off, the L1 term remains
    assert sparse_energy(torch.ones(1, 4), l1=0.01, l2=1.0).item() == pytest.approx(0.04)
    spread = torch.tensor([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])  # std > 1, uncorrelated, centred
    assert vcm_loss(spread).item() == pytest.approx(0.0, abs=1e-7)
    constant = torch.full((4, 2), 0.5)
    expected = 0.1 * (1 - 0.01) + 0.1 * 0.5  # std = sqrt(0 + 1e-4); |mean| = 0.5
    assert vcm_loss(constant, var=0.1, cov=0.001, mean=0.1).item() == pytest.approx(expected, rel=1e-5)
    correlated = torch.tensor([[2.0, 2.0], [-2.0, -2.0]])  # cov = 8 off the diagonal, both entries
    assert vcm_loss(correlated, var=0.0, cov=1.0, mean=0.0).item() == pytest.approx(2 * 64 / 2)
    reg = SparseLatent(2, l1=0.01)
    _, loss, _ = reg(spread)
    assert loss.item() == pytest.approx(sparse_energy(spread, 0.01, 1.0).mean().item(), rel=1e-6)


def test_vector_quantization_nearest_code_commitment_and_straight_through():
    codebook = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    code, index = vector_quantize(torch.tensor([[9.0, 1.0], [0.5, 0.2], [1.0, 8.0]]), codebook)
    assert index.tolist() == [1, 0, 2]
    assert torch.equal(code, codebook[[1, 0, 2]])
    reg = DiscreteLatent(2, codebook_size=3, commitment=0.25, reset_every=10 ** 9)
    with torch.no_grad():
        reg.codebook.copy_(codebook)
    h = torch.tensor([[9.0, 1.0]], requires_grad=True)
    z, loss, _ = reg(h)
    assert torch.equal(z.detach(), codebook[[1]])
    assert loss.item() == pytest.approx(1.25 * 1.0)  # (1 + 0.25) · mean((h - e)²) = 1.25 · (1 + 1) / 2
    z.sum().backward()
    assert torch.equal(h.grad, torch.ones_like(h))  # straight-through


def test_unused_codes_are_reset_onto_latents():
    torch.manual_seed(0)
    reg = DiscreteLatent(2, codebook_size=4, reset_every=6).train()
    with torch.no_grad():
        reg.codebook.copy_(torch.tensor([[0.0, 0.0], [50.0, 50.0], [60.0, 60.0], [70.0, 70.0]]))
    h = torch.tensor([[0.1, 0.0], [0.0, 0.2], [-0.1, 0.1]])
    reg(h)  # 3 latents seen: no reset yet
    assert torch.equal(reg.codebook[1:], torch.tensor([[50.0, 50.0], [60.0, 60.0], [70.0, 70.0]]))
    _, _, stats = reg(h)  # 6 seen: codes 1-3 were never used
    assert stats["codes_reset"] == 3
    for code in reg.codebook[1:]:
        assert any(torch.equal(code, row) for row in h)
    assert int(reg.seen) == 0 and int(reg.usage.sum()) == 0


# --- CEM, schedule, configs ----------------------------------------------------------------------

def test_cem_reaches_the_minimum_of_a_quadratic():
    target = torch.tensor([[0.7, -1.2], [1.5, 0.3], [-0.4, 2.0]])
    result = cem(lambda x: ((x - target) ** 2).flatten(1).sum(1), target.shape, seed=1)
    assert torch.allclose(result.best, target, atol=0.05)
    assert result.history == sorted(result.history, reverse=True)
    assert result.cost < 1e-2


def test_capacity_levels_follow_each_knobs_direction():
    assert by_capacity("sparse", [0.01, 0.4, 0.06]) == [0.4, 0.06, 0.01]  # a stronger L1 = less capacity
    assert by_capacity("discrete", [1024, 16]) == [16, 1024]  # a bigger codebook = more capacity
    assert capacity_levels("noisy", [1e-6, 5e-3, 1e-4]) == {5e-3: "Low", 1e-4: "Mid", 1e-6: "High"}
    assert capacity_levels("discrete", [16, 1024]) == {16: "Low", 1024: "High"}  # no middle: the paper's rows
    assert capacity_levels("sparse", PAPER_SWEEPS["sparse"])[0.4] == "Low"
    assert capacity_levels("sparse", PAPER_SWEEPS["sparse"])[0.06] == "Mid"  # the lower-capacity middle of eight
    assert list(capacity_levels("sparse", PAPER_SWEEPS["sparse"]).values()).count("") == 5
    assert capacity_levels("noisy", [5e-5]) == {5e-5: "Mid"}
    with pytest.raises(ValueError, match="no capacity knob"):
        capacity_levels("free", [1])


# --- trajectories -------------------------------------------------------------------------------

def test_motion_integrates_back_to_the_recorded_poses():
    """Poses of a constructed walk (a square with turns) -> step actions -> integrated poses."""
    angle = np.array([0.0, 0.0, 90.0, 90.0, 180.0, 270.0, 350.0])
    x, y = np.zeros(7), np.zeros(7)
    for t in range(6):
        step = np.radians(angle[t])
        x[t + 1], y[t + 1] = x[t] + 10 * np.cos(step) - 3 * np.sin(step), y[t] + 10 * np.sin(step) + 3 * np.cos(step)
    ds = xr.Dataset({"pos_x": ("frame", x), "pos_y": ("frame", y), "angle": ("frame", angle)},
                    coords={"game": ("frame", ["g"] * 7), "episode": ("frame", np.zeros(7, np.int32)),
                            "step": ("frame", np.arange(7, dtype=np.int32))})
    motion, _ = step_actions(ds, "motion")
    assert np.allclose(motion[:6, :2], [10, 3], atol=1e-4) and np.allclose(motion[:6, 2], [0, 90, 0, 90, 90, 80])
    poses = integrate_motion(np.array([0.0, 0.0, 0.0]), motion[:6])
    assert np.allclose(poses[:, :2], np.stack([x, y], 1), atol=1e-3)
    assert np.allclose((poses[:, 2] - angle + 180) % 360 - 180, 0, atol=1e-3)


def test_ate_and_rpe_known_answers():
    true = integrate_motion(np.zeros(3), np.tile([10.0, 0.0, 0.0], (4, 1)))  # 10 units forward, 4 steps
    assert ate(true, true) == 0 and rpe(true, true) == (0, 0)
    short = integrate_motion(np.zeros(3), np.tile([8.0, 0.0, 0.0], (4, 1)))  # 2 short per step
    assert np.isclose(ate(short, true), np.sqrt(np.mean([(2 * i) ** 2 for i in range(1, 5)])))
    trans, rot = rpe(short, true)
    assert np.isclose(trans, 2.0) and rot == 0
    sideways = integrate_motion(np.zeros(3), np.tile([0.0, 10.0, 0.0], (4, 1)))
    assert np.isclose(rpe(sideways, true)[0], np.sqrt(200))  # every step 10 left instead of 10 forward
    turned = integrate_motion(np.zeros(3), [[10.0, 0, 90.0], [10.0, 0, 0], [10.0, 0, 0], [10.0, 0, 0]])
    trans, rot = rpe(turned, true)
    assert np.isclose(rot, 90 / 4) and np.isclose(trans, 0, atol=1e-9)  # one wrong turn; every step the right length
    assert np.isclose(ate(turned, true), np.sqrt(np.mean([0, 200, 800, 1800])))  # drift grows after the turn
    both = np.stack([short, turned])
    assert ate(both, np.stack([true, true])).shape == (2,)


def test_lr_schedule_warms_up_then_decays():
    factors = [lr_factor(s, 100, 0.1) for s in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[50] < 1.0 and factors[-1] < 0.01
    assert all(a >= b for a, b in zip(factors[9:], factors[10:]))


def test_config_yaml_round_trip_and_sweeps(tmp_path):
    cfg = WorldModelConfig(datasets="first_person", family="sparse", l1=0.05)
    assert WorldModelConfig.load(cfg.save(tmp_path / "wm.yaml")) == cfg
    assert cfg.knob == ("l1", 0.05) and cfg.regularizer_params()["l1"] == 0.05
    assert yaml.safe_load(cfg.to_yaml())["datasets"] == ["first_person"]
    with pytest.raises(ValueError, match="unknown keys"):
        WorldModelConfig.from_dict({"datasets": ["x"], "lambda": 1})
    with pytest.raises(ValueError, match="family"):
        WorldModelConfig(datasets=["x"], family="gaussian")
    sweep = sweep_configs("noisy", base=cfg, steps=10)
    assert [c.beta for c in sweep] == PAPER_SWEEPS["noisy"]
    assert all(c.family == "noisy" and c.steps == 10 and c.model_id is None for c in sweep)
    assert [c.codebook_size for c in sweep_configs("discrete", [16, 64], datasets=["x"])] == [16, 64]
    with pytest.raises(ValueError, match="knob"):
        sweep_configs("zero", [1])


# --- the forward model -------------------------------------------------------------------------

def test_forward_model_is_frame_causal_and_starts_as_a_copy():
    torch.manual_seed(0)
    model = LatentActionWorldModel(ENCODER, "free", latent_dim=8, context=4, d_model=16, depth=1, n_heads=2)
    s = torch.randn(2, 4, 4, 8, 8)
    z = torch.randn(2, 4, 8)
    assert torch.equal(model.predict(s, z), s)  # zero-initialised head: the next state is the last one
    for p in model.predictor.parameters():  # leave initialisation: every part now matters
        torch.nn.init.normal_(p, std=0.1)
    changed = s.clone()
    changed[:, 2:] += 1.0
    z_changed = z.clone()
    z_changed[:, 2:] += 1.0
    before, after = model.predict(s, z), model.predict(changed, z_changed)
    assert torch.allclose(before[:, :2], after[:, :2], atol=1e-6)  # frames 0-1 never see frames 2-3
    assert not torch.allclose(before[:, 2:], after[:, 2:])
    rolled = model.rollout(s[:, 0], z[:, :3])
    assert rolled.shape == (2, 3, 4, 8, 8)
    assert torch.allclose(rolled[:, 0], model.predict(s[:, :1], z[:, :1])[:, 0], atol=1e-6)


# --- real recordings ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def first_person_tiny(tmp_path_factory):
    """The first_person catalog entry recorded at its tiny size (2 games x 40 frames)."""
    return record_tiny(tmp_path_factory, "first_person")


def test_clips_stay_in_one_block_and_read_the_store(first_person_tiny):
    from workbench.frames.sources import resolve_source

    source = resolve_source(first_person_tiny)
    index = build_clip_index([source], length=4, block=8)
    assert len(index) and ((index.start // 8) == ((index.start + 3) // 8)).all()
    assert set(index.split.tolist()) <= {0, 1, 2}
    clips = FrameReader([source], 32).batch(index, np.arange(2))
    assert clips.shape == (2, 4, 32, 32, 3) and clips.dtype == np.uint8
    from workbench.data.episode import resize_frames
    stored = source.open()["frames"].values[index.start[1]:index.start[1] + 4]
    assert np.array_equal(clips[1], resize_frames(stored, (32, 32)))


def test_action_spaces_on_a_recording(first_person_tiny):
    from workbench.data.store import open_dataset

    ds = open_dataset(first_person_tiny).drop_vars("frames")
    inputs, columns = step_actions(ds, "inputs")
    assert columns == ["steer", "key_w", "key_a", "key_d", "mouse_dx"]
    motion, names = step_actions(ds, "motion")
    assert names == ["forward", "left", "turn"]
    ok = np.isfinite(motion).all(axis=1)
    assert ok.sum() >= 70 and not ok[39] and not ok[79]  # the last frame of each episode has no step
    # turning right (positive mouse dx) turns the player clockwise: negative yaw change
    assert np.corrcoef(motion[ok, 2], inputs[ok, 4])[0, 1] < -0.9
    space = ActionSpace.fit("motion", names, motion)
    assert np.allclose(space.raw(space.standardize(motion[ok])), motion[ok], atol=1e-3)


def test_inputs_space_signs_directions_and_skips_inputs_a_game_lacks():
    steer = ["LEFT", "NEUTRAL", "RIGHT"]
    schema = [{"name": "steer", "kind": "categorical", "classes": steer}, {"name": "accel", "kind": "binary"},
              {"name": "steer_value", "kind": "continuous"}, {"name": "pos_x", "kind": "continuous"}]
    ds = xr.Dataset(
        {"steer": ("frame", np.array([0, 1, 2, 1, -1, 2], np.int8), {"kind": "categorical", "classes": steer}),
         "accel": ("frame", np.array([1, 0, 1, 0, 1, 0], np.int8), {"kind": "binary"}),
         "steer_value": ("frame", np.array([np.nan] * 3 + [-0.5, 0.0, 0.5], np.float32), {"kind": "continuous"}),
         "pos_x": ("frame", np.arange(6, dtype=np.float32), {"kind": "continuous"})},
        coords={"game": ("frame", ["A"] * 3 + ["B"] * 3), "episode": ("frame", np.zeros(6, np.int32)),
                "step": ("frame", np.array([0, 1, 2, 0, 1, 2], np.int32))},
        attrs={"label_schema": schema})
    actions, columns = step_actions(ds, "inputs")
    assert columns == ["steer", "accel"]  # game A has no analogue steering; positions are not inputs
    expected = np.array([[-1, 1], [0, 0], [np.nan, np.nan], [0, 0], [np.nan, 1], [np.nan, np.nan]], np.float32)
    assert np.array_equal(actions, expected, equal_nan=True)  # unlabeled -> NaN; episode ends -> NaN


def _wm_config(store, **overrides) -> WorldModelConfig:
    values = dict(datasets=[str(store)], split_block=8, clip_length=4, input_size=32, encoder_width=8, rep_channels=4,
                  encoder_steps=4, latent_dim=8, d_model=16, depth=1, n_heads=2, idm_width=8, steps=4, batch_size=4,
                  chunks_per_batch=2, eval_every=2, checkpoint_every=1, eval_clips=8, device="cpu")
    values.update(overrides)
    return WorldModelConfig(**values)


def test_training_resumes_to_the_same_weights(first_person_tiny):
    cfg = _wm_config(first_person_tiny, family="noisy")
    first = train_world_model(cfg.replace(model_id="uninterrupted"), progress=False)
    train_world_model(cfg.replace(model_id="resumed"), max_steps=2, progress=False)
    second = train_world_model(cfg.replace(model_id="resumed"), progress=False)
    a, b = load_model(first, "cpu").state_dict(), load_model(second, "cpu").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    card = load_card(second)
    assert card.extras["encoder"].startswith("frameae-") and card.config["family"] == "noisy"
    assert set(card.metrics["test"]) == {"model", "zero", "shuffled"}
    assert train_world_model(cfg.replace(model_id="resumed"), progress=False) == second  # finished: reused
    with pytest.raises(Exception, match="different config"):
        train_world_model(cfg.replace(model_id="resumed", beta=1.0), progress=False)


def test_a_changed_setting_names_a_new_world_model(first_person_tiny):
    """``worldmodel train --steps 3`` after ``--steps 2`` trains a second model (ids carry the
    config hash) instead of failing on the first one's card; the same config finds its model."""
    cfg = _wm_config(first_person_tiny, family="zero", steps=2)
    short = train_world_model(cfg, progress=False)
    longer = train_world_model(cfg.replace(steps=3), progress=False)
    assert short != longer and re.fullmatch(r"lawm-zero-first_person-tiny-seed0-all-s0-[0-9a-f]{6}", longer)
    assert (load_card(short).steps, load_card(longer).steps) == (2, 3)
    assert load_card(short).extras["encoder"] == load_card(longer).extras["encoder"]  # one autoencoder, reused
    assert train_world_model(cfg, progress=False) == short


def test_end_to_end_train_transfer_control_plan(first_person_tiny, tmp_path):
    ids = {family: train_world_model(_wm_config(first_person_tiny, family=family, codebook_size=4), progress=False)
           for family in ("sparse", "discrete", "zero")}
    ids["action"] = train_world_model(_wm_config(first_person_tiny, family="action", action_space="motion"),
                                      progress=False)
    assert len({load_card(i)["encoder"] for i in ids.values()}) == 1  # one shared representation space

    table = capacity(list(ids.values()), n_clips=8, pixels=False)
    assert set(table["family"]) == {"sparse", "discrete", "zero", "action"}
    assert np.isfinite(table["error"]).all()
    leak = future_leakage([ids["sparse"], ids["zero"]], n_clips=8)
    assert leak["ratio"][0] > 0 and leak["cut"][0] == 1
    # the zero model is the no-leak reference: its latent is 0 at the cut as anywhere else
    assert list(leak["family"]) == ["sparse", "zero"] and leak["ratio"][1] > 0
    with pytest.raises(ConfigError, match="needs IDM latents"):
        future_leakage([ids["action"]], n_clips=8)
    cycle = cycle_consistency([ids["discrete"]], n_clips=8, pixels=False)
    assert set(cycle["pairing"]) <= {"within", "across"} and (cycle["ratio"] > 0).all()

    strip = transfer_filmstrip(ids["sparse"])
    assert list(strip) == ["source", "target", "source_predicted", "transferred", "cycled"]
    assert all(v.shape == (4, 32, 32, 3) and v.dtype == np.uint8 for v in strip.values())
    assert np.array_equal(strip["transferred"][0], strip["target"][0])
    png = save_filmstrip(strip, tmp_path / "strip.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    gif = save_gif([strip["source"], strip["transferred"]], tmp_path / "strip.gif")
    assert gif.read_bytes()[:6] == b"GIF89a"

    latents = latent_actions(ids["discrete"])
    n_pairs = latents["embedding"].shape[0]  # the held-out pairs (boundary pairs purged)
    assert latents["embedding"].shape[1] == 8 and 60 <= n_pairs < 80 and "code" in latents and "mouse_dx" in latents
    probes = latent_probes(latents, ["steer"])
    assert set(probes["probe"]) == {"linear", "knn"}
    health = health_summary([ids["discrete"], ids["zero"]], n_clips=8, probe_head=None)
    assert 0 < health.loc[0, "code_usage"] <= 1 and np.isnan(health.loc[1, "code_usage"])
    # a run's leakage and probe tables are read, not recomputed; a model they lack is computed
    leak, steer = future_leakage([ids["sparse"]], n_clips=8), probes.assign(model_id=ids["discrete"])
    both = [ids["sparse"], ids["discrete"]]
    pd.testing.assert_frame_equal(health_summary(both, n_clips=8, leakage=leak, probes=steer),
                                  health_summary(both, n_clips=8))
    known = health_summary([ids["sparse"]], n_clips=8, leakage=leak.assign(ratio=7.0),
                           probes=steer.assign(model_id=ids["sparse"], balanced_accuracy=0.25))
    assert known.loc[0, "leakage_ratio"] == 7.0 and known.loc[0, "probe_steer"] == 0.25
    assert sample_latents(ids["sparse"], 16, sgld_steps=5).shape == (16, 8)

    ctrl = train_controller(ControllerConfig(world_model=ids["sparse"], kind="xattn", action_space="motion", steps=3,
                                             batch_size=8, eval_every=3, checkpoint_every=3, device="cpu"),
                            progress=False)
    rollouts = controller_rollouts(ids["sparse"], [ctrl], n_clips=8)
    assert set(rollouts["latent"]) == {"idm", "controller", "random_actions", "zero"}
    plans = planning_eval(ids["sparse"], [ctrl], ids["action"], n_episodes=2, n_samples=16, top_k=4, iterations=2)
    assert set(plans["method"]) == {"random", "still", "controller:xattn", "action_model"}
    assert len(plans) == 8 and np.isfinite(plans[["error_forward", "error_left", "error_turn", "l1_std"]]).all().all()
    nav = navigation_eval(ids["sparse"], [ctrl], ids["action"], n_episodes=2, horizon=3, n_samples=16)
    assert set(nav["method"]) == {"random", "still", "straight_fit", "controller:xattn", "action_model"}
    assert np.isfinite(nav[["ate", "rpe", "rpe_rot"]]).all().all() and (nav[["ate", "rpe"]] >= 0).all().all()
    still = nav[nav.method == "still"]
    assert (still.ate > 0).any()  # the recorded player moves

    # a game the model never saw: clips, controllers and scores of that game only
    per_clip = future_leakage([ids["sparse"]], n_clips=8, per_clip=True, pixels=False)
    assert len(per_clip) == per_clip["clip"].nunique() and {"error", "error_cut", "game"} <= set(per_clip.columns)
    assert np.isclose(future_leakage([ids["sparse"]], n_clips=8, pixels=False)["error"][0], per_clip["error"].mean())
    games = ["freedoom2_flick"]  # tiny: one test block of 8 frames, so no clip has a partner 8 clips away
    assert future_leakage([ids["sparse"]], n_clips=8, games=games, pixels=False).empty
    other = train_controller(ControllerConfig(world_model=ids["sparse"], kind="mlp", action_space="motion", steps=3,
                                              batch_size=8, eval_every=3, checkpoint_every=3, device="cpu",
                                              games=games), progress=False)
    assert load_card(other)["games"] == games
    clips = controller_rollouts(ids["sparse"], [other], n_clips=8, games=games, per_clip=True)
    assert set(clips["game"]) == set(games) and {"clip", "error"} <= set(clips.columns)


def test_library_resolves_every_architecture_lazily_and_imports_no_method():
    import importlib
    import subprocess
    import sys

    from workbench.engine.library import ARCHITECTURES

    assert set(ARCHITECTURES) == {"IDMLatentSpatial", "LatentActionWorldModel", "FrameAutoencoder", "MLPController",
                                  "CrossAttentionController"}
    for name, target in ARCHITECTURES.items():
        module, attr = target.split(":")
        assert getattr(importlib.import_module(module), attr).__name__ == name
    # the library is a lower layer than the methods: loading it must not import them
    code = "import sys, workbench.engine.library; print(any(m.startswith('workbench.methods') for m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"