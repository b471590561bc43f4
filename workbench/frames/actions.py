"""Real-action spaces: what controllers and action-conditioned world models read for each step
``t -> t+1`` of a store, and the standardisation they read it in (:class:`ActionSpace`).

Action spaces (per step ``t -> t+1``; NaN where undefined):

``inputs``  what the player pressed, from the label schema: 3-class labels with a middle
            ``NEUTRAL`` class as -1/0/+1 (``steer``, ``vertical``), binary keys as 0/1, and the
            continuous inputs of :data:`INPUT_CONTINUOUS` (``mouse_dx`` deg/step,
            ``steer_value``) that every game of the dataset has. first_person: steer, key_w,
            key_a, key_d, mouse_dx; racing: steer, accel, brake; atari: steer, vertical, fire.
``motion``  how the player moved (first_person: needs ``pos_x``, ``pos_y``, ``angle``, which are
            recorded before each step): ``forward``/``left`` = the step's displacement in the
            player's frame at ``t`` (map units), ``turn`` = the yaw change (degrees, counter-
            clockwise positive). Jumps over :data:`TELEPORT` map units (respawns) are NaN.
            These are additive in time like DROID's end-effector deltas, so the paper's Δxyz
            planning metric (sum of planned minus sum of true actions) carries over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import xarray as xr

from ..core.errors import ConfigError, DataError
from ..data.episode import successor_mask
from ..data.schema import is_input

ACTION_SPACES = ("inputs", "motion")
INPUT_CONTINUOUS = ("mouse_dx", "steer_value")
MOTION_COLUMNS = ("forward", "left", "turn")
TELEPORT = 100.0  # map units in one step: faster than any Doom player runs (≈ 20), so a respawn


def input_columns(ds: xr.Dataset) -> list[str]:
    """The labels of ``ds`` that form the ``inputs`` action space, in schema order."""
    columns = []
    for spec in ds.attrs.get("label_schema", []):
        name, kind = spec["name"], spec["kind"]
        signed = kind == "categorical" and len(spec.get("classes", [])) == 3 and spec["classes"][1] == "NEUTRAL"
        if is_input(spec) and (signed or kind == "binary" or (kind == "continuous" and name in INPUT_CONTINUOUS)):
            columns.append(name)
    return columns


def step_actions(ds: xr.Dataset, space: str) -> tuple[np.ndarray, list[str]]:
    """float32 ``(n_frames, A)`` actions of every step ``t -> t+1`` of ``ds`` in ``space`` (see the
    module docstring) and the column names; rows without a valid action are NaN."""
    if space not in ACTION_SPACES:
        raise ConfigError(f"unknown action space {space!r}; expected one of {ACTION_SPACES}")
    game = ds["game"].values.astype(str)
    has_next = successor_mask(game, ds["episode"].values, ds["step"].values)
    if space == "inputs":
        columns, out = [], []
        for name in input_columns(ds):
            v = np.asarray(ds[name].values, np.float32)
            kind = ds[name].attrs.get("kind")
            if kind == "continuous" and not all(np.isfinite(v[game == g]).any() for g in np.unique(game)):
                continue  # a game without it (racing: Enduro has no analogue steering) would lose every step
            if kind == "categorical":
                v = np.where(v >= 0, v - 1, np.nan)
            elif kind == "binary":
                v = np.where(v >= 0, v, np.nan)
            columns.append(name)
            out.append(v)
        if not columns:
            raise DataError(f"{ds.attrs.get('dataset_id', 'dataset')} has no input labels for the 'inputs'"
                             " action space")
        actions = np.stack(out, axis=1)
    else:
        missing = [v for v in ("pos_x", "pos_y", "angle") if v not in ds]
        if missing:
            raise DataError(f"the 'motion' action space needs player position and angle; {missing} missing"
                             f" in {ds.attrs.get('dataset_id', 'dataset')}")
        x, y, angle = (np.asarray(ds[v].values, np.float64) for v in ("pos_x", "pos_y", "angle"))
        dx, dy = np.diff(x, append=np.nan), np.diff(y, append=np.nan)
        yaw = np.radians(angle)
        turn = (np.diff(angle, append=np.nan) + 180.0) % 360.0 - 180.0
        actions = np.stack([dx * np.cos(yaw) + dy * np.sin(yaw), -dx * np.sin(yaw) + dy * np.cos(yaw), turn], axis=1)
        actions[np.hypot(dx, dy) > TELEPORT] = np.nan
        columns = list(MOTION_COLUMNS)
    actions = actions.astype(np.float32)
    actions[~has_next] = np.nan
    return actions, columns


@dataclass
class ActionSpace:
    """A named action space and the standardisation models read actions in:
    ``standardize(raw) = (raw - mean) / std`` per column (statistics of the training steps)."""

    name: str
    columns: list[str]
    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, name: str, columns: Sequence[str], actions: np.ndarray) -> "ActionSpace":
        """Statistics of the finite rows of ``actions (n, A)``; a constant column gets std 1."""
        rows = actions[np.isfinite(actions).all(axis=1)]
        if not len(rows):
            raise DataError(f"no valid '{name}' actions to fit the action space on")
        std = rows.std(axis=0)
        return cls(name, list(columns), rows.mean(axis=0).tolist(), np.where(std > 1e-6, std, 1.0).tolist())

    def standardize(self, raw: np.ndarray) -> np.ndarray:
        return ((np.asarray(raw, np.float32) - np.float32(self.mean)) / np.float32(self.std)).astype(np.float32)

    def raw(self, standardized: np.ndarray) -> np.ndarray:
        return (np.asarray(standardized, np.float32) * np.float32(self.std) + np.float32(self.mean)).astype(np.float32)

    def to_dict(self) -> dict:
        return {"name": self.name, "columns": list(self.columns), "mean": list(self.mean), "std": list(self.std)}
