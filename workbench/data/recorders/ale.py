"""Atari 2600 recorder (ale-py): any ALE game by name, true emulator actions as labels.

The scripted player drives three held channels — horizontal (LEFT/RIGHT), vertical (UP/DOWN)
and a button — and the recorder sends the closest action the game's minimal action set has.
Labels are read back from the action actually sent, so they are exactly the emulator's input.
For racing games the catalog maps ACCEL/BRAKE onto ALE buttons (Enduro: FIRE / DOWN).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Mapping

import numpy as np

from ...core.errors import ConfigError
from ..player import PlayerStyle, held_channel, signed_channel, turn_channel
from ..runners import EPISODE_END, EnvRunner, Observation
from ..schema import ALE_ACTIONS, STEER_CLASSES, VERTICAL_CLASSES, LabelSchema
from ..runners import env_seed
from . import episodes

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
    {"name": "reward", "kind": "continuous", "units": "points", "role": "outcome",
     "description": "score gained by the step (summed over its frameskip)"},
    EPISODE_END,
    {"name": "lives", "kind": "continuous", "units": "lives", "role": "state", "description": "lives left at the frame"},
    {"name": "ram", "kind": "bytes", "length": 128, "role": "state",
     "description": "the 2600's 128-byte RAM at the frame: the true emulator state"},
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
        raise ConfigError(f"unknown ALE game {rom!r} ({exc})") from None


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


class Runner(EnvRunner):
    """An ALE game (``game_cfg``: ``game``, optional ``rom``, ``frameskip`` (4), ``buttons``).

    Inputs: either ``ale_action`` (a code of the full 18-action enum the game's minimal set has) or
    the joystick labels ``steer`` / ``vertical`` (class codes) and ``fire`` / ``accel`` / ``brake``
    (0/1; ``buttons`` maps accel/brake onto ALE's FIRE/DOWN/UP), composed into the closest action
    the game has. Clone/restore use ALE's own state cloning (exact, with the emulator's RNG).
    """

    SCHEMA = SCHEMA

    def __init__(self, game_cfg: Mapping, frame_size):
        super().__init__(game_cfg, frame_size)
        rom = game_cfg.get("rom", game_cfg["game"])
        self.name = f"ALE {rom}"
        self.buttons = {"accel": None, "brake": None, **dict(game_cfg.get("buttons", {}))}
        self.env = _make_env(rom, int(game_cfg.get("frameskip", 4)))
        self.ale = self.env.unwrapped.ale
        self.meanings = list(self.env.unwrapped.get_action_meanings())
        self.index = {name: i for i, name in enumerate(self.meanings)}
        table = _labels(self.meanings, self.buttons)
        self.sent = {name: {k: v[i] for k, v in table.items()} for i, name in enumerate(self.meanings)}
        self.screen = None  # the emulator's screen after the last reset / step (what env.step returned)

    def _reset(self, seed: int) -> None:
        self.screen, _ = self.env.reset(seed=seed)

    def _observe(self) -> tuple[np.ndarray, dict]:
        return self.screen, {"lives": float(self.ale.lives()), "ram": self.ale.getRAM()}

    def input_space(self) -> dict[str, list]:
        return {"ale_action": [ALE_ACTIONS.index(name) for name in self.meanings]}

    def action_name(self, inputs: Mapping[str, Any]) -> str:
        """The action of the game's minimal set that ``inputs`` ask for."""
        if "ale_action" in inputs:
            name = ALE_ACTIONS[int(inputs["ale_action"])]
            if name not in self.index:
                raise ConfigError(f"{self.name} has no action {name}; it has {self.meanings}")
            return name
        h, v = int(inputs.get("steer", 1)) - 1, int(inputs.get("vertical", 1)) - 1
        button = bool(inputs.get("fire", 0))
        for key in ("accel", "brake"):
            if self.buttons[key] and inputs.get(key):
                if self.buttons[key] == "FIRE":
                    button = True
                else:
                    v = 1 if self.buttons[key] == "DOWN" else -1
        return compose_action(self.meanings, h, v, button)

    def _step(self, inputs: Mapping[str, Any]):
        name = self.action_name(inputs)
        self.screen, reward, terminated, truncated, _ = self.env.step(self.index[name])
        self.t += 1
        info = {"inputs": self.sent[name], "outcomes": {"reward": float(reward)}}
        return self.observation(), float(reward), bool(terminated), bool(truncated), info

    def clone(self):
        return self.ale.cloneState(), self.t

    def restore(self, snapshot) -> Observation:
        state, self.t = snapshot
        self.ale.restoreState(state)
        self.screen = self.ale.getScreenRGB()
        return self.observation()

    def close(self) -> None:
        self.env.close()


def script(game_cfg: Mapping, rng: np.random.Generator, n: int) -> tuple[int, dict[str, np.ndarray]]:
    """The scripted player's held horizontal, vertical and button channels for ``n`` steps, and the
    reset seed (drawn after them). For racing games the button is the accelerator and DOWN brakes."""
    style = PlayerStyle.from_dict(game_cfg.get("style"))
    buttons = {"accel": None, "brake": None, **dict(game_cfg.get("buttons", {}))}
    plan = {"steer": np.sign(turn_channel(rng, n, style)).astype(int) + 1}
    if buttons["accel"] == "FIRE":  # racing: the button is the accelerator
        plan["accel"] = held_channel(rng, n, style.accel_fraction, style.accel_hold, style.hold_cv)
    else:
        plan["fire"] = held_channel(rng, n, style.fire_fraction, style.fire_hold, style.hold_cv)
    if buttons["brake"] == "DOWN":
        plan["brake"] = held_channel(rng, n, style.brake_fraction, style.brake_hold, style.hold_cv)
    else:  # 0 = UP, 2 = DOWN
        plan["vertical"] = signed_channel(rng, n, style.vertical_fraction, style.vertical_hold, style.hold_cv) + 1
    return env_seed(rng), plan


#: ``record(game_cfg, n_episodes, frames_per_episode, frame_size, seed)``: the game's (scripted or reactive) player's
#: episodes; an episode ends early if the game does (lives lost).
record = partial(episodes, Runner, script)


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
