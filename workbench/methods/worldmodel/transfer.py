"""Transfer filmstrips (seed 002 Figure 7): latent actions inferred on a source clip drive a
target clip, are re-inferred there and drive the source again — as uint8 frames, plus small
helpers that write a strip as PNG or a clip as GIF (Pillow).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from ...core.errors import ConfigError, DataError
from ...core.paths import atomic_write
from .evaluate import ModelRef, load_clips, partners, resolve_model, transfer_cycle

LABEL_WIDTH = 110  # pixels of the row-label column of a strip
BACKGROUND = (255, 255, 255)


def transfer_filmstrip(model: ModelRef, source: np.ndarray | None = None, target: np.ndarray | None = None,
                       split: str = "test", pairing: str = "across", clip: int = 0, seed: int = 0,
                       device: str | torch.device | None = None) -> dict[str, np.ndarray]:
    """Rows of a transfer filmstrip, each uint8 ``(L, S, S, 3)``:

    ``source`` (clip A), ``target`` (clip B), ``source_predicted`` (A driven by its own latents),
    ``transferred`` (B driven by A's latents), ``cycled`` (A driven by the latents re-inferred on
    the transferred clip). Predicted rows start with the real first frame and decode the rest.

    ``source``/``target`` are uint8 clips ``(L, S, S, 3)`` at the model's input size; when omitted
    they are the ``clip``-th evenly spread held-out clip of the model's data and its ``pairing``
    partner (see :func:`workbench.methods.worldmodel.evaluate.partners`).
    """
    net, card = resolve_model(model, device)
    if (source is None) != (target is None):
        raise ConfigError("give both source and target clips, or neither")
    if source is None:
        batch = load_clips(net, card, split, n_clips=max(64, clip + 1))
        other = partners(batch.index, batch.positions, pairing, seed)
        if other[clip] < 0:
            raise DataError(f"clip {clip} has no {pairing} partner in the {split} split")
        positions = batch.positions[[clip, other[clip]]]
        source, target = batch.reader.batch(batch.index, positions)
    s = net.encode(np.stack([source, target]))
    out = transfer_cycle(net, s[:1], s[1:])
    first = {"source_predicted": source[0], "transferred": target[0], "cycled": source[0]}
    rows = {"source": np.asarray(source), "target": np.asarray(target)}
    for name, key in (("source_predicted", "original"), ("transferred", "transferred"), ("cycled", "cycled")):
        rows[name] = np.concatenate([first[name][None], net.decode(out[key][0])])
    return rows


def filmstrip_image(rows: Mapping[str, np.ndarray] | Sequence[np.ndarray], scale: int = 2, gap: int = 2) -> Image.Image:
    """One image: each row a sequence of uint8 frames ``(L, S, S, 3)`` left to right, scaled by
    ``scale`` (nearest neighbour), labelled on the left when ``rows`` is a mapping."""
    named = rows if isinstance(rows, Mapping) else {str(i): r for i, r in enumerate(rows)}
    arrays = [np.asarray(r, np.uint8) for r in named.values()]
    h, w = arrays[0].shape[1] * scale, arrays[0].shape[2] * scale
    left = LABEL_WIDTH if isinstance(rows, Mapping) else 0
    n_cols = max(len(a) for a in arrays)
    canvas = Image.new("RGB", (left + n_cols * (w + gap), len(arrays) * (h + gap)), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for r, (name, frames) in enumerate(zip(named, arrays)):
        if left:
            draw.text((2, r * (h + gap) + h // 2 - 5), name, fill=(0, 0, 0))
        for c, frame in enumerate(frames):
            image = Image.fromarray(frame).resize((w, h), Image.Resampling.NEAREST)
            canvas.paste(image, (left + c * (w + gap), r * (h + gap)))
    return canvas


def save_filmstrip(rows: Mapping[str, np.ndarray] | Sequence[np.ndarray], path: str | Path, scale: int = 2) -> Path:
    """Write :func:`filmstrip_image` as PNG (atomically)."""
    image = filmstrip_image(rows, scale)
    return atomic_write(path, lambda tmp: image.save(tmp, format="PNG"))


def save_gif(frames: np.ndarray | Sequence[np.ndarray], path: str | Path, fps: float = 4.0, scale: int = 2) -> Path:
    """Write uint8 frames ``(L, S, S, 3)`` — or several clips side by side — as a looping GIF."""
    clips = [frames] if isinstance(frames, np.ndarray) else list(frames)
    clips = [np.asarray(c, np.uint8) for c in clips]
    n = min(len(c) for c in clips)
    images = [filmstrip_image([[c[i] for c in clips]], scale, gap=2) for i in range(n)]
    return atomic_write(path, lambda tmp: images[0].save(
        tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0))
