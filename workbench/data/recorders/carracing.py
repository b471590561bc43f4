"""CarRacing recorder (gymnasium Box2D): analogue steering, gas and brake from a scripted driver.

Steering is held for human-like durations (``PlayerStyle.turn_*``) and discretised to
LEFT/NEUTRAL/RIGHT by its sign; the analogue value is kept as ``steer_value``. The first
``zoom_steps`` steps of every episode are the game's zoom-in animation and are not recorded.
"""

from __future__ import annotations

from typing import Iterator, Mapping

import numpy as np

from ..episode import Episode, resize_frames
from ..player import PlayerStyle, held_channel, turn_channel
from ..schema import STEER_CLASSES, LabelSchema, steer_from_sign
from . import env_seed, episode_rng

SCHEMA = LabelSchema.from_list([
    {"name": "steer", "kind": "categorical", "classes": list(STEER_CLASSES),
     "description": "steering direction (sign of the steering input)"},
    {"name": "accel", "kind": "binary", "description": "gas pedal pressed"},
    {"name": "brake", "kind": "binary", "description": "brake pedal pressed"},
    {"name": "steer_value", "kind": "continuous", "units": "[-1, 1]",
     "description": "analogue steering input (negative = left)"},
])


def version() -> dict[str, str]:
    from importlib import metadata

    return {"gymnasium": metadata.version("gymnasium"), "box2d": metadata.version("box2d")}


def record(game_cfg: Mapping, n_episodes: int, frames_per_episode: int, frame_size, seed: int) -> Iterator[Episode]:
    """Yield CarRacing episodes; each recorded step repeats the action ``action_repeat`` times."""
    import gymnasium as gym

    game = game_cfg["game"]
    repeat = int(game_cfg.get("action_repeat", 2))
    zoom_steps = int(game_cfg.get("zoom_steps", 50))
    gas, brake_force = float(game_cfg.get("gas", 0.5)), float(game_cfg.get("brake", 0.6))
    style = PlayerStyle.from_dict({"turn_strength": (0.3, 1.0), **dict(game_cfg.get("style", {}))})
    n = frames_per_episode
    env = gym.make("CarRacing-v3", continuous=True, max_episode_steps=zoom_steps + repeat * n + 10)
    try:
        for ep in range(n_episodes):
            rng = episode_rng(seed, game, ep)
            steer = turn_channel(rng, n, style)
            accel = held_channel(rng, n, style.accel_fraction, style.accel_hold, style.hold_cv)
            brake = held_channel(rng, n, style.brake_fraction, style.brake_hold, style.hold_cv)
            accel &= ~brake  # one foot: no gas while braking
            obs, _ = env.reset(seed=env_seed(rng))
            for _ in range(zoom_steps):
                obs, *_ = env.step(np.zeros(3, np.float32))
            frames = []
            for t in range(n):
                frames.append(obs)
                action = np.array([steer[t], gas * accel[t], brake_force * brake[t]], np.float32)
                done = False
                for _ in range(repeat):
                    obs, _, terminated, truncated, _ = env.step(action)
                    if terminated or truncated:
                        done = True
                        break
                if done:
                    break
            k = len(frames)
            labels = {
                "steer": steer_from_sign(steer[:k]),
                "accel": accel[:k].astype(np.int8),
                "brake": brake[:k].astype(np.int8),
                "steer_value": steer[:k].astype(np.float32),
            }
            yield Episode(game, ep, resize_frames(np.stack(frames), frame_size), labels,
                          source=f"CarRacing episode {ep}")
    finally:
        env.close()
