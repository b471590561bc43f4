"""The pair index: which frame pairs ``t -> t+1`` of one or more dataset stores a model sees,
their per-head targets, their game and their train/val/test split.

A pair exists where frame ``t+1`` continues frame ``t``'s episode; it takes frame ``t``'s labels
(the input given between the two frames). Only labels are read here (small 1-D arrays); frames
stay in the stores until :mod:`workbench.frames.stream` reads them chunk by chunk.

The split avoids leakage between neighbouring, nearly identical frames: the frame axis of each
store is cut into contiguous blocks of ``block`` frames (default one zarr chunk, 64 frames),
and each game's blocks are shuffled and dealt to train/val/test (70/10/20 by default). The
shuffle is seeded by the split seed *and the game's name*, so a game gets the same split whether
it is trained alone or jointly with others, and whatever the training seed. A purge gap keeps
pairs of different splits from sharing a frame: the last pair of a block (``t -> t+1`` with
``t+1`` the next block's first frame) is dropped (split code :data:`PURGED`) when the next block
went to another split.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import xarray as xr
import zarr

from ..core.errors import ConfigError, DataError
from ..data.schema import is_input
from ..data.store import StoreError, is_complete, open_dataset, open_store
from ..flow.compute import successor_mask

SPLITS = ("train", "val", "test")
PURGED = -1  # split code of a pair dropped at a split boundary (it shares a frame with the next block)
BINARY_CLASSES = ["0", "1"]
EXCLUDED_DEFAULT_HEADS = {"ale_action"}  # 18 classes, redundant with steer/fire/…; opt in by name


@dataclass(frozen=True)
class Source:
    """One dataset store: where it is, what it is called, and its frame/chunk counts."""

    dataset_id: str
    variant: str
    path: Path
    n_frames: int
    chunk: int  # frames per zarr chunk of ``frames``

    def open(self) -> xr.Dataset:
        """The lazy dataset, merged with its derived (flow) stores."""
        return open_dataset(self.path)


def resolve_source(ref: str | Path, size: str | None = None, seed: int | None = None) -> Source:
    """A catalog id (materialised at ``size``/``seed``) or the path of a dataset store."""
    path = Path(ref)
    if not (path.suffix == ".zarr" and path.exists()):
        from ..data.catalog import get_entry

        entry = get_entry(str(ref))
        path = entry.store_path(size, seed)
        if not is_complete(path):
            raise StoreError(f"dataset {ref!r} ({entry.variant(size, seed)}) is not materialised; run"
                             f" `workbench record {ref}` or workbench.data.catalog.materialise first")
    attrs = open_store(path).attrs
    frames = zarr.open_group(str(path), mode="r", zarr_format=2)["frames"]
    return Source(dataset_id=str(attrs.get("dataset_id", path.parent.name)), variant=str(attrs.get("variant", "store")),
                  path=path.resolve(), n_frames=int(frames.shape[0]), chunk=int(frames.chunks[0]))


def label_classes(var: xr.DataArray) -> tuple[str, list[str]]:
    """``(kind, class names)`` of a discrete label variable; binary keys are ``["0", "1"]``."""
    kind = var.attrs.get("kind")
    if not is_input(var.attrs):
        raise ConfigError(f"label {var.name!r} is an {var.attrs['role']}, not a player input; heads predict inputs only")
    if kind == "binary":
        return kind, list(BINARY_CLASSES)
    if kind == "categorical":
        return kind, [str(c) for c in var.attrs["classes"]]
    raise ConfigError(f"label {var.name!r} is {kind or 'not a label'}; heads need categorical or binary labels")


def default_heads(sources: Sequence[Source]) -> list[str]:
    """Every categorical input label with ≤ 3 classes and every binary input key of the sources'
    schemas, in schema order (``ale_action`` and outcome/state labels excluded)."""
    heads: list[str] = []
    for src in sources:
        for spec in open_store(src.path).attrs.get("label_schema", []):
            small = spec["kind"] == "categorical" and len(spec.get("classes", [])) <= 3
            if (small or spec["kind"] == "binary") and spec["name"] not in EXCLUDED_DEFAULT_HEADS and is_input(spec):
                if spec["name"] not in heads:
                    heads.append(spec["name"])
    if not heads:
        raise DataError("the datasets have no categorical or binary labels to train heads on")
    return heads


def assign_split(game: np.ndarray, source: np.ndarray, frame: np.ndarray, block: int,
                 fractions: Sequence[float] = (0.7, 0.1, 0.2), seed: int = 0) -> np.ndarray:
    """int8 split codes (0 train, 1 val, 2 test, :data:`PURGED` -1) of pairs, by contiguous blocks per game.

    ``game`` (str), ``source`` (int), ``frame`` (int, frame ``t`` of pair ``t -> t+1``) are per
    pair. A block is ``(source, frame // block)``; each game's blocks are permuted with a
    generator seeded by ``seed`` and the game's name, and the first ``round(0.7 n)`` go to train,
    up to ``round(0.8 n)`` to val, the rest to test. A game with one block is all train. A
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
class PairIndex:
    """Frame pairs of one or more stores, as parallel arrays of length ``n``.

    ``source`` (int16) indexes ``sources``; ``frame`` (int64) is frame ``t`` in that store;
    ``game`` (int16) indexes ``games``; ``split`` (int8) indexes :data:`SPLITS`; ``y[head]``
    (int64) are the targets, -1 where missing (ignored by the loss). ``heads`` maps each head to
    its class names, ``kinds`` to ``categorical``/``binary``, ``targets`` to the variable its
    targets come from.
    """

    sources: list[Source]
    games: list[str]
    heads: dict[str, list[str]]
    kinds: dict[str, str]
    targets: dict[str, str]
    source: np.ndarray
    frame: np.ndarray
    game: np.ndarray
    split: np.ndarray
    y: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame)

    def subset(self, mask: np.ndarray) -> "PairIndex":
        """The pairs where ``mask`` (bool or integer positions) selects."""
        return replace(self, source=self.source[mask], frame=self.frame[mask], game=self.game[mask],
                       split=self.split[mask], y={h: v[mask] for h, v in self.y.items()})

    def game_names(self) -> np.ndarray:
        return np.asarray(self.games)[self.game]

    def counts(self) -> dict[str, dict[str, int]]:
        """Pairs per split per game, for the model card."""
        names = self.game_names()
        return {s: {g: int(((self.split == i) & (names == g)).sum()) for g in self.games}
                for i, s in enumerate(SPLITS)}


