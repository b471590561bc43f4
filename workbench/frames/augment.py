"""Horizontal-flip augmentation with label swapping (seed 000 §3, joint IDM v3).

Mirroring both frames of a pair mirrors the motion between them, so a LEFT transition becomes a
RIGHT one. Labels follow: in a categorical head every class whose name contains ``LEFT`` is
exchanged with the class named the same with ``RIGHT`` (LEFT ↔ RIGHT, and for the ALE action set
UPLEFT ↔ UPRIGHT, LEFTFIRE ↔ RIGHTFIRE …); paired binary keys (``key_a`` ↔ ``key_d``) swap
values. Heads without a mirror image (forward, fire, accelerate) are unchanged. Frames may be
numpy arrays or torch tensors (mirrored where they are, on the accelerator for a device batch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import cv2
import numpy as np
import torch

from ..core.errors import ConfigError


@dataclass(frozen=True)
class FlipPlan:
    """How labels change under a flip: a class permutation per categorical head, key pairs to swap."""

    permutations: dict[str, np.ndarray]
    swaps: tuple[tuple[str, str], ...]


def mirror_permutation(classes: Sequence[str]) -> np.ndarray | None:
    """int64 permutation ``p`` with ``p[code]`` = the mirrored class's code; None if nothing mirrors."""
    names = [str(c) for c in classes]
    lookup = {n: i for i, n in enumerate(names)}
    perm = np.arange(len(names))
    for i, n in enumerate(names):
        if "LEFT" in n and n.replace("LEFT", "RIGHT") in lookup:
            j = lookup[n.replace("LEFT", "RIGHT")]
            perm[i], perm[j] = j, i
    return None if (perm == np.arange(len(names))).all() else perm


def flip_plan(heads: Mapping[str, Sequence[str]], kinds: Mapping[str, str],
              swap_pairs: Sequence[Sequence[str]] = (("key_a", "key_d"),)) -> FlipPlan:
    """The plan for ``heads`` (name -> classes) of ``kinds`` (name -> categorical/binary).

    A swap pair with only one side among the heads is an error: its flipped label would be the
    other key's, which the model is not given.
    """
    perms = {}
    for name, classes in heads.items():
        perm = mirror_permutation(classes) if kinds[name] == "categorical" else None
        if perm is not None:
            perms[name] = perm
    swaps = []
    for pair in swap_pairs:
        a, b = pair
        present = [k for k in (a, b) if k in heads]
        if len(present) == 1:
            raise ConfigError(f"hflip swaps {a} and {b}, but only {present[0]} is a head; add both or neither")
        if len(present) == 2:
            swaps.append((a, b))
    return FlipPlan(perms, tuple(swaps))


def hflip(first: np.ndarray | torch.Tensor, second: np.ndarray | torch.Tensor, y: Mapping[str, np.ndarray],
          flip: np.ndarray, plan: FlipPlan) -> tuple:
    """Mirror the pairs where ``flip`` (bool ``(B,)``) is set.

    ``first``/``second`` are ``(B, y, x, 3)`` frames (numpy or torch), ``y`` the per-head targets
    ``(B,)`` (-1 = missing, left as is). Returns new arrays; the inputs are not modified.
    """
    flip = np.asarray(flip, bool)
    if isinstance(first, torch.Tensor) and first.device.type != "cpu":
        mask = torch.from_numpy(flip).to(first.device, non_blocking=True)[:, None, None, None]
        first, second = (torch.where(mask, x.flip(2), x) for x in (first, second))
    elif isinstance(first, torch.Tensor):
        first, second = (torch.from_numpy(_mirror(x.numpy(), flip)) for x in (first, second))
    else:
        first, second = _mirror(first, flip), _mirror(second, flip)
    out = {k: np.array(v, copy=True) for k, v in y.items()}
    for name, perm in plan.permutations.items():
        sel = flip & (out[name] >= 0)
        out[name][sel] = perm[out[name][sel]]
    for a, b in plan.swaps:
        out[a][flip], out[b][flip] = y[b][flip], y[a][flip]
    return first, second, out


def _mirror(frames: np.ndarray, flip: np.ndarray) -> np.ndarray:
    """A copy of uint8 ``(B, y, x, 3)`` frames with the rows ``flip`` selects mirrored left-right
    (OpenCV's flip per frame: several times faster than numpy's strided copy)."""
    out = np.array(frames, copy=True, order="C")
    for i in np.flatnonzero(flip):
        cv2.flip(np.ascontiguousarray(frames[i]), 1, dst=out[i])
    return out
