"""Seeded, human-like scripted players: inputs held for realistic durations.

A human does not press a new key every frame: a turn is held for a while, then released,
and much of the time nothing is turned at all. Seed 000 assumes about two thirds; the catalog
sets the share per game (0.45-0.85) so that a two-thirds prior can be wrong, as it would be
for real players. Each input channel is therefore an *alternating renewal process*: a neutral
stretch, then an active stretch (a turn, a key held), then neutral again, with gamma-distributed
hold times whose means are set so the long-run neutral fraction matches ``neutral_fraction``.
Everything is drawn from one ``numpy.random.Generator`` so a seed reproduces the inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Mapping

import numpy as np

from ..core.errors import ConfigError


@dataclass(frozen=True)
class PlayerStyle:
    """Per-game style of the scripted player (all durations in recorded steps).

    neutral_fraction: long-run fraction of steps with no turn input (seed 000 assumes ~2/3; the
    built-in catalog spreads it over 0.45-0.85 per game, so the p67 rule is not the oracle).
    turn_hold: mean length of one held turn. hold_cv: coefficient of variation of hold times.
    p_right: probability that a turn goes right. turn_strength: (low, high) range of the
    per-turn magnitude for analogue inputs (CarRacing steering, ViZDoom mouse degrees/step).
    turn_profile: "flat" (held key) or "bell" (smooth ramp up and down, like a hand on a mouse).
    The ``*_fraction`` / ``*_hold`` pairs drive the secondary channels (fire, accelerate,
    brake, forward, strafe, vertical) the same way.
    """

    neutral_fraction: float = 2 / 3
    turn_hold: float = 8.0
    hold_cv: float = 0.6
    p_right: float = 0.5
    turn_strength: tuple[float, float] = (1.0, 1.0)
    turn_profile: str = "flat"
    fire_fraction: float = 0.2
    fire_hold: float = 4.0
    vertical_fraction: float = 0.2
    vertical_hold: float = 6.0
    accel_fraction: float = 0.75
    accel_hold: float = 40.0
    brake_fraction: float = 0.08
    brake_hold: float = 6.0
    forward_fraction: float = 0.6
    forward_hold: float = 30.0
    strafe_fraction: float = 0.15
    strafe_hold: float = 8.0

    @classmethod
    def from_dict(cls, d: Mapping | None) -> "PlayerStyle":
        d = known_keys(d, {f.name for f in fields(cls)}, "player style")
        if "turn_strength" in d:
            d["turn_strength"] = tuple(float(v) for v in d["turn_strength"])
        style = cls(**d)
        for f in fields(cls):
            if f.name.endswith("_fraction") and not 0.0 <= getattr(style, f.name) <= 1.0:
                raise ConfigError(f"player style {f.name} must lie in [0, 1]")
        if style.turn_profile not in ("flat", "bell"):
            raise ConfigError("turn_profile must be 'flat' or 'bell'")
        return style


def known_keys(d: Mapping | None, known: set[str], what: str) -> dict:
    """``d`` as a dict whose keys are all ``known``; an unknown key is a clear error naming ``what``."""
    d = dict(d or {})
    unknown = set(d) - set(known)
    if unknown:
        raise ConfigError(f"unknown {what} keys {sorted(unknown)}; known: {sorted(known)}")
    return d


def gamma_holds(rng: np.random.Generator, mean: float, cv: float, size: int) -> np.ndarray:
    """Integer hold times >= 1 with the given mean and coefficient of variation."""
    shape = 1.0 / max(cv, 1e-3) ** 2
    return np.maximum(1, np.round(rng.gamma(shape, mean / shape, size))).astype(np.int64)


def held_segments(
    rng: np.random.Generator, n: int, active_fraction: float, active_hold: float, cv: float
) -> list[tuple[int, int, bool]]:
    """Alternating neutral/active segments covering ``n`` steps: ``(start, stop, active)``.

    Mean neutral hold = ``active_hold * (1 - f) / f`` so the expected active fraction is ``f``.
    The first segment's phase is random so episodes do not all start neutral.
    """
    if n <= 0:
        return []
    if active_fraction <= 0:
        return [(0, n, False)]
    if active_fraction >= 1:
        return [(0, n, True)]
    neutral_hold = active_hold * (1 - active_fraction) / active_fraction
    segments, t = [], 0
    active = bool(rng.random() < active_fraction)
    while t < n:
        mean = active_hold if active else neutral_hold
        d = int(gamma_holds(rng, mean, cv, 1)[0])
        segments.append((t, min(n, t + d), active))
        t += d
        active = not active
    return segments


def held_channel(rng: np.random.Generator, n: int, active_fraction: float, active_hold: float, cv: float) -> np.ndarray:
    """Boolean ``(n,)`` array: True while a key/button is held."""
    out = np.zeros(n, bool)
    for start, stop, active in held_segments(rng, n, active_fraction, active_hold, cv):
        out[start:stop] = active
    return out


def turn_channel(rng: np.random.Generator, n: int, style: PlayerStyle) -> np.ndarray:
    """Signed turn input ``(n,)`` float: 0 when neutral, negative = left, positive = right.

    Each turn has a magnitude drawn from ``style.turn_strength``; with the "bell" profile it
    rises and falls smoothly within the hold (a sine window), with "flat" it is constant.
    """
    out = np.zeros(n, np.float64)
    lo, hi = style.turn_strength
    for start, stop, active in held_segments(rng, n, 1 - style.neutral_fraction, style.turn_hold, style.hold_cv):
        if not active:
            continue
        sign = 1.0 if rng.random() < style.p_right else -1.0
        length = stop - start
        magnitude = rng.uniform(lo, hi)
        if style.turn_profile == "bell":
            profile = np.sin(np.pi * (np.arange(length) + 0.5) / length)
        else:
            profile = np.ones(length)
        out[start:stop] = sign * magnitude * profile
    return out


def signed_channel(
    rng: np.random.Generator, n: int, active_fraction: float, active_hold: float, cv: float, p_positive: float = 0.5
) -> np.ndarray:
    """Int8 ``(n,)`` in {-1, 0, +1}: a two-way held input (strafe A/D, joystick UP/DOWN)."""
    out = np.zeros(n, np.int8)
    for start, stop, active in held_segments(rng, n, active_fraction, active_hold, cv):
        if active:
            out[start:stop] = 1 if rng.random() < p_positive else -1
    return out
