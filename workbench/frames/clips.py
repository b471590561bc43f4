"""Short clips of consecutive frames for world models: the clip index.

A clip is ``length`` consecutive frames of one episode that lie inside one split block, built
from the same kept transitions as the pair index (:func:`workbench.frames.split.split_transitions`:
the block split with its purge gap), so its split is the block's and no clip shares a frame with
a clip or pair of another split. The readers serve clips by ``batch(index, positions)``:
:class:`~workbench.frames.stream.FrameReader` from the stores' chunks,
:class:`~workbench.frames.memory.MemoryReader` from frames held in memory. Clip batches are drawn with
:class:`~workbench.frames.stream.PairSampler` (chunk-first, so reads stay local). Step actions
come from :mod:`workbench.frames.actions`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from ..core.errors import ConfigError, DataError
from .actions import step_actions
from .sources import Source
from .split import split_transitions


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
    pairs = split_transitions(sources, games, block, fractions, split_seed)
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
