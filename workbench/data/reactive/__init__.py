"""Reactive players: decide each step from what the game shows (its engine truth) and log why.

The open-loop scripted player (:mod:`workbench.data.player`) never looks at the screen; these
players do, so their inputs depend on the frames — the closed loop seeds 001 and 003 need (a
brake pressed *because* a car is ahead, not because the brake was pressed a step before). Each
player reads the truth from the engine (RAM, physics state, game variables), never from pixels,
and returns :class:`~workbench.data.runners.Inputs` whose ``why`` holds its decision variables,
recorded as ``state`` labels beside the inputs. Human-like motor behaviour comes from
:class:`Reflexes`: a reaction delay, minimum hold times of a choice, slips and analogue noise,
all drawn from the episode's seeded stream.

A player implements the agent protocol (``begin(runner, rng, max_steps) -> reset seed``,
``act(observation, history) -> inputs``); a catalog game names it with ``player: <name>``, tunes
its motor with ``reflexes: {...}`` and its settings with ``<name>: {...}``.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence

import numpy as np

from ...core.errors import ConfigError
from ..player import gamma_holds, known_keys
from ..runners import EnvRunner, Inputs, Observation, Transition, env_seed

#: player name -> (module, class, what it does)
PLAYERS = {
    "enduro": ("atari", "EnduroDriver", "Enduro: brakes and swerves for the car ahead (RAM)"),
    "paddle": ("atari", "PaddlePlayer", "Pong: moves the paddle to the ball (RAM, AtariARI)"),
    "centreline": ("carracing", "CentreLineDriver", "CarRacing: steers to the track centre line, brakes before bends"),
    "hunter": ("doom", "DoomHunter", "ViZDoom: turns to and fires at visible enemies, avoids walls, explores"),
}


@dataclass(frozen=True)
class Reflexes:
    """Human-like motor behaviour of a reactive player (durations in steps).

    delay: steps between seeing a frame and acting on it (3 Atari steps = 200 ms). hold: mean
    minimum time a new discrete choice is kept before another may replace it; hold_cv its
    coefficient of variation. slip: probability per step of a random discrete input instead of the
    chosen one. noise: standard deviation of the noise on analogue inputs in motion (a wanted 0 stays
    0: a mouse at rest), as a fraction of their range.
    """

    delay: int = 3
    hold: float = 3.0
    hold_cv: float = 0.5
    slip: float = 0.02
    noise: float = 0.05

    @classmethod
    def from_dict(cls, d: Mapping | None) -> "Reflexes":
        r = cls(**known_keys(d, {f.name for f in fields(cls)}, "reflexes"))
        if r.delay < 0 or r.hold < 1 or not 0 <= r.slip <= 1 or r.noise < 0:
            raise ConfigError(f"reflexes out of range: {r} (delay >= 0, hold >= 1, slip in [0, 1], noise >= 0)")
        return r


class ReactivePlayer(ABC):
    """Base of the reactive players: perception -> decision -> human-like motor output.

    Subclasses set ``id``, ``WHY`` (their decision variables as label specs, role ``state``),
    ``IDLE`` and ``CHOICES``, and implement :meth:`perceive` (the decision variables from the
    observation and the engine) and :meth:`decide` (the wanted inputs from them). The inputs sent at step ``t`` are those decided
    on the frame ``t - delay`` (the idle inputs before that), and their ``why`` is that frame's
    decision variables: the logged variables are the ones the inputs were chosen from.
    """

    id = "reactive"
    WHY: tuple[dict, ...] = ()
    IDLE: dict[str, Any] = {}  # the inputs before the first reaction
    CHOICES: dict[str, list] = {}  # the codes of each discrete input (what a slip draws from)
    DEFAULTS: dict[str, float] = {}  # the player's settings, which ``game_cfg[id]`` may override

    def __init__(self, game_cfg: Mapping):
        self.game_cfg = dict(game_cfg)
        self.reflexes = Reflexes.from_dict(game_cfg.get("reflexes"))
        self.p = {**self.DEFAULTS, **known_keys(game_cfg.get(self.id), set(self.DEFAULTS), f"{self.id} player")}
        self.card = {"agent": "reactive", "player": self.id, "reflexes": vars(self.reflexes)}
        self.runner: EnvRunner | None = None
        self.rng = np.random.default_rng(0)
        self.seen: deque = deque()  # (inputs decided, their variables) not yet sent: the reaction delay's queue

    def begin(self, runner: EnvRunner, rng: np.random.Generator, max_steps: int) -> int:
        self.runner, self.rng = runner, rng
        self.space = runner.input_space()
        self.seen.clear()
        self.held: dict[str, Any] = dict(self.IDLE)
        self.hold_left = 0
        self.start()
        return env_seed(rng)

    def start(self) -> None:
        """Reset per-episode memory (called by :meth:`begin`)."""

    @abstractmethod
    def perceive(self, obs: Observation) -> dict[str, Any]:
        """The decision variables at ``obs`` (numbers, and the ``decision`` class name)."""

    @abstractmethod
    def decide(self, why: Mapping[str, Any]) -> dict[str, Any]:
        """The inputs wanted given the decision variables (before the motor's holds, slips, noise)."""

    def act(self, obs: Observation, history: Sequence[Transition]) -> Inputs:
        why = self.perceive(obs)
        self.seen.append((self.decide(why), why))
        if len(self.seen) <= self.reflexes.delay:  # not reacted yet: idle, explained by nothing seen
            return Inputs(self.IDLE, {k: _blank(v) for k, v in why.items()})
        want, why = self.seen.popleft()
        return Inputs(self._motor(want), why)

    def _motor(self, want: Mapping[str, Any]) -> dict[str, Any]:
        """Hold discrete choices for a drawn minimum time, slip now and then, add analogue noise."""
        r, rng = self.reflexes, self.rng
        discrete = {k: v for k, v in want.items() if k in self.CHOICES}
        self.hold_left -= 1
        if discrete != {k: self.held.get(k) for k in discrete} and self.hold_left <= 0:
            self.held.update(discrete)
            self.hold_left = int(gamma_holds(rng, r.hold, r.hold_cv, 1)[0])
        out = {**want, **{k: self.held[k] for k in discrete}}
        if rng.random() < r.slip and discrete:
            k = list(discrete)[int(rng.integers(len(discrete)))]
            out[k] = self.CHOICES[k][int(rng.integers(len(self.CHOICES[k])))]
        for k, v in want.items():
            if k not in self.CHOICES and v != 0:  # a hand at rest adds no motion
                lo, hi = self.space[k]
                out[k] = float(np.clip(v + rng.normal(0, r.noise * (hi - lo)), lo, hi))
        return out


def _blank(value: Any) -> Any:
    """The 'not reacted yet' value of a decision variable: NaN for numbers, ``wait`` for a class name."""
    return "wait" if isinstance(value, str) else np.nan


#: the reactive player of a game that names none: by ALE ROM, else by engine
DEFAULT_PLAYERS = {"Enduro": "enduro", "Pong": "paddle", "carracing": "centreline", "vizdoom": "hunter"}


def make_player(game_cfg: Mapping) -> ReactivePlayer:
    """The reactive player a catalog game names (``player: <name>``), else its default one."""
    name = game_cfg.get("player") or DEFAULT_PLAYERS.get(game_cfg.get("rom", game_cfg.get("game")),
                                                         DEFAULT_PLAYERS.get(game_cfg.get("engine")))
    if name not in PLAYERS:
        raise ConfigError(f"game {game_cfg.get('game')!r}: no reactive player {name!r}; known: {', '.join(PLAYERS)}"
                         f" (defaults: {DEFAULT_PLAYERS})")
    module, cls, _ = PLAYERS[name]
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)(game_cfg)


def player_labels(name: str) -> list[dict]:
    """The decision-variable label specs (role ``state``) a player records."""
    module, cls, _ = PLAYERS[name]
    return [dict(spec) for spec in getattr(importlib.import_module(f"{__name__}.{module}"), cls).WHY]
