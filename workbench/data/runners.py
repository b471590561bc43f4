"""One environment runner per engine, shared by the recorders and by agents playing the games.

An :class:`EnvRunner` wraps one emulator (ALE, CarRacing, ViZDoom; the engine modules in
:mod:`workbench.data.recorders` define them) behind one interface::

    obs = runner.reset(seed)                                   # Observation at step 0
    obs, reward, terminated, truncated, info = runner.step({"steer": 2, "accel": 1})
    snap = runner.clone(); ...; obs = runner.restore(snap)     # the same future again

``step`` takes the catalog's input labels (the names and codes of the label schema's ``input``
role) and ``info`` holds what it caused: ``info["inputs"]`` the input labels actually sent (the
emulator may not have every combination) and ``info["outcomes"]`` the outcome labels of the step.
Every frame, recorded or played, goes through :meth:`EnvRunner.preprocess` — the one place frames
are prepared for storage and for agents. :func:`rollout` plays one episode with any ``act``
function and returns it as an :class:`Episode` whose labels hold inputs, outcomes and state, and
the decision variables of a player that explains its inputs (:class:`Inputs`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .episode import Episode, resize_frame
from .mask import FrameMask
from .schema import EPISODE_END_CLASSES, UNLABELED, LabelSchema

#: The outcome every runner records: how the step ``t -> t+1`` ended the episode, if it did.
EPISODE_END = {"name": "episode_end", "kind": "categorical", "classes": list(EPISODE_END_CLASSES), "role": "outcome",
               "description": "running, or how the step ended the episode: the game's termination or the length cap"}


@dataclass
class Observation:
    """What a player sees at one step: the preprocessed frame and the engine's truth.

    frame: uint8 ``(height, width, 3)`` RGB, exactly as a recording stores it. step: steps taken
    since ``reset``. state: the engine's ``state`` labels at this frame (ALE ``ram`` (128,) uint8 and
    ``lives``; CarRacing ``car_x``/``car_y``/``car_angle``/``car_speed``/``tiles``; ViZDoom
    ``pos_x``/``pos_y``/``angle``/``health``/``kills``/``items``) — for players that read the truth
    from the engine rather than from pixels.
    """

    frame: np.ndarray
    step: int
    state: dict[str, Any] = field(default_factory=dict)


@dataclass
class Transition:
    """One played step of a history: the observation, the inputs sent after it and the reward."""

    observation: Observation
    inputs: dict[str, Any]
    reward: float


def steer_code(value: float) -> int:
    """LEFT/NEUTRAL/RIGHT code (0/1/2; -1 for NaN) of one signed input: ``schema.steer_from_sign`` for
    a scalar, without its array round trip (a runner pays it every step)."""
    return 0 if value < 0 else 2 if value > 0 else 1 if value == 0 else UNLABELED


def env_seed(rng: np.random.Generator) -> int:
    """A 31-bit seed for an emulator's own reset, drawn from the episode's stream."""
    return int(rng.integers(0, 2**31 - 1))


class Inputs(dict):
    """Input labels an agent sends, with ``why``: the decision variables that chose them.

    A reactive player returns these from ``act``; :func:`rollout` records ``why`` beside the
    inputs as ``state`` labels of the frame (the same keys at every step).
    """

    def __init__(self, inputs: Mapping[str, Any], why: Mapping[str, Any]):
        super().__init__(inputs)
        self.why = dict(why)


#: ``act(observation, history) -> inputs``: what an agent does at one step (see workbench.play).
ActFn = Callable[[Observation, Sequence[Transition]], Mapping[str, Any]]


class EnvRunner(ABC):
    """Base of the engine runners: frame preprocessing, context management, the shared contract.

    Subclasses set ``SCHEMA`` (every label they produce, with roles) and implement ``_reset``,
    ``_step``, ``_observe``, ``clone``, ``restore``, ``input_space`` and ``close``.
    ``game_cfg`` is one game of a catalog entry; ``frame_size`` is ``(height, width)`` of the frames.
    """

    SCHEMA: LabelSchema
    name = "runner"  # what ``Episode.source`` and errors call the emulator run

    def __init__(self, game_cfg: Mapping, frame_size: tuple[int, int] | None):
        self.game_cfg = dict(game_cfg)
        self.frame_size = tuple(frame_size) if frame_size is not None else None
        self.mask = FrameMask.from_config(self.game_cfg, f"game {self.game_cfg.get('game')}")
        self.t = 0

    def preprocess(self, raw: np.ndarray) -> np.ndarray:
        """The native screen ``(y, x, 3)`` as stored and as agents see it: the game's HUD removed
        (``crop``/``mask`` in ``game_cfg``, :mod:`workbench.data.mask`), then resized to ``frame_size``.

        The single preprocessing path of recordings and play.
        """
        return resize_frame(self.mask.apply(raw[None])[0] if self.mask else raw, self.frame_size)

    def observation(self) -> Observation:
        """The current frame and state (after ``reset``, ``step`` or ``restore``)."""
        raw, state = self._observe()
        return Observation(self.preprocess(raw), self.t, state)

    def reset(self, seed: int) -> Observation:
        """Start a new episode with the emulator seeded by ``seed``."""
        self.t = 0
        self._reset(int(seed))
        return self.observation()

    @abstractmethod
    def input_space(self) -> dict[str, list | tuple[float, float]]:
        """Per input label: the codes an agent may send (a list) or a ``(low, high)`` range."""

    def step(self, inputs: Mapping[str, Any]) -> tuple[Observation, float, bool, bool, dict]:
        """Send one step of ``inputs``: ``(observation, reward, terminated, truncated, info)``."""
        return self._step(inputs)

    @abstractmethod
    def _step(self, inputs: Mapping[str, Any]) -> tuple[Observation, float, bool, bool, dict]:
        """Advance the emulator by one step of ``inputs`` (what :meth:`step` returns)."""

    @abstractmethod
    def clone(self) -> Any:
        """A snapshot of the emulator and step count that :meth:`restore` returns to."""

    @abstractmethod
    def restore(self, snapshot: Any) -> Observation:
        """Return to a :meth:`clone` snapshot; the observation there."""

    @abstractmethod
    def _reset(self, seed: int) -> None:
        """Start the emulator's episode seeded by ``seed``."""

    @abstractmethod
    def _observe(self) -> tuple[np.ndarray, dict]:
        """The native screen ``(y, x, 3)`` uint8 and the engine's state labels now."""

    @abstractmethod
    def close(self) -> None:
        """Release the emulator."""

    def __enter__(self) -> "EnvRunner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ReplayClone:
    """Clone/restore by replay, for engines without an exact snapshot: ``clone`` keeps the reset
    seed and the inputs sent since, ``restore`` resets with that seed and sends them again. Exact
    for deterministic engines (Box2D, ViZDoom with a fixed seed); costs the episode so far.
    Mix in before :class:`EnvRunner`."""

    def reset(self, seed: int) -> Observation:
        self._replay = (int(seed), [])
        return super().reset(seed)

    def step(self, inputs: Mapping[str, Any]):
        self._replay[1].append(dict(inputs))
        return super().step(inputs)

    def clone(self) -> tuple[int, list[dict]]:
        return self._replay[0], list(self._replay[1])

    def restore(self, snapshot: tuple[int, list[dict]]) -> Observation:
        seed, inputs = snapshot
        self.reset(seed)
        for x in inputs:
            self.step(x)
        return self.observation()


