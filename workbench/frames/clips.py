"""Short clips of consecutive frames for world models, streamed from the zarr stores, and the
real-action spaces controllers and action-conditioned models read.

A clip is ``length`` consecutive frames of one episode that lie inside one split block, so its
split is the block's (the same leakage-free 64-frame block split as the IDMs:
:func:`workbench.frames.pairs.assign_split` through :func:`build_pair_index`) and no clip
straddles train and test. :class:`ClipReader` reads clips through the IDM stack's
:class:`~workbench.frames.stream.FrameReader` chunk caches (one zarr chunk read and resized
once, an LRU of chunks kept), and clip batches are drawn with its
:class:`~workbench.frames.stream.PairSampler` (chunk-first, so reads stay local).

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

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np
import xarray as xr

from ..core.errors import ConfigError, DataError
from ..data.schema import is_input
from ..flow.compute import successor_mask
from .pairs import Source, build_pair_index, default_heads
from .stream import FrameReader

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


@dataclass
class ClipIndex:
    """Clips of ``length`` frames, as parallel arrays: ``source`` (int16, into ``sources``),
    ``start`` (int64, first frame in that store), ``game`` (int16, into ``games``), ``split``
    (int8, 0/1/2 = train/val/test). ``actions``, when set, holds per source the raw step actions
    ``(n_frames, A)`` of one action space (:func:`step_actions`)."""

    sources: list[Source]
    games: list[str]
    length: int
    source: np.ndarray
    start: np.ndarray
    game: np.ndarray
    split: np.ndarray
    actions: list[np.ndarray] | None = None
    action_columns: list[str] | None = None

    def __len__(self) -> int:
        return len(self.start)

    def subset(self, mask: np.ndarray) -> "ClipIndex":
        return replace(self, source=self.source[mask], start=self.start[mask], game=self.game[mask],
                       split=self.split[mask])

    def game_names(self) -> np.ndarray:
        return np.asarray(self.games)[self.game]

    def with_actions(self, space: str) -> "ClipIndex":
        """This index with the step actions of ``space`` attached (read from the label arrays)."""
        per_source, columns = [], None
        for src in self.sources:
            actions, cols = step_actions(src.open().drop_vars("frames"), space)
            if columns is not None and cols != columns:
                raise DataError(f"action space {space!r}: {src.dataset_id} has columns {cols}, another dataset"
                                f" {columns}")
            per_source.append(actions)
            columns = cols
        return replace(self, actions=per_source, action_columns=columns)

    def clip_actions(self, positions: np.ndarray) -> np.ndarray:
        """Raw actions ``(B, length-1, A)`` of the clips at ``positions`` (NaN where undefined)."""
        if self.actions is None:
            raise ValueError("this clip index has no actions; use with_actions(space)")
        steps = self.start[positions, None] + np.arange(self.length - 1)
        return np.stack([self.actions[s][f] for s, f in zip(self.source[positions], steps)])

    def clip_poses(self, positions: np.ndarray) -> np.ndarray:
        """Recorded poses ``(B, length, 3)`` — ``pos_x``, ``pos_y`` (map units), ``angle``
        (degrees) — of every frame of the clips at ``positions`` (first_person recordings)."""
        out = np.empty((len(positions), self.length, 3), np.float64)
        for s in np.unique(self.source[positions]):
            ds = self.sources[int(s)].open()
            missing = [v for v in ("pos_x", "pos_y", "angle") if v not in ds]
            if missing:
                raise DataError(f"{self.sources[int(s)].dataset_id} records no player pose ({missing} missing)")
            poses = np.stack([np.asarray(ds[v].values, np.float64) for v in ("pos_x", "pos_y", "angle")], axis=1)
            rows = np.flatnonzero(self.source[positions] == s)
            out[rows] = poses[self.start[positions[rows], None] + np.arange(self.length)]
        return out

    def action_mask(self) -> np.ndarray:
        """bool ``(n,)``: clips whose every step has a finite action."""
        return np.isfinite(self.clip_actions(np.arange(len(self)))).all(axis=(1, 2))


def build_clip_index(sources: Sequence[Source], length: int, games: Sequence[str] | None = None, block: int = 64,
                     fractions: Sequence[float] = (0.7, 0.1, 0.2), split_seed: int = 0) -> ClipIndex:
    """Every clip of ``length`` frames of ``sources`` that stays in one episode and one split block."""
    if length < 2:
        raise ConfigError(f"a clip needs at least 2 frames, got length={length}")
    pairs = build_pair_index(sources, default_heads(sources), None, games, block, fractions, split_seed,
                             labeled_only=False)
    src, frame = pairs.source.astype(np.int64), pairs.frame
    breaks = np.ones(len(frame), bool)
    breaks[1:] = (src[1:] != src[:-1]) | (frame[1:] != frame[:-1] + 1)
    run = np.cumsum(breaks) - 1
    run_start = np.flatnonzero(breaks)
    run_len = np.diff(np.append(run_start, len(frame)))
    remaining = run_len[run] - (np.arange(len(frame)) - run_start[run])  # pairs from here to the run's end
    keep = (remaining >= length - 1) & (frame // block == (frame + length - 1) // block)
    return ClipIndex(sources=pairs.sources, games=pairs.games, length=int(length), source=pairs.source[keep],
                     start=frame[keep], game=pairs.game[keep], split=pairs.split[keep])


class ClipReader:
    """uint8 clips ``(B, length, S, S, 3)`` at the model's input size, through a
    :class:`FrameReader`'s chunk caches."""

    def __init__(self, sources: Sequence[Source], size: int, capacity: int = 256):
        self.reader = FrameReader(sources, size, capacity)
        self.size = int(size)

    def clips(self, source: np.ndarray, start: np.ndarray, length: int) -> np.ndarray:
        source = np.asarray(source, np.int64)
        frame = np.asarray(start, np.int64)[:, None] + np.arange(length)
        out = np.empty((*frame.shape, self.size, self.size, 3), np.uint8)
        chunk_len = np.array([c.chunk for c in self.reader.caches], np.int64)[source][:, None]
        chunk = frame // chunk_len
        key = source[:, None] * (1 << 40) + chunk
        for k in np.unique(key):
            rows, cols = np.nonzero(key == k)
            block = self.reader.caches[int(source[rows[0]])].get(int(chunk[rows[0], cols[0]]))
            out[rows, cols] = block[frame[rows, cols] - chunk[rows, cols] * chunk_len[rows, 0]]
        return out

    def batch(self, index: ClipIndex, positions: np.ndarray) -> np.ndarray:
        """The clips of ``index`` at ``positions``."""
        return self.clips(index.source[positions], index.start[positions], index.length)
