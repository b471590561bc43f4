"""Frame-pair thumbnails: the two frames behind one IDM input (``t`` and ``t + 1``) as a PNG.

An embedding point is the pair (frame ``t``, frame ``t + 1``) of a dataset store, named by its
``source_frame`` ``t``. Hover callbacks in notebooks and the dashboard call :func:`frame_pair_png`
once per point, so it opens the store's ``frames`` array directly with zarr and reads only
frames ``t`` and ``t + 1`` — i.e. the one or two chunks that hold them, never the dataset.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import zarr
from PIL import Image

from ..core.errors import ConfigError
from .store import StoreError, is_complete

#: Pixels of background between the two frames of a pair.
GAP = 2
BACKGROUND = (255, 255, 255)


def read_frame_pair(store_path: str | Path, frame: int) -> np.ndarray:
    """Frames ``frame`` and ``frame + 1`` of a dataset store: uint8 ``(2, y, x, rgb)``.

    Raises :class:`~workbench.data.store.StoreError` for a missing or unfinished store and
    ``IndexError`` when ``frame`` has no successor in the store.
    """
    store_path = Path(store_path)
    if not is_complete(store_path):
        raise StoreError(f"{store_path} is not a complete workbench dataset store")
    frames = zarr.open_array(str(store_path / "frames"), mode="r")
    frame = int(frame)
    if not 0 <= frame < frames.shape[0] - 1:
        raise IndexError(f"frame {frame} has no successor in {store_path} ({frames.shape[0]} frames)")
    return np.asarray(frames[frame:frame + 2])


def frame_pair_png(store_path: str | Path, frame: int, size: int | None = None) -> bytes:
    """PNG bytes of frames ``frame`` (left) and ``frame + 1`` (right), side by side.

    ``size`` is the height in pixels of each frame (width scaled to keep the aspect ratio;
    ``None`` keeps the stored size), so the image is ``size`` high and ``2 * width + GAP`` wide.
    Upscaling uses nearest-neighbour (crisp game pixels), downscaling box filtering.
    """
    pair = read_frame_pair(store_path, frame)
    h, w = pair.shape[1:3]
    if size is not None and int(size) != h:
        if int(size) < 1:
            raise ConfigError(f"size must be a positive number of pixels, got {size}")
        w, h = max(1, round(w * int(size) / h)), int(size)
        resample = Image.Resampling.NEAREST if h > pair.shape[1] else Image.Resampling.BOX
        images = [Image.fromarray(f).resize((w, h), resample) for f in pair]
    else:
        images = [Image.fromarray(f) for f in pair]
    canvas = Image.new("RGB", (2 * w + GAP, h), BACKGROUND)
    canvas.paste(images[0], (0, 0))
    canvas.paste(images[1], (w + GAP, 0))
    out = io.BytesIO()
    canvas.save(out, format="PNG")
    return out.getvalue()
