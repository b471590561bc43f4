"""Environment runners, recorded outcomes and roles, agents and `workbench play`."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data.episode import Episode
from workbench.data.recorders import get_engine
from workbench.data.runners import EnvRunner, rollout
from workbench.data.schema import LabelSchema, LabelSpec
from workbench.data.store import open_dataset
from workbench.play import find_game, play
from workbench.frames.pairs import default_heads, label_classes
from workbench.frames.sources import resolve_source
from workbench.frames.actions import input_columns

GAMES = {
    "ale": {"game": "Enduro", "engine": "ale", "buttons": {"accel": "FIRE", "brake": "DOWN"}},
    "vizdoom": {"game": "doom", "engine": "vizdoom", "wad": "freedoom1", "map": "E1M1"},
    "carracing": {"game": "CarRacing", "engine": "carracing"},
}


def _future(runner, inputs):
    """Frames, rewards and state of playing ``inputs`` from the runner's current state."""
    out = []
    for x in inputs:
        obs, reward, *_ = runner.step(x)
        out.append((obs.frame.copy(), reward, {k: np.asarray(v).copy() for k, v in obs.state.items()}))
    return out


@pytest.mark.parametrize("engine", sorted(GAMES))
def test_clone_restore_reproduces_the_same_future(engine):
    with get_engine(engine).Runner(GAMES[engine], (32, 32)) as runner:
        rng = np.random.default_rng(0)
        space = runner.input_space()
        draw = lambda: {k: rng.uniform(*v) if isinstance(v, tuple) else rng.choice(v) for k, v in space.items()}  # noqa: E731
        runner.reset(3)
        for _ in range(5):
            runner.step(draw())
        snapshot = runner.clone()
        inputs = [draw() for _ in range(12)]
        first = _future(runner, inputs)
        assert runner.restore(snapshot).step == 5
        again = _future(runner, inputs)
        other = _future(runner, inputs)  # from a later state: a different future, so the check can fail
    for (f1, r1, s1), (f2, r2, s2) in zip(first, again):
        np.testing.assert_array_equal(f1, f2)
        assert r1 == r2
        for k in s1:
            np.testing.assert_array_equal(s1[k], s2[k])
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first, other))


@pytest.mark.parametrize("agent, game", [("scripted", "Enduro"), ("scripted", "CarRacing"), ("scripted", "freedoom2_flick"),
                                         ("reactive", "Enduro_reactive"), ("reactive", "Pong_reactive"),
                                         ("reactive", "CarRacing_reactive"), ("reactive", "freedoom2_hunter")])
def test_played_and_recorded_frames_are_identical(agent, game):
    """The scripted agent through `play` and the recorder give the same bytes for the same seed;
    so do the reactive agent and a reactive entry's recorder, decision variables included."""
    path = play(agent, game, episodes=1, seed=4, max_steps=25, progress=False)
    entry, cfg = find_game(game)
    (ep,) = get_engine(cfg["engine"]).record(cfg, 1, 25, entry.frame_size, 4)
    ds = open_dataset(path)
    np.testing.assert_array_equal(ds["frames"].values, ep.frames)
    stored = [name for name in ep.labels if name in entry.schema]
    assert {"reward", "episode_end"} <= set(stored)
    for name in stored:
        values = ep.labels[name]
        np.testing.assert_array_equal(ds[name].values, entry.schema[name].encode(values), err_msg=name)


def test_play_random_enduro_writes_a_store_with_roles():
    result = CliRunner().invoke(app, ["play", "random", "Enduro", "--episodes", "1", "--max-steps", "50"])
    assert result.exit_code == 0, result.output
    path = result.output.strip().splitlines()[-1]
    ds = open_dataset(path)
    assert ds.sizes["frame"] == 50 and ds.attrs["agent_id"] == "random" and ds.attrs["agent"] == {"agent": "random"}
    assert ds["ram"].shape == (50, 128) and ds["ram"].dtype == np.uint8 and ds["ram"].values.any()
    assert ds["reward"].attrs["role"] == "outcome" and ds["lives"].attrs["role"] == "state"
    assert "role" not in ds["steer"].attrs  # inputs keep the attrs they had before roles existed
    np.testing.assert_array_equal(ds["episode_end"].values, [0] * 49 + [2])  # running…, truncated by the cap
    heads = default_heads([resolve_source(path)])
    assert heads == ["steer", "accel", "brake"]
    assert "episode_end" not in input_columns(ds) and "reward" not in input_columns(ds)
    with pytest.raises(ValueError, match="outcome, not a player input"):
        label_classes(ds["episode_end"])


def test_roles_default_to_input_and_are_checked():
    old = LabelSpec.from_dict({"name": "steer", "kind": "binary"})
    assert old.role == "input" and "role" not in old.to_dict()
    schema = LabelSchema.from_list([old.to_dict(), {"name": "reward", "kind": "continuous", "role": "outcome"},
                                    {"name": "ram", "kind": "bytes", "length": 4, "role": "state"}])
    assert schema.with_role("input") == ["steer"] and schema.with_role("outcome") == ["reward"]
    assert schema.missing(3)["ram"].shape == (3, 4)
    with pytest.raises(ValueError, match="unknown role"):
        LabelSpec.from_dict({"name": "x", "kind": "binary", "role": "reward"})
    with pytest.raises(ValueError, match="uint8"):
        schema["ram"].encode(np.zeros((3, 5), np.uint8))


class _Countdown(EnvRunner):
    """A constructed game that the game itself ends after ``life`` steps."""

    name = "countdown"

    def __init__(self, life):
        super().__init__({"game": "countdown"}, None)
        self.life = life

    def _reset(self, seed):
        pass

    def _observe(self):
        return np.full((2, 2, 3), self.t, np.uint8), {"left": self.life - self.t}

    def _step(self, inputs):
        self.t += 1
        done = self.t >= self.life
        return self.observation(), 1.0, done, False, {"inputs": dict(inputs), "outcomes": {"reward": 1.0}}

    def input_space(self):
        return {"press": (0, float("inf"))}

    def clone(self):
        return self.t

    def restore(self, snapshot):
        self.t = snapshot
        return self.observation()

    def close(self):
        pass


@pytest.mark.parametrize("life, cap, end, n", [(4, 10, "terminated", 4), (10, 4, "truncated", 4), (4, 4, "terminated", 4)])
def test_episode_end_marks_termination_or_the_cap(life, cap, end, n):
    ep = rollout(_Countdown(life), lambda obs, history: {"press": len(history)}, 0, cap)
    assert isinstance(ep, Episode) and len(ep.frames) == n
    assert list(ep.labels["episode_end"]) == ["running"] * (n - 1) + [end]
    np.testing.assert_array_equal(ep.labels["press"], np.arange(n))  # the history grows step by step
    np.testing.assert_array_equal(ep.labels["left"], life - np.arange(n))  # state before each step


def test_steer_code_is_steer_from_sign_for_one_value():
    from workbench.data.runners import steer_code
    from workbench.data.schema import steer_from_sign

    values = [-1.5, -1e-9, 0.0, -0.0, 1e-12, 3.0, np.float32(-0.2), np.float32(0.0), float("nan")]
    assert [steer_code(v) for v in values] == [int(steer_from_sign(v)) for v in values] == [0, 0, 1, 1, 2, 2, 0, 1, -1]
