"""Levels in the real games: ViZDoom's scenarios, the resumable `workbench levels` batch and the
MPC agent (a tiny world model + controller planning with CEM in ViZDoom)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data.recorders import episode_rng, get_engine
from workbench.data.store import open_store
from workbench.play import find_game, make_agent
from workbench.play import levels as play_levels
from workbench.play.levels import LevelsConfig, read_episode_rows, run_demo_levels, run_levels, viewer_paths
from workbench.play.mpc import MPCAgent, episode_goal, planned_inputs

SCENARIOS = ("take_cover", "health_gathering", "defend_the_center", "my_way_home")


def test_scenarios_accept_only_their_inputs_and_pay_their_rewards():
    for game in SCENARIOS:
        entry, cfg = find_game(game)
        assert entry.id == "doom_scenarios" and cfg["scenario"] == game
    entry, cfg = find_game("take_cover")
    with get_engine("vizdoom").Runner(cfg, (96, 96)) as runner:
        assert set(runner.input_space()) == {"key_a", "key_d"}
        runner.reset(3)
        _, reward, terminated, _, info = runner.step({"key_w": 1, "key_a": 1, "mouse_dx": 20.0})
        assert info["inputs"]["key_w"] == 0 and info["inputs"]["mouse_dx"] == 0 and info["inputs"]["key_a"] == 1
        assert reward == 2.0 and not terminated  # living reward 1 per tic, 2 tics per step
    with pytest.raises(ValueError, match="unknown ViZDoom inputs"):
        get_engine("vizdoom").Runner({**cfg, "inputs": ["key_q"]}, (96, 96))


def test_levels_batch_stores_episodes_resumes_and_writes_the_tables(capsys):
    cfg = LevelsConfig(games={"take_cover": 12, "my_way_home": 8}, agents=["random", "scripted"], episodes=2,
                       run_id="levels-test")
    folder = run_levels(cfg, progress=False)
    rows = read_episode_rows(folder)
    assert len(rows) == 8 and set(rows["agent"]) == {"random", "scripted"}
    row = rows[(rows.agent == "random") & (rows.game == "take_cover") & (rows.seed == 1)].iloc[0]
    ds = open_store(folder / row["store"])
    assert ds.attrs["agent_id"] == "random" and ds.sizes["frame"] == row["steps"] <= 12
    assert {"key_a", "reward", "death", "episode_end", "pos_x"} <= set(ds.data_vars)
    assert row["return"] == pytest.approx(float(ds["reward"].sum()))
    assert np.isfinite(rows["goal_distance_start"]).all()  # every ViZDoom episode has its goal
    # both agents of an episode start alike and share its goal
    same = rows.groupby(["game", "seed"])[["goal_x", "goal_distance_start"]].nunique()
    assert (same == 1).all().all()
    table = pd.read_csv(folder / "level_table.csv")
    assert len(table) == 4 and {"rmst", "curiosity_auc", "coverage", "return", "rank_survival"} <= set(table.columns)
    assert (table["coverage_kind"] == "map cells (64 u)").all() and (table["rmst"] <= table["cap"]).all()
    ranks = pd.read_csv(folder / "ranks.csv")
    assert set(ranks["level"]) == {"survival", "curiosity", "utility", "overall"}
    for name in ("km_curves", "magnitude_curves", "trajectories", "goals", "curiosity_episodes"):
        assert len(pd.read_csv(folder / f"{name}.csv")), name
    gif, png = viewer_paths(folder, "scripted", "my_way_home", 1)
    assert gif.read_bytes()[:6] == b"GIF89a" and png.read_bytes()[:4] == b"\x89PNG"

    # a killed batch: one episode lost its row (its store was written); the rerun replays just that one
    lost = folder / "rows" / "scripted" / "take_cover" / "ep1.json"
    before = json.loads(lost.read_text())
    lost.unlink()
    messages = []
    run_levels(cfg, progress=False, log=messages.append)
    assert "7 of 8 episodes done, 1 to play" in messages[0]
    assert json.loads(lost.read_text()) == before  # the same seed plays the same episode
    with pytest.raises(ValueError, match="other games, caps"):
        run_levels(LevelsConfig(games={"take_cover": 13, "my_way_home": 8}, episodes=2, run_id="levels-test"))


def test_main_job_levels_run_plays_every_agent_and_says_what_it_could_not(monkeypatch):
    from workbench.app.levels import run_view
    from workbench.app.state import ViewState

    monkeypatch.setitem(play_levels.DEMO_SIZES, "tiny", (1, 6))
    folder = run_demo_levels("tiny", 0, progress=False)
    rows = read_episode_rows(folder)
    games = set(play_levels.level_sets()["demo"]["games"])
    assert {"defend_the_center", "Enduro", "Pong_reactive"} < games and (rows["steps"] <= 6).all()
    missing = pd.read_csv(folder / "unavailable.csv")
    # no seed 002 run has trained a controller here; the hunter needs ATTACK, which my_way_home lacks
    assert set(zip(missing.agent, missing.game)) == {("mpc", "*"), ("reactive", "my_way_home")}
    assert "no seed 002 tiny controller" in missing.set_index("agent").loc["mpc", "reason"]
    assert len(rows) == 3 * len(games) - 1 and set(rows["agent"]) == {"random", "scripted", "reactive"}
    table = pd.read_csv(folder / "level_table.csv").set_index(["agent", "game"])
    assert len(table) == len(rows)
    assert table.loc[("random", "Pong_reactive"), "coverage_kind"] == "player positions (RAM)"  # AtariARI's byte
    shown = [getattr(part, "object", "") for part in run_view(folder.name, ViewState())]
    assert any("Not played" in str(text) for text in shown)


def test_mpc_is_unavailable_without_models():
    with pytest.raises(ValueError, match="unavailable without models"):
        make_agent("mpc")
    result = CliRunner().invoke(app, ["levels", "random", "mpc", "--game", "take_cover", "--max-steps", "5"])
    assert result.exit_code == 2 and "mpc:<controller id>" in result.output


def test_planned_motion_becomes_game_inputs():
    space = {"name": "motion", "columns": ["forward", "left", "turn"], "mean": [0, 0, 0], "std": [10.0, 4.0, 5.0]}
    full = {"key_w": [0, 1], "key_a": [0, 1], "key_d": [0, 1], "mouse_dx": (-30.0, 30.0)}
    assert planned_inputs(space, np.array([8.0, -3.0, 10.0]), full) == {"key_w": 1, "key_a": 0, "key_d": 1,
                                                                        "mouse_dx": -10.0}
    assert planned_inputs(space, np.array([2.0, 1.0, -90.0]), full) == {"key_w": 0, "key_a": 0, "key_d": 0,
                                                                        "mouse_dx": 30.0}
    assert planned_inputs(space, np.array([8.0, 3.0, 1.0]), {"key_a": [0, 1], "key_d": [0, 1]}) == {"key_a": 1,
                                                                                                  "key_d": 0}
    inputs = {"name": "inputs", "columns": ["steer", "key_w", "mouse_dx"], "mean": [0] * 3, "std": [1] * 3}
    assert planned_inputs(inputs, np.array([1.0, 0.7, 45.0]), full) == {"key_w": 1, "key_a": 0, "key_d": 0,
                                                                        "mouse_dx": 30.0}


@pytest.fixture(scope="module")
def tiny_planner(tmp_path_factory):
    """A tiny latent world model and a motion controller trained on the tiny first_person recording."""
    import os

    from workbench.data.catalog import get_entry, materialise
    from workbench.methods.worldmodel import ControllerConfig, WorldModelConfig, train_controller, train_world_model

    root = tmp_path_factory.mktemp("mpc")
    env = {"WORKBENCH_CACHE": str(root / "cache"), "WORKBENCH_MODELS": str(root / "models")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        store = materialise(get_entry("first_person"), size="tiny", progress=False)
        world = train_world_model(WorldModelConfig(
            datasets=[str(store)], family="sparse", split_block=8, clip_length=4, input_size=32, encoder_width=8,
            rep_channels=4, encoder_steps=4, latent_dim=8, d_model=16, depth=1, n_heads=2, idm_width=8, steps=4,
            batch_size=4, chunks_per_batch=2, eval_every=2, checkpoint_every=4, eval_clips=8, device="cpu"),
            progress=False)
        ctrl = train_controller(ControllerConfig(world_model=world, kind="mlp", action_space="motion", steps=3,
                                                 batch_size=8, eval_every=3, checkpoint_every=3, device="cpu"),
                                progress=False)
    finally:
        torch.set_num_threads(threads)
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return env["WORKBENCH_MODELS"], world, ctrl


@pytest.mark.slow
def test_mpc_agent_plays_the_real_game_and_its_episodes_are_stored(tiny_planner, monkeypatch):
    models, world, ctrl = tiny_planner
    monkeypatch.setenv("WORKBENCH_MODELS", models)
    agent = MPCAgent(ctrl, horizon=3, replan=2, n_samples=16, top_k=4, iterations=2)
    assert agent.id == f"mpc-{ctrl}" and agent.card["world_model"] == world
    entry, cfg = find_game("my_way_home")
    with get_engine("vizdoom").Runner(cfg, (96, 96)) as runner:
        seed = agent.begin(runner, episode_rng(0, "my_way_home", 0), 6)
        assert (seed, agent.card["goal"]["x"]) == (lambda s, g: (s, g["x"]))(
            *episode_goal(runner, episode_rng(0, "my_way_home", 0)))  # the goal every agent is scored on
        obs = runner.reset(seed)
        sent = [agent.act(obs, []) for _ in range(4)]
    assert len(agent.costs) == 2 and all(np.isfinite(agent.costs))  # replanned every 2 steps
    assert all(set(s) == set(runner.input_space()) for s in sent)

    agents = [make_agent("random"), MPCAgent(ctrl, n_samples=16, top_k=4, iterations=2)]
    folder = run_levels(LevelsConfig(games={"my_way_home": 5}, agents=["random", f"mpc:{ctrl}"], episodes=1,
                                     run_id="levels-mpc"), progress=False, agents=agents)
    rows = read_episode_rows(folder).set_index("agent")
    assert rows.loc[f"mpc-{ctrl}", "steps"] == 5 and np.isfinite(rows.loc[f"mpc-{ctrl}", "goal_distance_end"])
    ds = open_store(folder / rows.loc[f"mpc-{ctrl}", "store"])
    card = json.loads(ds.attrs["agent"]) if isinstance(ds.attrs["agent"], str) else ds.attrs["agent"]
    assert card["planner"] == ctrl and card["world_model"] == world and ds.sizes["frame"] == 5
    goals = pd.read_csv(folder / "goals.csv")
    assert set(goals["agent"]) == {"random", f"mpc-{ctrl}"}


@pytest.mark.slow
def test_main_job_levels_run_adds_the_seed_002_planner_in_vizdoom(tiny_planner, monkeypatch):
    models, world, ctrl = tiny_planner
    monkeypatch.setenv("WORKBENCH_MODELS", models)
    monkeypatch.setitem(play_levels.DEMO_SIZES, "tiny", (1, 4))
    monkeypatch.setattr(play_levels, "demo_planner", lambda size, seed: (ctrl, ""))
    folder = run_demo_levels("tiny", 0, progress=False)
    rows = read_episode_rows(folder)
    assert set(rows.loc[rows.agent == f"mpc-{ctrl}", "game"]) == {"defend_the_center", "my_way_home"}
    missing = pd.read_csv(folder / "unavailable.csv")
    assert set(missing.loc[missing.agent == f"mpc-{ctrl}", "game"]) == {"Enduro", "Pong_reactive"}