def rollout(runner: EnvRunner, act: ActFn, seed: int, max_steps: int, episode: int = 0) -> Episode:
    """Play one episode of at most ``max_steps`` steps and return it with every label.

    Frame ``t`` carries the inputs sent after it, the state at it and the outcomes of the step
    ``t -> t+1``; ``episode_end`` marks the last frame ``terminated`` (the game ended it) or
    ``truncated`` (the cap, or the engine's time limit), every other frame ``running``. An
    ``act`` that returns :class:`Inputs` adds its decision variables (``why``) to the labels.
    """
    obs = runner.reset(seed)
    history: list[Transition] = []
    frames, inputs, states, outcomes, whys = [], [], [], [], []
    end = "truncated"
    for _ in range(max_steps):
        sent = act(obs, history)
        nxt, reward, terminated, truncated, info = runner.step(sent)
        frames.append(obs.frame)
        inputs.append(info["inputs"])
        states.append(obs.state)
        outcomes.append(info["outcomes"])
        whys.append(getattr(sent, "why", {}))
        history.append(Transition(obs, info["inputs"], reward))
        if terminated or truncated:
            end = "terminated" if terminated else "truncated"
            break
        obs = nxt
    k = len(frames)
    labels = {key: np.asarray([row[key] for row in rows]) for rows in (inputs, states, outcomes, whys)
              for key in rows[0]}
    labels["episode_end"] = np.array(["running"] * (k - 1) + [end])
    return Episode(runner.game_cfg["game"], episode, np.stack(frames), labels, source=f"{runner.name} episode {episode}")