def build_pair_index(
    sources: Sequence[Source],
    heads: Sequence[str],
    targets: Mapping[str, str] | None = None,
    games: Sequence[str] | None = None,
    block: int = 64,
    fractions: Sequence[float] = (0.7, 0.1, 0.2),
    split_seed: int = 0,
    labeled_only: bool = True,
) -> PairIndex:
    """Index the pairs of ``sources`` (see :class:`PairIndex`).

    ``targets`` maps a head to the variable it reads (e.g. ``{"steer": "flow_steer"}``; default
    the head's own label); a head a store lacks is missing (-1) there, but every head must exist
    in at least one store and have the same classes everywhere. ``games`` keeps those games
    only. ``labeled_only`` drops pairs without any target (for training; extraction keeps all).
    The split is computed on all pairs before any filtering, so it never depends on the labels;
    pairs purged at split boundaries are left out.
    """
    unknown_targets = set(targets or {}) - set(heads)
    if unknown_targets:
        raise ConfigError(f"targets for {sorted(unknown_targets)}, which are not heads {list(heads)}")
    targets = {h: (targets or {}).get(h, h) for h in heads}
    head_classes: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    parts = []
    for s, src in enumerate(sources):
        ds = src.open()
        game = ds["game"].values.astype(str)
        has_next = successor_mask(game, ds["episode"].values, ds["step"].values)
        frame = np.flatnonzero(has_next)
        y = {}
        for head, var in targets.items():
            if var not in ds:
                y[head] = np.full(len(frame), -1, np.int64)
                continue
            kind, classes = label_classes(ds[var])
            if head_classes.setdefault(head, classes) != classes:
                raise DataError(f"head {head!r}: {src.dataset_id} has classes {classes}, another dataset"
                                f" {head_classes[head]}")
            kinds[head] = kind
            y[head] = np.asarray(ds[var].values, np.int64)[frame]
        parts.append((np.full(len(frame), s, np.int16), frame.astype(np.int64), game[frame], y))
    missing = [h for h in heads if h not in head_classes]
    if missing:
        raise ConfigError(f"heads {missing} (targets {[targets[h] for h in missing]}) are in none of the datasets")

    source = np.concatenate([p[0] for p in parts])
    frame = np.concatenate([p[1] for p in parts])
    game = np.concatenate([p[2] for p in parts])
    y = {h: np.concatenate([p[3][h] for p in parts]) for h in heads}
    split = assign_split(game, source, frame, block, fractions, split_seed)
    all_games = list(dict.fromkeys(game.tolist()))
    if games is not None:
        absent = sorted(set(games) - set(all_games))
        if absent:
            raise ConfigError(f"games {absent} are not in the datasets (they hold {all_games})")
        all_games = [g for g in all_games if g in set(games)]
    keep = np.isin(game, all_games) & (split != PURGED)
    if labeled_only:
        keep &= np.any([v >= 0 for v in y.values()], axis=0)
    lookup = {g: i for i, g in enumerate(all_games)}
    return PairIndex(
        sources=list(sources), games=all_games, heads={h: head_classes[h] for h in heads},
        kinds={h: kinds[h] for h in heads}, targets=targets, source=source[keep], frame=frame[keep],
        game=np.array([lookup[g] for g in game[keep]], np.int16), split=split[keep],
        y={h: v[keep] for h, v in y.items()},
    )


