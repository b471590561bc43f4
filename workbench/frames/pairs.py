"""The pair index: which frame pairs ``t -> t+1`` of one or more dataset stores a model sees,
their per-head targets, their game and their train/val/test split.

The pairs are the kept transitions of :func:`workbench.frames.split.split_transitions` (the
block split with its purge gap: no training pair shares a frame with a validation or test one);
a pair takes frame ``t``'s labels (the input given between the two frames). Only labels are read
here (small 1-D arrays); frames stay in the stores until a reader (:mod:`workbench.frames.stream`,
:mod:`workbench.frames.memory`) reads them.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from ..core.errors import ConfigError, DataError
from ..data.schema import is_input
from ..data.store import open_store
from .sources import Source
from .split import SPLITS, split_transitions

BINARY_CLASSES = ["0", "1"]
EXCLUDED_DEFAULT_HEADS = {"ale_action"}  # 18 classes, redundant with steer/fire/…; opt in by name


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
    pairs = split_transitions(sources, games, block, fractions, split_seed)
    head_classes: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    y = {h: np.full(len(pairs), -1, np.int64) for h in heads}
    for s, src in enumerate(sources):
        ds = src.open()
        rows = np.flatnonzero(pairs.source == s)
        for head, var in targets.items():
            if var not in ds:
                continue
            kind, classes = label_classes(ds[var])
            if head_classes.setdefault(head, classes) != classes:
                raise DataError(f"head {head!r}: {src.dataset_id} has classes {classes}, another dataset"
                                f" {head_classes[head]}")
            kinds[head] = kind
            y[head][rows] = np.asarray(ds[var].values, np.int64)[pairs.frame[rows]]
    missing = [h for h in heads if h not in head_classes]
    if missing:
        raise ConfigError(f"heads {missing} (targets {[targets[h] for h in missing]}) are in none of the datasets")
    keep = np.any([v >= 0 for v in y.values()], axis=0) if labeled_only else np.ones(len(pairs), bool)
    return PairIndex(
        sources=pairs.sources, games=pairs.games, heads={h: head_classes[h] for h in heads},
        kinds={h: kinds[h] for h in heads}, targets=targets, source=pairs.source[keep], frame=pairs.frame[keep],
        game=pairs.game[keep], split=pairs.split[keep], y={h: v[keep] for h, v in y.items()},
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
