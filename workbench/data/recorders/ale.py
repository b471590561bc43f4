"""Atari 2600 recorder (ale-py): any ALE game by name, true emulator actions as labels.

The scripted player drives three held channels — horizontal (LEFT/RIGHT), vertical (UP/DOWN)
and a button — and the recorder sends the closest action the game's minimal action set has.
Labels are read back from the action actually sent, so they are exactly the emulator's input.
For racing games the catalog maps ACCEL/BRAKE onto ALE buttons (Enduro: FIRE / DOWN).
"""

from __future__ import annotations

from typing import Iterator, Mapping

import numpy as np

from ..episode import Episode, resize_frames
from ..player import PlayerStyle, held_channel, signed_channel, turn_channel
from ..schema import ALE_ACTIONS, STEER_CLASSES, VERTICAL_CLASSES, LabelSchema
from . import env_seed, episode_rng

SCHEMA = LabelSchema.from_list([
    {"name": "steer", "kind": "categorical", "classes": list(STEER_CLASSES),
     "description": "horizontal joystick direction of the emulator action"},
    {"name": "vertical", "kind": "categorical", "classes": list(VERTICAL_CLASSES),
     "description": "vertical joystick direction of the emulator action"},
    {"name": "fire", "kind": "binary", "description": "fire button pressed"},
    {"name": "accel", "kind": "binary", "description": "accelerate (racing games only)"},
    {"name": "brake", "kind": "binary", "description": "brake (racing games only)"},
    {"name": "ale_action", "kind": "categorical", "classes": list(ALE_ACTIONS),
     "description": "the true ALE action (full 18-action enum)"},
])


def version() -> dict[str, str]:
    from importlib import metadata

    return {"ale-py": metadata.version("ale-py")}


def _make_env(rom: str, frameskip: int):
    import ale_py
    import gymnasium as gym

    gym.register_envs(ale_py)
    env_id = f"ALE/{rom}-v5"
    try:
        return gym.make(env_id, frameskip=frameskip, repeat_action_probability=0.0, full_action_space=False)
    except gym.error.Error as exc:
        raise ValueError(f"unknown ALE game {rom!r} ({exc})") from None


def compose_action(meanings: list[str], horizontal: int, vertical: int, button: bool) -> str:
    """Closest available action name for the wanted joystick/button state.

    Drops the button first, then the vertical direction, keeping the horizontal (the studied
    label) whenever the game has it.
    """
    h = {-1: "LEFT", 0: "", 1: "RIGHT"}[horizontal]
    v = {-1: "UP", 0: "", 1: "DOWN"}[vertical]
    f = "FIRE" if button else ""
    for name in (v + h + f, v + h, h + f, h, v + f, v, f):
        if name and name in meanings:
            return name
    return "NOOP"


def record(game_cfg: Mapping, n_episodes: int, frames_per_episode: int, frame_size, seed: int) -> Iterator[Episode]:
    """Yield ``n_episodes`` episodes of at most ``frames_per_episode`` frames each.

    An episode ends early if the game does (lives lost); frames are resized to ``frame_size``.
    """
    game = game_cfg["game"]
    rom = game_cfg.get("rom", game)
    frameskip = int(game_cfg.get("frameskip", 4))
    style = PlayerStyle.from_dict(game_cfg.get("style"))
    buttons = {"accel": None, "brake": None, **dict(game_cfg.get("buttons", {}))}
    env = _make_env(rom, frameskip)
    meanings = list(env.unwrapped.get_action_meanings())
    index = {name: i for i, name in enumerate(meanings)}
    try:
        for ep in range(n_episodes):
            rng = episode_rng(seed, game, ep)
            n = frames_per_episode
            turn = np.sign(turn_channel(rng, n, style)).astype(int)
            if buttons["accel"] == "FIRE":  # racing: the button is the accelerator
                button = held_channel(rng, n, style.accel_fraction, style.accel_hold, style.hold_cv)
            else:
                button = held_channel(rng, n, style.fire_fraction, style.fire_hold, style.hold_cv)
            if buttons["brake"] == "DOWN":
                vertical = held_channel(rng, n, style.brake_fraction, style.brake_hold, style.hold_cv).astype(int)
            else:
                # -1 = UP, +1 = DOWN
                vertical = signed_channel(rng, n, style.vertical_fraction, style.vertical_hold, style.hold_cv)
            obs, _ = env.reset(seed=env_seed(rng))
            frames, names = [], []
            for t in range(n):
                name = compose_action(meanings, int(turn[t]), int(vertical[t]), bool(button[t]))
                frames.append(obs)
                names.append(name)
                obs, _, terminated, truncated, _ = env.step(index[name])
                if terminated or truncated:
                    break
            yield Episode(game, ep, resize_frames(np.stack(frames), frame_size), _labels(names, buttons),
                          source=f"ALE {rom} episode {ep}")
    finally:
        env.close()


def _labels(names: list[str], buttons: Mapping) -> dict[str, np.ndarray]:
    names_arr = np.array(names)
    has = np.char.find
    left, right = has(names_arr, "LEFT") >= 0, has(names_arr, "RIGHT") >= 0
    up, down = has(names_arr, "UP") >= 0, has(names_arr, "DOWN") >= 0
    fire = has(names_arr, "FIRE") >= 0
    labels = {
        "steer": np.where(left, 0, np.where(right, 2, 1)).astype(np.int8),
        "vertical": np.where(up, 0, np.where(down, 2, 1)).astype(np.int8),
        "fire": fire.astype(np.int8),
        "ale_action": np.array([ALE_ACTIONS.index(n) for n in names], np.int8),
    }
    component = {"FIRE": fire, "DOWN": down, "UP": up}
    for key in ("accel", "brake"):
        if buttons.get(key):
            labels[key] = component[buttons[key]].astype(np.int8)
    return labels
