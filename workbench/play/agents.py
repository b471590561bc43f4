"""The agent protocol and the agents that need no model: a seeded random player and the scripted one.

An agent plays episodes through an :class:`~workbench.data.runners.EnvRunner`::

    reset_seed = agent.begin(runner, rng, max_steps)   # once per episode
    inputs = agent.act(observation, history)           # once per step

``begin`` gets the episode's own random stream (``recorders.episode_rng(seed, game, episode)``)
and returns the emulator seed it drew from it with ``runners.env_seed`` — the agent chooses when,
so the scripted player keeps the recorders' draw order and replays a recording exactly. ``act``
sees the :class:`~workbench.data.runners.Observation` (preprocessed frame, step, engine state) and
the episode's history (a list of :class:`~workbench.data.runners.Transition`: earlier observations,
the inputs actually sent, rewards) and returns input labels of the catalog's ``input`` role
(``runner.input_space()`` lists them). ``id`` names the agent's stores; ``card`` says what defines
it (a trained policy or a world-model planner puts its model-library card id there). An agent
that cannot play some games says why in ``unavailable(game_cfg)`` (:func:`unavailable`).
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from ..core.errors import ConfigError
from ..data.reactive import make_player
from ..data.recorders import get_engine, planned
from ..data.runners import env_seed
from ..data.runners import EnvRunner, Observation, Transition


class Agent(Protocol):
    """What ``workbench play`` needs of an agent (see the module docstring)."""

    id: str
    card: dict

    def begin(self, runner: EnvRunner, rng: np.random.Generator, max_steps: int) -> int: ...

    def act(self, observation: Observation, history: Sequence[Transition]) -> Mapping[str, Any]: ...


class RandomAgent:
    """Uniformly random inputs every step: one of the codes of each discrete input (for ALE, one
    action of the game's minimal set), a uniform value in the range of each analogue one."""

    id = "random"

    def __init__(self):
        self.card = {"agent": self.id}
        self.rng = np.random.default_rng(0)
        self.space: dict = {}

    def begin(self, runner: EnvRunner, rng: np.random.Generator, max_steps: int) -> int:
        self.rng, self.space = rng, runner.input_space()
        return env_seed(rng)

    def act(self, observation: Observation, history: Sequence[Transition]) -> dict[str, Any]:
        return {name: self.rng.uniform(*choices) if isinstance(choices, tuple) else self.rng.choice(choices)
                for name, choices in self.space.items()}


class ScriptedAgent:
    """The recorders' seeded open-loop player (``workbench.data.player``): inputs drawn before the
    episode with human-like holds, blind to the screen — the negative control of reactive players."""

    id = "scripted"

    def __init__(self):
        self.card = {"agent": self.id}
        self._act = None

    def begin(self, runner: EnvRunner, rng: np.random.Generator, max_steps: int) -> int:
        self.card = {"agent": self.id, "style": dict(runner.game_cfg.get("style") or {})}
        seed, plan = get_engine(runner.game_cfg["engine"]).script(runner.game_cfg, rng, max_steps)
        self._act = planned(plan)
        return seed

    def act(self, observation: Observation, history: Sequence[Transition]) -> Mapping[str, Any]:
        return self._act(observation, history)


class ReactiveAgent:
    """The game's reactive player (``workbench.data.reactive``: its catalog ``player``, else the one
    for its ROM or engine): decides from the engine's truth each step, with human-like reflexes."""

    id = "reactive"

    def __init__(self):
        self.card = {"agent": self.id}
        self._player = None

    def begin(self, runner: EnvRunner, rng: np.random.Generator, max_steps: int) -> int:
        self._player = make_player(runner.game_cfg)
        self.card = dict(self._player.card)
        return self._player.begin(runner, rng, max_steps)

    def act(self, observation: Observation, history: Sequence[Transition]) -> Mapping[str, Any]:
        return self._player.act(observation, history)

    @staticmethod
    def unavailable(game_cfg: Mapping) -> str | None:
        """Why the game has no reactive player (e.g. the ViZDoom hunter needs ATTACK), else None."""
        try:
            make_player(game_cfg)
        except ConfigError as exc:
            return str(exc)
        return None


def unavailable(agent: Agent, game_cfg: Mapping) -> str | None:
    """Why ``agent`` cannot play the catalog game ``game_cfg`` (its ``unavailable`` method), else None."""
    check = getattr(agent, "unavailable", None)
    return check(game_cfg) if check is not None else None


AGENTS = {"random": RandomAgent, "scripted": ScriptedAgent, "reactive": ReactiveAgent}


def make_agent(name: str) -> Agent:
    """An agent by name: one of ``AGENTS``, or ``mpc:<planner id>`` (:class:`workbench.play.mpc.MPCAgent`)."""
    kind, _, model = name.partition(":")
    if kind == "mpc":
        if not model:
            raise ConfigError("agent 'mpc' is unavailable without models: name its planner from the model library,"
                             " mpc:<controller id> (or an action-conditioned world model id); `workbench models` lists them")
        from .mpc import MPCAgent

        return MPCAgent(model)
    if name not in AGENTS:
        raise ConfigError(f"unknown agent {name!r}; known agents: {', '.join(AGENTS)}, mpc:<planner id>")
    return AGENTS[name]()
