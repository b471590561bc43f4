"""OpenAI VPT contractor data: Minecraft video with the player's keyboard and mouse per frame.

One recording is two sibling files::

    <name>.mp4     640x360 video at 20 Hz
    <name>.jsonl   one JSON object per video frame, e.g.
                   {"mouse": {"dx": 12.0, "dy": -3.0, "buttons": [0], ...},
                    "keyboard": {"keys": ["key.keyboard.w", "key.keyboard.a"], ...},
                    "isGuiOpen": false, "hotbar": 0, ...}
                   or ``null`` for a frame without recorded input.

Mouse deltas are converted to camera degrees with the recorder's 0.15 deg per count
(``CAMERA_SCALER = 360 / 2400`` in the VPT code): ``mouse_dx`` is yaw (positive = turn right),
``mouse_dy`` pitch (positive = look down). ``steer`` is the sign of the yaw, i.e. the mouse
direction; it is unlabeled while a GUI is open, because the mouse then moves a cursor, not
the camera. Keys and buttons are kept as recorded (VPT's "attack stuck at start" fix-up and
null-action dropping are training choices, not applied here).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np

from ...core.errors import DataError
from ..episode import Episode
from ..schema import STEER_CLASSES, LabelSchema, LabelSpec, steer_from_sign
from ..video import read_labeled_video
from ._files import paired_files

FRAME_RATE = 20.0
DEGREES_PER_COUNT = 360.0 / 2400.0

KEYS = {  # label -> (jsonl key name, Minecraft meaning)
    "key_w": ("key.keyboard.w", "forward"),
    "key_a": ("key.keyboard.a", "strafe left"),
    "key_s": ("key.keyboard.s", "back"),
    "key_d": ("key.keyboard.d", "strafe right"),
    "key_space": ("key.keyboard.space", "jump"),
    "key_shift": ("key.keyboard.left.shift", "sneak"),
    "key_ctrl": ("key.keyboard.left.control", "sprint"),
    "key_e": ("key.keyboard.e", "inventory"),
    "key_q": ("key.keyboard.q", "drop"),
}
BUTTONS = {"attack": (0, "left mouse button"), "use": (1, "right mouse button")}
HOTBAR_CLASSES = tuple(str(i) for i in range(1, 10))

SCHEMA = LabelSchema.from_list([
    *(LabelSpec(label, "binary", description=f"{key} held ({meaning})") for label, (key, meaning) in KEYS.items()),
    *(LabelSpec(label, "binary", description=f"{what} held") for label, (_, what) in BUTTONS.items()),
    LabelSpec("mouse_dx", "continuous", description="camera yaw change, positive = right", units="deg"),
    LabelSpec("mouse_dy", "continuous", description="camera pitch change, positive = down", units="deg"),
    LabelSpec("steer", "categorical", STEER_CLASSES, "sign of the camera yaw (mouse direction)"),
    LabelSpec("gui_open", "binary", description="a GUI (inventory, crafting …) is open"),
    LabelSpec("hotbar", "categorical", HOTBAR_CLASSES, "selected hotbar slot"),
])  # fmt: skip


def label_schema(path: str | Path, **params) -> LabelSchema:
    """The labels ``read`` produces (fixed for this format)."""
    return SCHEMA


def read(
    path: str | Path,
    game: str = "minecraft",
    frame_step: int = 1,
    max_frames: int | None = None,
    dead_zone: float = 0.0,
) -> Iterator[Episode]:
    """Yield one episode per recording (``path`` = its .mp4 or .jsonl, or a folder of them).

    ``frame_step`` keeps every k-th frame, ``max_frames`` caps the frames kept per recording,
    ``dead_zone`` (degrees) is the yaw below which ``steer`` is NEUTRAL. The video and the
    jsonl must have the same number of frames; otherwise a ``ValueError`` names both.
    """
    for episode, (mp4, jsonl) in enumerate(paired_files(path, ".mp4", ".jsonl")):
        actions = _read_jsonl(jsonl)
        frames, keep = read_labeled_video(mp4, jsonl, len(actions), "lines", frame_step, max_frames)
        labels = _labels([actions[i] for i in keep], jsonl, keep, dead_zone)
        yield Episode(game, episode, frames, labels, step=keep.astype(np.int32), source=str(mp4))


def _read_jsonl(jsonl: Path) -> list[dict | None]:
    out = []
    with open(jsonl) as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{jsonl}: line {line_no} is not valid JSON ({exc.msg})") from None
            if obj is not None and not isinstance(obj, dict):
                raise DataError(f"{jsonl}: line {line_no}: expected a JSON object or null")
            out.append(obj)
    return out


def _labels(actions: list[dict | None], jsonl: Path, frame_index: np.ndarray, dead_zone: float) -> dict:
    """Per-frame label arrays; a ``null`` action leaves every label of its frame unlabeled."""
    labels = SCHEMA.missing(len(actions))
    for t, (obj, frame) in enumerate(zip(actions, frame_index)):
        if obj is None:
            continue
        try:
            keys = set(obj["keyboard"]["keys"])
            mouse = obj["mouse"]
            buttons = set(mouse.get("buttons", ()))
            dx, dy = float(mouse["dx"]), float(mouse["dy"])
            gui = bool(obj.get("isGuiOpen", False))
            hotbar = obj.get("hotbar")
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(
                f"{jsonl}: frame {frame}: expected keyboard.keys and mouse.dx/dy ({type(exc).__name__}: {exc})"
            ) from None
        if not np.isfinite([dx, dy]).all():
            raise DataError(f"{jsonl}: frame {frame}: mouse dx/dy must be finite numbers, got {dx}, {dy}"
                            " (a frame without input is a null line)")
        for label, (key, _) in KEYS.items():
            labels[label][t] = key in keys
        for label, (button, _) in BUTTONS.items():
            labels[label][t] = button in buttons
        labels["mouse_dx"][t] = dx * DEGREES_PER_COUNT
        labels["mouse_dy"][t] = dy * DEGREES_PER_COUNT
        labels["gui_open"][t] = gui
        if isinstance(hotbar, int) and 0 <= hotbar < len(HOTBAR_CLASSES):
            labels["hotbar"][t] = hotbar
    yaw = np.where(labels["gui_open"] == 1, np.nan, labels["mouse_dx"])
    labels["steer"] = steer_from_sign(yaw, dead_zone)
    return labels
