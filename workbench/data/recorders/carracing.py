"""CarRacing recorder (gymnasium Box2D): analogue steering, gas and brake from a scripted driver.

Steering is held for human-like durations (``PlayerStyle.turn_*``) and discretised to
LEFT/NEUTRAL/RIGHT by its sign; the analogue value is kept as ``steer_value``. The first
``zoom_steps`` steps of every episode are the game's zoom-in animation and are not recorded.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Mapping

import numpy as np

from ..player import PlayerStyle, held_channel, turn_channel
from ..runners import EPISODE_END, EnvRunner, ReplayClone, steer_code
from ..schema import STEER_CLASSES, LabelSchema
from ..runners import env_seed
from . import episodes

SCHEMA = LabelSchema.from_list([
    {"name": "steer", "kind": "categorical", "classes": list(STEER_CLASSES),
     "description": "steering direction (sign of the steering input)"},
    {"name": "accel", "kind": "binary", "description": "gas pedal pressed"},
    {"name": "brake", "kind": "binary", "description": "brake pedal pressed"},
    {"name": "steer_value", "kind": "continuous", "units": "[-1, 1]",
     "description": "analogue steering input (negative = left)"},
    {"name": "reward", "kind": "continuous", "units": "points", "role": "outcome",
     "description": "reward of the step: +1000/N per new track tile, -0.1 per frame, -100 off the playfield"},
    {"name": "off_track", "kind": "binary", "role": "outcome",
     "description": "the step left the playfield, which ends the episode (-100)"},
    EPISODE_END,
    {"name": "tiles", "kind": "continuous", "units": "tiles", "role": "state", "description": "track tiles visited so far"},
    {"name": "car_x", "kind": "continuous", "units": "Box2D units", "role": "state", "description": "car hull x"},
    {"name": "car_y", "kind": "continuous", "units": "Box2D units", "role": "state", "description": "car hull y"},
    {"name": "car_angle", "kind": "continuous", "units": "radians", "role": "state",
     "description": "car hull angle (counter-clockwise)"},
    {"name": "car_speed", "kind": "continuous", "units": "Box2D units/s", "role": "state",
     "description": "car hull speed (norm of its linear velocity)"},
])


def version() -> dict[str, str]:
    from importlib import metadata

    return {"gymnasium": metadata.version("gymnasium"), "box2d": metadata.version("box2d")}


class Runner(ReplayClone, EnvRunner):
    """Box2D CarRacing (``game_cfg``: ``action_repeat`` (2), ``zoom_steps`` (50), ``gas``, ``brake``).

    Inputs: ``steer_value`` in [-1, 1], ``accel`` and ``brake`` (0/1, applied as ``gas`` / ``brake``
    pedal force). ``reset`` skips the game's zoom-in animation. Box2D worlds cannot be copied, so
    clone/restore replay the inputs from the reset seed (:class:`ReplayClone`).
    """

    SCHEMA = SCHEMA
    name = "CarRacing"

    def __init__(self, game_cfg: Mapping, frame_size):
        import gymnasium as gym

        super().__init__(game_cfg, frame_size)
        self.repeat = int(game_cfg.get("action_repeat", 2))
        self.zoom_steps = int(game_cfg.get("zoom_steps", 50))
        self.gas, self.brake_force = float(game_cfg.get("gas", 0.5)), float(game_cfg.get("brake", 0.6))
        # no time limit of gymnasium's: the caller's step cap truncates episodes
        self.env = gym.make("CarRacing-v3", continuous=True, max_episode_steps=2**62)
        self.game = self.env.unwrapped
        self.screen = None

    def _reset(self, seed: int) -> None:
        self.screen, _ = self.env.reset(seed=seed)
        for _ in range(self.zoom_steps):
            self.screen, *_ = self.env.step(np.zeros(3, np.float32))

    def _observe(self) -> tuple[np.ndarray, dict]:
        hull = self.game.car.hull
        state = {"tiles": float(self.game.tile_visited_count), "car_x": float(hull.position[0]),
                 "car_y": float(hull.position[1]), "car_angle": float(hull.angle),
                 "car_speed": float(np.hypot(*hull.linearVelocity))}
        return self.screen, state

    def input_space(self) -> dict[str, Any]:
        return {"steer_value": (-1.0, 1.0), "accel": [0, 1], "brake": [0, 1]}

    def _step(self, inputs: Mapping[str, Any]):
        steer, accel, brake = float(inputs.get("steer_value", 0.0)), inputs.get("accel", 0), inputs.get("brake", 0)
        action = np.array([steer, self.gas * accel, self.brake_force * brake], np.float32)
        reward, terminated, truncated, off_track = self._advance(action)
        self.t += 1
        sent = {"steer": steer_code(np.float32(steer)), "accel": int(bool(accel)), "brake": int(bool(brake)),
                "steer_value": np.float32(steer)}
        info = {"inputs": sent, "outcomes": {"reward": reward, "off_track": int(off_track)}}
        return self.observation(), reward, terminated, truncated, info

    def _advance(self, action: np.ndarray) -> tuple[float, bool, bool, bool]:
        """Send ``action`` for ``action_repeat`` frames (fewer if the episode ends)."""
        total = 0.0
        for _ in range(self.repeat):
            self.screen, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                return total, bool(terminated), bool(truncated), bool(terminated and not info.get("lap_finished"))
        return total, False, False, False

    def close(self) -> None:
        self.env.close()


def script(game_cfg: Mapping, rng: np.random.Generator, n: int) -> tuple[int, dict[str, np.ndarray]]:
    """Held analogue steering, gas and brake (never both pedals) for ``n`` steps, then the reset seed."""
    style = PlayerStyle.from_dict({"turn_strength": (0.3, 1.0), **dict(game_cfg.get("style", {}))})
    steer = turn_channel(rng, n, style)
    accel = held_channel(rng, n, style.accel_fraction, style.accel_hold, style.hold_cv)
    brake = held_channel(rng, n, style.brake_fraction, style.brake_hold, style.hold_cv)
    accel &= ~brake  # one foot: no gas while braking
    return env_seed(rng), {"steer_value": steer, "accel": accel, "brake": brake}


#: ``record(game_cfg, n_episodes, frames_per_episode, frame_size, seed)``: the scripted (or reactive) driver's episodes.
record = partial(episodes, Runner, script)
