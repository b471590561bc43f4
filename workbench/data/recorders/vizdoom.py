"""ViZDoom recorder: first-person play in the Freedoom worlds that ship with ``vizdoom``.

Buttons are W (forward), A / D (strafe) and a mouse-x delta (``TURN_LEFT_RIGHT_DELTA``, applied
every tic; positive = turn right). Labels: W/A/D keys, the mouse delta in degrees per recorded
step, its direction (LEFT/NEUTRAL/RIGHT, any non-zero input counts as a turn — the true input,
whatever its size), and the player's position and angle from the engine's game variables.
Styles come from ``PlayerStyle``: smooth exploration ("bell" turns of a few degrees per step,
held long) versus flicks (large, short turns between long neutral stretches).
"""

from __future__ import annotations

import os
from functools import partial
from typing import Any, Mapping

import numpy as np

from ...core.errors import ConfigError
from ...core.paths import cache_dir
from ..player import PlayerStyle, held_channel, signed_channel, turn_channel
from ..runners import EPISODE_END, EnvRunner, ReplayClone, steer_code
from ..schema import STEER_CLASSES, LabelSchema
from ..runners import env_seed
from . import episodes

SCHEMA = LabelSchema.from_list([
    {"name": "steer", "kind": "categorical", "classes": list(STEER_CLASSES),
     "description": "mouse-x direction (camera yaw input; any non-zero input is a turn)"},
    {"name": "key_w", "kind": "binary", "description": "W: move forward"},
    {"name": "key_a", "kind": "binary", "description": "A: strafe left"},
    {"name": "key_d", "kind": "binary", "description": "D: strafe right"},
    {"name": "mouse_dx", "kind": "continuous", "units": "degrees/step", "description": "camera yaw input, positive = right"},
    {"name": "attack", "kind": "binary", "description": "left mouse: fire the weapon (games with ``attack: true``)"},
    {"name": "pos_x", "kind": "continuous", "units": "map units", "description": "player x before the step", "role": "state"},
    {"name": "pos_y", "kind": "continuous", "units": "map units", "description": "player y before the step", "role": "state"},
    {"name": "angle", "kind": "continuous", "units": "degrees", "role": "state",
     "description": "player yaw before the step (counter-clockwise)"},
    {"name": "health", "kind": "continuous", "units": "%", "role": "state", "description": "player health at the frame"},
    {"name": "kills", "kind": "continuous", "units": "monsters", "role": "state", "description": "monsters killed so far"},
    {"name": "items", "kind": "continuous", "units": "items", "role": "state", "description": "items picked up so far"},
    {"name": "reward", "kind": "continuous", "units": "points", "role": "outcome",
     "description": "the scenario's reward for the step (0 in maps without rewards)"},
    {"name": "death", "kind": "binary", "role": "outcome", "description": "the player died in the step"},
    EPISODE_END,
])

WORLDS = {"freedoom1": "freedoom1.wad", "freedoom2": "freedoom2.wad"}
#: ViZDoom's bundled scenarios with defined rewards (``scenarios/<name>.cfg`` + ``.wad`` in the package).
SCENARIOS = ("take_cover", "health_gathering", "defend_the_center", "my_way_home")
#: Game variables read at every frame, in the order of the state labels they fill.
VARIABLES = ("pos_x", "pos_y", "angle", "health", "kills", "items")

def version() -> dict[str, str]:
    from importlib import metadata

    return {"vizdoom": metadata.version("vizdoom")}


def _make_game(wad: str, doom_map: str, seed: int, skill: int | None, scenario: str | None = None,
               attack: bool = False, objects: bool = False):
    """A DoomGame on a Freedoom map, or on a bundled ``scenario`` (its wad, map, rewards and skill
    from its .cfg; buttons, variables, screen and the episode length stay the workbench's)."""
    import vizdoom as vzd

    game = vzd.DoomGame()
    if scenario is not None:
        if scenario not in SCENARIOS:
            raise ConfigError(f"unknown ViZDoom scenario {scenario!r}; known: {list(SCENARIOS)}")
        game.load_config(os.path.join(vzd.scenarios_path, f"{scenario}.cfg"))
    elif wad not in WORLDS:
        raise ConfigError(f"unknown ViZDoom world {wad!r}; known: {sorted(WORLDS)}")
    config = cache_dir() / "vizdoom" / "_vizdoom.ini"  # ViZDoom writes its ini; keep it out of the cwd
    config.parent.mkdir(parents=True, exist_ok=True)
    game.set_doom_config_path(str(config))
    if scenario is None:
        game.set_doom_game_path(os.path.join(os.path.dirname(vzd.__file__), WORLDS[wad]))
        game.set_doom_map(doom_map)
    game.set_screen_resolution(vzd.ScreenResolution.RES_160X120)
    game.set_screen_format(vzd.ScreenFormat.RGB24)
    game.set_window_visible(False)
    game.set_sound_enabled(False)
    game.set_mode(vzd.Mode.PLAYER)
    if skill is not None:
        game.set_doom_skill(skill)
    game.set_episode_timeout(10**7)  # the length cap is the caller's (recording size, play or levels cap)
    game.set_seed(seed)
    B, V = vzd.Button, vzd.GameVariable
    game.set_available_buttons([B.MOVE_FORWARD, B.MOVE_LEFT, B.MOVE_RIGHT, B.TURN_LEFT_RIGHT_DELTA] + [B.ATTACK] * attack)
    game.set_labels_buffer_enabled(objects)  # visible objects with their screen boxes, for reactive players
    game.set_depth_buffer_enabled(objects)
    game.set_available_game_variables([V.POSITION_X, V.POSITION_Y, V.ANGLE, V.HEALTH, V.KILLCOUNT, V.ITEMCOUNT])
    game.init()
    return game


