"""CS:GO deathmatch recordings (Pearce & Zhu, "Counter-Strike Deathmatch with Large-Scale
Behavioural Cloning"): HDF5 files of screenshots and the player's inputs at 16 Hz.

Each file holds 1000 frames as flat keys (other keys, e.g. ``frame_{i}_xaux``, are ignored)::

    frame_{i}_x   uint8 (150, 280, 3)  screenshot, **BGR**
    frame_{i}_y   float (51,)          11 keys w,a,s,d,space,ctrl,shift,1,2,3,r (multi-hot)
                                       + left, right click
                                       + mouse x one-hot over the 23 MOUSE_X_BINS
                                       + mouse y one-hot over the 15 MOUSE_Y_BINS

The mouse bins are the dataset's discretised per-frame mouse movement (its config's
``mouse_x_possibles`` / ``mouse_y_possibles``); ``mouse_dx``/``mouse_dy`` store the bin value
and ``steer`` its horizontal sign. Each file is one episode.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import cv2
import h5py
import numpy as np

from ...core.errors import DataError
from ..episode import Episode
from ..schema import STEER_CLASSES, LabelSchema, LabelSpec, steer_from_sign
from ._files import data_files

FRAME_RATE = 16.0
KEYS = ("w", "a", "s", "d", "space", "ctrl", "shift", "1", "2", "3", "r")
CLICKS = ("left", "right")
MOUSE_X_BINS = np.array([-1000, -500, -300, -200, -100, -60, -30, -20, -10, -4, -2, 0,
                         2, 4, 10, 20, 30, 60, 100, 200, 300, 500, 1000], np.float32)  # fmt: skip
MOUSE_Y_BINS = np.array([-200, -100, -50, -20, -10, -4, -2, 0, 2, 4, 10, 20, 50, 100, 200], np.float32)
_MX = len(KEYS) + len(CLICKS)  # where the mouse-x block starts in the 51-vector
_MY = _MX + len(MOUSE_X_BINS)
VECTOR_LEN = _MY + len(MOUSE_Y_BINS)

SCHEMA = LabelSchema.from_list([
    *(LabelSpec(f"key_{k}", "binary", description=f"key {k} held") for k in KEYS),
    *(LabelSpec(f"click_{c}", "binary", description=f"{c} mouse button held") for c in CLICKS),
    LabelSpec("mouse_dx", "continuous", description="horizontal mouse movement bin, positive = right",
              units="mouse counts"),
    LabelSpec("mouse_dy", "continuous", description="vertical mouse movement bin", units="mouse counts"),
    LabelSpec("steer", "categorical", STEER_CLASSES, "sign of the horizontal mouse movement"),
])  # fmt: skip

_FRAME_KEY = re.compile(r"^frame_(\d+)_x$")


def label_schema(path: str | Path, **params) -> LabelSchema:
    """The labels ``read`` produces (fixed for this format)."""
    return SCHEMA


def read(path: str | Path, game: str = "csgo", dead_zone: float = 0.0) -> Iterator[Episode]:
    """Yield one episode per .hdf5 file (``path`` = a file or a folder of them).

    ``dead_zone`` (mouse counts) is the horizontal movement below which ``steer`` is NEUTRAL.
    A frame without its ``frame_{i}_y``, an action vector that is not 51 long or a mouse
    block that is not one-hot raises ``ValueError`` naming the file and the frame index.
    """
    for episode, h5_path in enumerate(data_files(path, (".hdf5", ".h5"))):
        frames, y = _read_file(h5_path)
        held = y[:, :_MX].astype(np.int8)
        labels = {f"key_{k}": held[:, i] for i, k in enumerate(KEYS)}
        labels.update({f"click_{c}": held[:, len(KEYS) + i] for i, c in enumerate(CLICKS)})
        labels["mouse_dx"] = MOUSE_X_BINS[y[:, _MX:_MY].argmax(1)]
        labels["mouse_dy"] = MOUSE_Y_BINS[y[:, _MY:].argmax(1)]
        labels["steer"] = steer_from_sign(labels["mouse_dx"], dead_zone)
        yield Episode(game, episode, frames, labels, source=str(h5_path))


def _read_file(h5_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Frames as RGB uint8 ``(n, 150, 280, 3)`` and validated action vectors ``(n, 51)``."""
    try:
        f = h5py.File(h5_path, "r")
    except OSError as exc:
        raise DataError(f"{h5_path}: cannot open as HDF5 (corrupt or truncated?): {exc}") from None
    with f:
        index = sorted(int(m.group(1)) for m in map(_FRAME_KEY.match, f.keys()) if m)
        if not index:
            raise DataError(f"{h5_path}: no frame_{{i}}_x datasets; not a CS:GO deathmatch file")
        frames, ys = [], []
        for i in index:
            if f"frame_{i}_y" not in f:
                raise DataError(f"{h5_path}: frame {i}: frame_{i}_x has no frame_{i}_y (action vector)")
            x, y = f[f"frame_{i}_x"][()], np.asarray(f[f"frame_{i}_y"][()], np.float32).ravel()
            if x.dtype != np.uint8 or x.ndim != 3 or x.shape[2] != 3:
                raise DataError(f"{h5_path}: frame {i}: expected a uint8 (h, w, 3) image, not {x.dtype} {x.shape}")
            if y.shape != (VECTOR_LEN,):
                raise DataError(f"{h5_path}: frame {i}: action vector has {y.size} values; expected {VECTOR_LEN}")
            for name, block in (("mouse x", y[_MX:_MY]), ("mouse y", y[_MY:])):
                if not (np.isin(block, (0, 1)).all() and block.sum() == 1):
                    raise DataError(f"{h5_path}: frame {i}: the {name} block is not one-hot: {block.tolist()}")
            if not np.isin(y[:_MX], (0, 1)).all():
                raise DataError(f"{h5_path}: frame {i}: key/click values must be 0 or 1: {y[:_MX].tolist()}")
            frames.append(cv2.cvtColor(x, cv2.COLOR_BGR2RGB))
            ys.append(y)
    return np.stack(frames), np.stack(ys)
