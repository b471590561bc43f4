"""Recorders: play real emulators with a seeded scripted player and yield labelled episodes.

Each engine module defines ``SCHEMA`` (the labels it produces), ``version()`` and
``record(game_cfg, n_episodes, frames_per_episode, frame_size, seed) -> Iterator[Episode]``.
``game_cfg`` is one entry of a catalog entry's ``games`` list (``game``, ``engine``, ``style``
and engine-specific keys).
"""

from __future__ import annotations

import importlib
import zlib
from types import ModuleType

import numpy as np

ENGINES = {
    "ale": "Atari 2600 games through ale-py (ROMs ship in the wheel)",
    "carracing": "gymnasium's Box2D CarRacing",
    "vizdoom": "ViZDoom with the Freedoom WADs it ships",
}


def get_engine(name: str) -> ModuleType:
    if name not in ENGINES:
        raise ValueError(f"unknown recorder engine {name!r}; known engines: {', '.join(ENGINES)}")
    return importlib.import_module(f"{__name__}.{name}")


def episode_rng(seed: int, game: str, episode: int) -> np.random.Generator:
    """Independent, reproducible random stream per (seed, game, episode)."""
    return np.random.default_rng([int(seed), zlib.crc32(game.encode()), int(episode)])


def env_seed(rng: np.random.Generator) -> int:
    """A 31-bit seed for an emulator's own reset, drawn from the episode's stream."""
    return int(rng.integers(0, 2**31 - 1))