def balanced_weights(index: PairIndex, head: str) -> np.ndarray:
    """Sampling weights 1 / count(class of ``head`` × game), so every labeled (class, game) cell
    is drawn equally often; pairs without a ``head`` label get 0."""
    y = index.y[head]
    n_classes = len(index.heads[head])
    cell = index.game.astype(np.int64) * n_classes + np.where(y >= 0, y, 0)
    counts = np.bincount(cell[y >= 0], minlength=len(index.games) * n_classes)
    return np.where(y >= 0, 1.0 / np.maximum(counts[cell], 1), 0.0)


def finetune_mask(index: PairIndex, game: str, head: str, k_per_class: int | None = None,
                  fraction: float | None = None, seed: int = 0) -> np.ndarray:
    """bool mask of the labeled train pairs of ``game`` a fine-tune may use.

    ``k_per_class``: up to k train pairs of each class of ``head`` (all of a class with fewer);
    ``fraction``: that share of the game's train pairs with any label. Drawn with ``seed``.
    """
    if game not in index.games:
        raise ConfigError(f"finetune game {game!r} is not among {index.games}")
    rng = np.random.default_rng([int(seed), zlib.crc32(b"finetune")])
    pool = (index.split == 0) & (index.game == index.games.index(game))
    if not pool.any():
        raise DataError(f"game {game!r} has no labeled train pairs to fine-tune on")
    mask = np.zeros(len(index), bool)
    if k_per_class is not None:
        y = index.y[head]
        for c in range(len(index.heads[head])):
            members = np.flatnonzero(pool & (y == c))
            mask[rng.choice(members, size=min(int(k_per_class), len(members)), replace=False)] = True
    else:
        members = np.flatnonzero(pool)
        mask[rng.choice(members, size=max(1, int(round(float(fraction) * len(members)))), replace=False)] = True
    return mask
