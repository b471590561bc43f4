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
from typing import Iterator, Mapping

import numpy as np

from ...paths import cache_dir
from ..episode import Episode, resize_frames
from ..player import PlayerStyle, held_channel, signed_channel, turn_channel
from ..schema import STEER_CLASSES, LabelSchema, steer_from_sign
from . import env_seed, episode_rng

SCHEMA = LabelSchema.from_list([
    {"name": "steer", "kind": "categorical", "classes": list(STEER_CLASSES),
     "description": "mouse-x direction (camera yaw input; any non-zero input is a turn)"},
    {"name": "key_w", "kind": "binary", "description": "W: move forward"},
    {"name": "key_a", "kind": "binary", "description": "A: strafe left"},
    {"name": "key_d", "kind": "binary", "description": "D: strafe right"},
    {"name": "mouse_dx", "kind": "continuous", "units": "degrees/step", "description": "camera yaw input, positive = right"},
    {"name": "pos_x", "kind": "continuous", "units": "map units", "description": "player x before the step"},
    {"name": "pos_y", "kind": "continuous", "units": "map units", "description": "player y before the step"},
    {"name": "angle", "kind": "continuous", "units": "degrees", "description": "player yaw before the step (counter-clockwise)"},
])

WORLDS = {"freedoom1": "freedoom1.wad", "freedoom2": "freedoom2.wad"}


def version() -> dict[str, str]:
    from importlib import metadata

    return {"vizdoom": metadata.version("vizdoom")}


def _make_game(wad: str, doom_map: str, seed: int, skill: int):
    import vizdoom as vzd

    if wad not in WORLDS:
        raise ValueError(f"unknown ViZDoom world {wad!r}; known: {sorted(WORLDS)}")
    game = vzd.DoomGame()
    config = cache_dir() / "vizdoom" / "_vizdoom.ini"  # ViZDoom writes its ini; keep it out of the cwd
    config.parent.mkdir(parents=True, exist_ok=True)
    game.set_doom_config_path(str(config))
    game.set_doom_game_path(os.path.join(os.path.dirname(vzd.__file__), WORLDS[wad]))
    game.set_doom_map(doom_map)
    game.set_screen_resolution(vzd.ScreenResolution.RES_160X120)
    game.set_screen_format(vzd.ScreenFormat.RGB24)
    game.set_window_visible(False)
    game.set_sound_enabled(False)
    game.set_mode(vzd.Mode.PLAYER)
    game.set_doom_skill(skill)
    game.set_episode_timeout(10**7)
    game.set_seed(seed)
    B, V = vzd.Button, vzd.GameVariable
    game.set_available_buttons([B.MOVE_FORWARD, B.MOVE_LEFT, B.MOVE_RIGHT, B.TURN_LEFT_RIGHT_DELTA])
    game.set_available_game_variables([V.POSITION_X, V.POSITION_Y, V.ANGLE])
    game.init()
    return game


def record(game_cfg: Mapping, n_episodes: int, frames_per_episode: int, frame_size, seed: int) -> Iterator[Episode]:
    """Yield episodes of ``frames_per_episode`` steps (``tics`` game tics each; 35 tics = 1 s)."""
    name = game_cfg["game"]
    wad, doom_map = game_cfg.get("wad", "freedoom1"), game_cfg.get("map", "E1M1")
    tics = int(game_cfg.get("tics", 2))
    style = PlayerStyle.from_dict(game_cfg.get("style"))
    n = frames_per_episode
    game = _make_game(wad, doom_map, int(seed) & 0x7FFFFFFF, int(game_cfg.get("skill", 1)))
    try:
        for ep in range(n_episodes):
            rng = episode_rng(seed, name, ep)
            game.set_seed(env_seed(rng))
            game.new_episode()
            game.advance_action(10)  # the first ~7 tics after a (re)start ignore input
            dx = turn_channel(rng, n, style)  # degrees per recorded step
            w = held_channel(rng, n, style.forward_fraction, style.forward_hold, style.hold_cv)
            strafe = signed_channel(rng, n, style.strafe_fraction, style.strafe_hold, style.hold_cv)
            a, d = strafe < 0, strafe > 0
            frames, variables = [], []
            for t in range(n):
                if game.is_episode_finished():
                    break
                state = game.get_state()
                frames.append(state.screen_buffer)
                variables.append(np.asarray(state.game_variables, np.float64))
                game.make_action([float(w[t]), float(a[t]), float(d[t]), float(dx[t]) / tics], tics)
            k = len(frames)
            if k == 0:
                continue
            var = np.stack(variables)
            labels = {
                "steer": steer_from_sign(dx[:k]),
                "key_w": w[:k].astype(np.int8),
                "key_a": a[:k].astype(np.int8),
                "key_d": d[:k].astype(np.int8),
                "mouse_dx": dx[:k].astype(np.float32),
                "pos_x": var[:, 0].astype(np.float32),
                "pos_y": var[:, 1].astype(np.float32),
                "angle": var[:, 2].astype(np.float32),
            }
            yield Episode(name, ep, resize_frames(np.stack(frames), frame_size), labels,
                          source=f"ViZDoom {wad} {doom_map} episode {ep}")
    finally:
        game.close()
