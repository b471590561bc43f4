"""Reading video files (mp4 …) into RGB frame arrays with decord, with clear errors.

decord reports unreadable input as ``RuntimeError`` ("Error reading …") or ``DECORDError``
(a failed C++ check), often only when a frame is actually decoded. Every function here
turns both into a ``ValueError`` that names the file, so a corrupt or truncated video in
an import stops it with a message a user can act on.
"""

from __future__ import annotations

from pathlib import Path

import decord
import numpy as np

from ..core.errors import ConfigError, DataError

DECODE_BATCH = 128  # frames per decord call: bounds the extra copy decord makes while decoding

_DECORD_ERRORS = (RuntimeError, decord.DECORDError)


def _open(path: Path) -> decord.VideoReader:
    if not path.is_file():
        raise DataError(f"{path}: video file not found")
    try:
        return decord.VideoReader(str(path), ctx=decord.cpu(0))
    except _DECORD_ERRORS as exc:
        raise DataError(f"{path}: cannot open video (corrupt or truncated file?): {_short(exc)}") from None


def _short(exc: Exception) -> str:
    """decord's messages carry C++ stack traces; keep the first line."""
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__


def video_frame_count(path: str | Path) -> int:
    """Number of frames in the video at ``path`` (from its index; decodes nothing)."""
    path = Path(path)
    return len(_open(path))


def read_video(path: str | Path, frame_step: int = 1, max_frames: int | None = None) -> np.ndarray:
    """Decode frames ``0, frame_step, 2*frame_step, …`` (at most ``max_frames``) of a video.

    Returns uint8 ``(n, h, w, 3)`` RGB at the video's native resolution. Every requested frame
    is decoded, so a file whose index looks fine but whose data is cut off fails here rather
    than later; any decoding failure is a ``ValueError`` naming the file and the frame range.
    """
    path = Path(path)
    if frame_step < 1:
        raise ConfigError(f"{path}: frame_step must be >= 1, got {frame_step}")
    reader = _open(path)
    indices = np.arange(0, len(reader), frame_step)
    if max_frames is not None:
        indices = indices[: max(int(max_frames), 0)]
    if len(indices) == 0:
        raise DataError(f"{path}: the video has no frames to read")
    out = None
    for start in range(0, len(indices), DECODE_BATCH):
        batch = indices[start : start + DECODE_BATCH]
        try:
            frames = reader.get_batch(batch.tolist()).asnumpy()
        except _DECORD_ERRORS as exc:
            raise DataError(
                f"{path}: cannot decode frames {batch[0]}..{batch[-1]} of {len(reader)}"
                f" (corrupt or truncated video?): {_short(exc)}"
            ) from None
        if out is None:
            out = np.empty((len(indices), *frames.shape[1:]), np.uint8)
        out[start : start + len(batch)] = frames
    return out


def read_labeled_video(path: str | Path, labels_path: str | Path, n_labels: int, unit: str = "rows",
                       frame_step: int = 1, max_frames: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Decode a video whose frames pair one-to-one with ``n_labels`` label records.

    Returns ``(frames, keep)``: the decoded frames and the indices of the label records they
    pair with (``frame_step``/``max_frames`` subsample both alike). Raises ``ValueError``
    naming both files when the counts differ: frames and labels must have the same length.
    """
    n_video = video_frame_count(path)
    if n_video != n_labels:
        raise DataError(f"{path} has {n_video} frames but {labels_path} has {n_labels} {unit}:"
                        " frames and labels must have the same length")
    frames = read_video(path, frame_step=frame_step, max_frames=max_frames)
    return frames, np.arange(0, n_labels, frame_step)[: len(frames)]
