"""The unit recorders and importers hand to a store writer (one episode of frames + labels), and
the rule that says where a stored episode continues from one frame to the next."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..core.errors import DataError


@dataclass
class Episode:
    """One contiguous piece of gameplay.

    frames: uint8 ``(n, y, x, 3)`` RGB. labels: name -> array of length ``n`` (class names,
    codes, 0/1 or floats, as the schema's kind expects). ``step`` defaults to ``0..n-1``.
    ``source`` names the file or emulator run, so errors can point at it.
    """

    game: str
    episode: int
    frames: np.ndarray
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    step: np.ndarray | None = None
    source: str = ""

    def __post_init__(self):
        n = len(self.frames)
        if self.step is None:
            self.step = np.arange(n, dtype=np.int32)
        for name, values in self.labels.items():
            if len(values) != n:
                raise DataError(
                    f"{self.source or self.game}: {n} frames but {len(values)} values for label"
                    f" {name!r}: frames and labels must have the same length"
                )


def resize_frames(frames: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Resize ``(n, y, x, 3)`` uint8 frames to ``size = (height, width)`` with area filtering."""
    frames = np.asarray(frames)
    if size is None or tuple(frames.shape[1:3]) == tuple(size):
        return frames
    out = np.empty((len(frames), int(size[0]), int(size[1]), 3), np.uint8)
    for i, f in enumerate(frames):
        out[i] = resize_frame(f, size)
    return out


def resize_frame(frame: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """One ``(y, x, 3)`` uint8 frame resized to ``size = (height, width)`` with area filtering."""
    if size is None or frame.shape[:2] == tuple(size):
        return frame
    return cv2.resize(frame, (int(size[1]), int(size[0])), interpolation=cv2.INTER_AREA)


def successor_mask(game: np.ndarray, episode: np.ndarray, step: np.ndarray) -> np.ndarray:
    """bool ``(n,)``: True where frame ``t+1`` continues frame ``t``'s episode (same game and
    episode, larger step), i.e. where the pair ``t -> t+1`` is a real transition."""
    game, episode, step = np.asarray(game), np.asarray(episode), np.asarray(step)
    out = np.zeros(len(step), bool)
    out[:-1] = (game[1:] == game[:-1]) & (episode[1:] == episode[:-1]) & (step[1:] > step[:-1])
    return out