class Runner(ReplayClone, EnvRunner):
    """A Freedoom map (``game_cfg``: ``wad``, ``map``, ``tics`` per step (2), ``skill`` (1),
    ``attack`` (false): the ATTACK button, ``objects`` (false): the labels and depth buffers) or a
    bundled ``scenario`` (its own skill unless ``skill`` is given); ``inputs`` optionally lists the
    inputs the game accepts (a scenario's buttons: take_cover only strafes), the others are sent as 0.

    Inputs: ``key_w`` / ``key_a`` / ``key_d`` (0/1), ``mouse_dx`` (degrees per step, spread
    over the step's tics) and, with ``attack``, ``attack`` (0/1). ``game_state`` is the engine's
    state at the current frame (with ``objects``: its ``labels`` and ``depth_buffer``, the truth a
    reactive player reads). Clone/restore replay the inputs from the reset seed (:class:`ReplayClone`):
    ViZDoom's ``save`` writes the game a tic after the call, not the state at it, so a save game
    restores a different moment. After the episode ends the observation repeats the last frame.
    """

    SCHEMA = SCHEMA

    def __init__(self, game_cfg: Mapping, frame_size, seed: int = 0):
        super().__init__(game_cfg, frame_size)
        wad, doom_map, scenario = game_cfg.get("wad", "freedoom1"), game_cfg.get("map", "E1M1"), game_cfg.get("scenario")
        self.name = f"ViZDoom {scenario}" if scenario else f"ViZDoom {wad} {doom_map}"
        self.tics = int(game_cfg.get("tics", 2))
        self.attack = bool(game_cfg.get("attack", False))
        skill = game_cfg.get("skill", None if scenario else 1)
        self.game = _make_game(wad, doom_map, int(seed) & 0x7FFFFFFF, None if skill is None else int(skill), scenario,
                               self.attack, bool(game_cfg.get("objects", False)))
        space = {"key_w": [0, 1], "key_a": [0, 1], "key_d": [0, 1], "mouse_dx": (-30.0, 30.0),
                 **({"attack": [0, 1]} if self.attack else {})}
        allowed = game_cfg.get("inputs", list(space))
        unknown = set(allowed) - set(space)
        if unknown:
            raise ConfigError(f"game {game_cfg.get('game')}: unknown ViZDoom inputs {sorted(unknown)}; known: {list(space)}")
        self.space = {k: v for k, v in space.items() if k in allowed}
        self.last = self.game_state = None

    def _reset(self, seed: int) -> None:
        self.game.set_seed(seed)
        self.game.new_episode()
        self.game.advance_action(10)  # the first ~7 tics after a (re)start ignore input

    def _observe(self) -> tuple[np.ndarray, dict]:
        state = self.game.get_state()
        if state is not None:  # None once the episode has ended: keep the last frame and truth
            self.game_state = state
            self.last = state.screen_buffer, dict(zip(VARIABLES, np.asarray(state.game_variables, np.float64)))
        return self.last

    def input_space(self) -> dict[str, Any]:
        return dict(self.space)

    def _step(self, inputs: Mapping[str, Any]):
        w, a, d = (int(bool(inputs.get(k, 0))) if k in self.space else 0 for k in ("key_w", "key_a", "key_d"))
        dx = float(inputs.get("mouse_dx", 0.0)) if "mouse_dx" in self.space else 0.0
        buttons = [float(w), float(a), float(d), dx / self.tics]
        fire = int(bool(inputs.get("attack", 0))) if "attack" in self.space else 0
        reward = float(self.game.make_action(buttons + [float(fire)] * self.attack, self.tics))
        self.t += 1
        dead = bool(self.game.is_player_dead())
        truncated = bool(self.game.is_episode_timeout_reached())
        terminated = bool(self.game.is_episode_finished()) and not truncated
        sent = {"steer": steer_code(dx), "key_w": w, "key_a": a, "key_d": d, "mouse_dx": np.float32(dx),
                **({"attack": fire} if self.attack else {})}
        info = {"inputs": sent, "outcomes": {"reward": reward, "death": int(dead)}}
        return self.observation(), reward, terminated, truncated, info

    def close(self) -> None:
        self.game.close()


def script(game_cfg: Mapping, rng: np.random.Generator, n: int) -> tuple[int, dict[str, np.ndarray]]:
    """The reset seed, then ``n`` steps of mouse turns (degrees/step), W held and A/D strafes."""
    style = PlayerStyle.from_dict(game_cfg.get("style"))
    seed = env_seed(rng)
    dx = turn_channel(rng, n, style)
    w = held_channel(rng, n, style.forward_fraction, style.forward_hold, style.hold_cv)
    strafe = signed_channel(rng, n, style.strafe_fraction, style.strafe_hold, style.hold_cv)
    return seed, {"mouse_dx": dx, "key_w": w, "key_a": strafe < 0, "key_d": strafe > 0}


def record(game_cfg: Mapping, n_episodes: int, frames_per_episode: int, frame_size, seed: int):
    """Episodes of ``frames_per_episode`` steps (``tics`` game tics each; 35 tics = 1 s) of the game's player."""
    runner = partial(Runner, seed=seed)
    return episodes(runner, script, game_cfg, n_episodes, frames_per_episode, frame_size, seed)
