"""Recorders: play real emulators with a seeded scripted or reactive player and yield labelled episodes.

Each engine module defines ``SCHEMA`` (the labels it produces, with roles), ``version()``, its
:class:`~workbench.data.runners.EnvRunner` ``Runner``, the scripted player's ``script(game_cfg,
rng, n) -> (reset seed, input plan)`` and ``record(game_cfg, n_episodes, frames_per_episode,
frame_size, seed) -> Iterator[Episode]``, which plays the script (or the reactive player the game's
``player`` key names) through the runner.
``game_cfg`` is one entry of a catalog entry's ``games`` list (``game``, ``engine``, ``style``
and engine-specific keys).
"""

from __future__ import annotations

import importlib
import zlib
from types import ModuleType
from typing import Iterator, Mapping

import numpy as np

from ...core.errors import ConfigError
from ..episode import Episode
from ..reactive import make_player
from ..runners import rollout

ENGINES = {
    "ale": "Atari 2600 games through ale-py (ROMs ship in the wheel)",
    "carracing": "gymnasium's Box2D CarRacing",
    "vizdoom": "ViZDoom with the Freedoom WADs it ships",
}


def get_engine(name: str) -> ModuleType:
    if name not in ENGINES:
        raise ConfigError(f"unknown recorder engine {name!r}; known engines: {', '.join(ENGINES)}")
    return importlib.import_module(f"{__name__}.{name}")


def episode_rng(seed: int, game: str, episode: int) -> np.random.Generator:
    """Independent, reproducible random stream per (seed, game, episode)."""
    return np.random.default_rng([int(seed), zlib.crc32(game.encode()), int(episode)])


def episodes(runner_cls, script, game_cfg: Mapping, n_episodes: int, frames_per_episode: int,
             frame_size, seed: int) -> Iterator[Episode]:
    """Episodes of the game's player, played through ``runner_cls``.

    Without a ``player`` key the seeded open-loop player: ``script(game_cfg, rng, n) -> (reset seed,
    inputs)`` draws each episode's input plan (arrays of ``n`` per input label). With ``player``, the
    reactive player of that name (:mod:`workbench.data.reactive`), which decides from each frame's
    engine truth and records its decision variables.
    """
    with runner_cls(game_cfg, frame_size) as runner:
        for ep in range(n_episodes):
            rng = episode_rng(seed, game_cfg["game"], ep)
            if game_cfg.get("player") is None:
                reset_seed, plan = script(game_cfg, rng, frames_per_episode)
                act = planned(plan)
            else:
                player = make_player(game_cfg)
                reset_seed, act = player.begin(runner, rng, frames_per_episode), player.act
            yield rollout(runner, act, reset_seed, frames_per_episode, ep)


def planned(plan: Mapping[str, np.ndarray]):
    """``act`` that sends step ``t`` of a drawn input plan, whatever it sees."""
    return lambda obs, history: {name: values[obs.step] for name, values in plan.items()}
