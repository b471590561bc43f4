"""Removing a game's HUD (indicator bars, scores, speedometers, minimaps) from its frames.

A HUD can show the answer: CarRacing's bottom rows draw the steering angle, so a probe reads the
label from one frame instead of the motion between two. A catalog entry (or one of its games)
names what to remove, in pixels of the *native* frame, applied before any resizing so a store
never holds the HUD::

    crop: {bottom: 12}                          # rows/columns cut from each edge
    mask: [{y0: 0, y1: 10, x0: 100, fill: 0}]   # regions filled with a constant (grey or [r, g, b])

Region bounds follow Python slicing (``y1``/``x1`` exclusive, negative counts from the end,
omitted = to the edge). Masks are applied first, then the crop. Recorders and importers both go
through :func:`prepare_frames`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..core.errors import ConfigError
from .episode import resize_frames

EDGES = ("top", "bottom", "left", "right")
REGION_KEYS = ("y0", "y1", "x0", "x1", "fill")


@dataclass(frozen=True)
class FrameMask:
    """What to remove from native frames: ``crop`` (pixels cut per edge, :data:`EDGES` order)
    and ``regions`` (``(y0, y1, x0, x1, fill)`` rectangles filled with ``fill``)."""

    crop: tuple[int, int, int, int] = (0, 0, 0, 0)
    regions: tuple[tuple, ...] = ()

    @classmethod
    def from_config(cls, cfg: Mapping, where: str) -> "FrameMask":
        """Read the ``crop``/``mask`` keys of ``cfg`` (an entry or one of its games); a
        ``ValueError`` names ``where`` and the problem."""
        crop = cfg.get("crop") or {}
        if not isinstance(crop, Mapping) or set(crop) - set(EDGES):
            raise ConfigError(f"{where}: crop must map edges {EDGES} to pixel counts, got {crop!r}")
        edges = tuple(_whole(crop.get(e, 0), f"{where}: crop.{e}") for e in EDGES)
        if min(edges) < 0:
            raise ConfigError(f"{where}: crop values must be >= 0, got {dict(crop)}")
        regions = []
        for r in cfg.get("mask") or []:
            if not isinstance(r, Mapping) or set(r) - set(REGION_KEYS):
                raise ConfigError(f"{where}: every mask region is a mapping of {REGION_KEYS}, got {r!r}")
            bounds = tuple(None if r.get(k) is None else _whole(r[k], f"{where}: mask.{k}") for k in REGION_KEYS[:4])
            fill = r.get("fill", 0)
            values = np.atleast_1d(np.asarray(fill))
            if values.dtype.kind not in "iu" or len(values) not in (1, 3) or values.min() < 0 or values.max() > 255:
                raise ConfigError(f"{where}: mask fill must be a grey level or [r, g, b] in 0..255, got {fill!r}")
            regions.append((*bounds, fill if np.ndim(fill) == 0 else [int(v) for v in fill]))
        return cls(edges, tuple(regions))

    def __bool__(self) -> bool:
        return any(self.crop) or bool(self.regions)

    def to_dict(self) -> dict:
        """The YAML/JSON form (empty when nothing is removed): provenance and variant names."""
        out: dict = {}
        if any(self.crop):
            out["crop"] = {e: v for e, v in zip(EDGES, self.crop) if v}
        if self.regions:
            out["mask"] = [{k: v for k, v in zip(REGION_KEYS, r) if v is not None} for r in self.regions]
        return out

    def apply(self, frames: np.ndarray, source: str = "frames") -> np.ndarray:
        """``(n, y, x, c)`` frames with the regions filled and the edges cut (a new array)."""
        frames = np.array(frames, copy=True)
        h, w = frames.shape[1:3]
        for y0, y1, x0, x1, fill in self.regions:
            ys, xs = range(h)[slice(y0, y1)], range(w)[slice(x0, x1)]
            if not len(ys) or not len(xs):
                raise ConfigError(f"{source}: mask region {(y0, y1, x0, x1)} is empty in a {h}x{w} frame")
            frames[:, ys.start:ys.stop, xs.start:xs.stop] = fill
        top, bottom, left, right = self.crop
        if top + bottom >= h or left + right >= w:
            raise ConfigError(f"{source}: crop {self.to_dict()['crop']} leaves nothing of a {h}x{w} frame")
        return frames[:, top:h - bottom, left:w - right]


def _whole(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{where} must be a whole number of pixels, got {value!r}")
    return int(value)


def prepare_frames(frames: np.ndarray, mask: FrameMask, size: tuple[int, int] | None, source: str = "frames") -> np.ndarray:
    """Native ``(n, y, x, 3)`` uint8 frames → HUD removed (``mask``) → resized to ``size``."""
    return resize_frames(mask.apply(frames, source) if mask else np.asarray(frames), size)


def mask_tag(masks: Mapping[str, FrameMask]) -> str:
    """Suffix for a store variant's name: ``""`` without masks, else ``-mask<8 hex>`` of their
    settings, so a store recorded under other settings is never reused."""
    spec = {game: m.to_dict() for game, m in sorted(masks.items()) if m}
    if not spec:
        return ""
    return "-mask" + hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:8]
