"""The block split: which real transitions ``t -> t+1`` of the stores exist and which of
train/val/test each belongs to — the one rule both the pair index (:mod:`.pairs`) and the clip
index (:mod:`.clips`) are built on.

The invariant (the project's most important scientific guarantee): **no training pair or clip
shares a frame with a validation or test one.** Neighbouring frames are nearly identical, so the
split is by contiguous blocks, not by frame:

* a transition exists where frame ``t+1`` continues frame ``t``'s episode
  (:func:`workbench.data.episode.successor_mask`: same game and episode, larger step), so no
  pair or clip spans an episode boundary or a step reset;
* the frame axis of each store is cut into blocks of ``block`` frames (default one zarr chunk,
  64 frames); each game's blocks are shuffled and dealt to train/val/test (70/10/20 by default,
  each split at least one block once a game has three), seeded by the split seed *and the game's
  name*, so a game gets the same split whether it is trained alone or jointly, and whatever the
  training seed;
* the purge gap: a block's last transition (whose ``t+1`` is the next block's first frame) is
  dropped (:data:`PURGED`) when the next block went to another split. A clip lies inside one
  block (:func:`workbench.frames.clips.build_clip_index`), so it never reaches the next block.

The split is computed on every transition before any filtering (games, labels), so it never
depends on the labels or on which games a model trains on.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..core.errors import ConfigError
from ..data.episode import successor_mask
from .sources import Source

SPLITS = ("train", "val", "test")
PURGED = -1  # split code of a pair dropped at a split boundary (it shares a frame with the next block)


def assign_split(game: np.ndarray, source: np.ndarray, frame: np.ndarray, block: int,
                 fractions: Sequence[float] = (0.7, 0.1, 0.2), seed: int = 0) -> np.ndarray:
    """int8 split codes (0 train, 1 val, 2 test, :data:`PURGED` -1) of pairs, by contiguous blocks per game.

    ``game`` (str), ``source`` (int), ``frame`` (int, frame ``t`` of pair ``t -> t+1``) are per
    pair. A block is ``(source, frame // block)``; each game's blocks are permuted with a
    generator seeded by ``seed`` and the game's name, and the first ``round(0.7 n)`` go to train,
    up to ``round(0.8 n)`` to val, the rest to test; a game of ≥ 3 blocks whose rounding leaves val
    or test empty (n = 3, 4, 5, 8 at 70/10/20) gives them one block each from train, so every game
    has frames to stop early on and to score. A game with one block is all train. A
    block's last pair is purged when the game's next block of the same source has another split,
    so no two pairs of different splits share a frame.
    """
    game = np.asarray(game).astype(str)
    source = np.asarray(source, np.int64)
    frame = np.asarray(frame, np.int64)
    out = np.zeros(len(game), np.int8)
    unit = source * (1 << 40) + frame // int(block)
    next_unit = source * (1 << 40) + (frame + 1) // int(block)
    edges = np.cumsum(np.asarray(fractions, np.float64))
    for g in np.unique(game):
        sel = np.flatnonzero(game == g)
        units, inverse = np.unique(unit[sel], return_inverse=True)
        n = len(units)
        bounds = np.floor(edges * n + 0.5).astype(int)
        if n >= 3:  # at least one block per split: counts (train, val, test) ≥ 1, taken from train
            counts = np.diff(bounds, prepend=0)
            counts[1:] = np.maximum(counts[1:], 1)
            counts[0] = n - counts[1:].sum()
            bounds = np.cumsum(counts)
        rng = np.random.default_rng([int(seed), zlib.crc32(g.encode())])
        position = np.empty(n, np.int64)
        position[rng.permutation(n)] = np.arange(n)
        unit_split = np.searchsorted(bounds, position, side="right").clip(0, 2).astype(np.int8)
        out[sel] = unit_split[inverse]
        # the pair t -> t+1 whose t+1 opens the next block shares that frame with the block's first pair
        crossing = next_unit[sel] != unit[sel]
        nxt = np.searchsorted(units, next_unit[sel]).clip(0, n - 1)
        other = crossing & (units[nxt] == next_unit[sel]) & (unit_split[nxt] != out[sel])
        out[sel[other]] = PURGED
    return out


@dataclass
class Transitions:
    """The kept transitions ``t -> t+1`` of ``sources``, as parallel arrays in store order:
    ``source`` (int16, into ``sources``), ``frame`` (int64, frame ``t`` in that store), ``game``
    (int16, into ``games``), ``split`` (int8, into :data:`SPLITS`; purged ones are left out)."""

    sources: list[Source]
    games: list[str]
    block: int
    source: np.ndarray
    frame: np.ndarray
    game: np.ndarray
    split: np.ndarray

    def __len__(self) -> int:
        return len(self.frame)


def split_transitions(sources: Sequence[Source], games: Sequence[str] | None = None, block: int = 64,
                      fractions: Sequence[float] = (0.7, 0.1, 0.2), seed: int = 0) -> Transitions:
    """Every real transition of ``sources`` with its block split (see the module docstring);
    ``games`` keeps those games only (the split is computed before, on all of them)."""
    parts = []
    for s, src in enumerate(sources):
        ds = src.open()
        game = ds["game"].values.astype(str)
        frame = np.flatnonzero(successor_mask(game, ds["episode"].values, ds["step"].values))
        parts.append((np.full(len(frame), s, np.int16), frame.astype(np.int64), game[frame]))
    source = np.concatenate([p[0] for p in parts])
    frame = np.concatenate([p[1] for p in parts])
    game = np.concatenate([p[2] for p in parts])
    split = assign_split(game, source, frame, block, fractions, seed)
    all_games = list(dict.fromkeys(game.tolist()))
    if games is not None:
        absent = sorted(set(games) - set(all_games))
        if absent:
            raise ConfigError(f"games {absent} are not in the datasets (they hold {all_games})")
        all_games = [g for g in all_games if g in set(games)]
    keep = np.isin(game, all_games) & (split != PURGED)
    lookup = {g: i for i, g in enumerate(all_games)}
    return Transitions(sources=list(sources), games=all_games, block=int(block), source=source[keep],
                       frame=frame[keep], game=np.array([lookup[g] for g in game[keep]], np.int16),
                       split=split[keep])
