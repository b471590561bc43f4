"""Atari-HEAD trials: human Atari play with actions and eye-tracking (Zhang et al., 2020).

One trial is two sibling files (the game is the folder they sit in, e.g. ``ms_pacman/``)::

    <trial>.tar.bz2   <trial>/<frame_id>.png, one 210x160 RGB image per game frame
    <trial>.txt       CSV: frame_id,episode_id,score,duration(ms),unclipped_reward,action,gaze_positions

``null`` marks a missing value; ``action`` is the ALE full action enum (0..17); every field
after ``action`` is the frame's gaze samples as ``x,y`` pairs in screen pixels (``null``
when there are none). Rows are matched to images by ``frame_id``; a trial's rows are split
into episodes where ``episode_id`` changes (a ``null`` id continues the previous episode).

Labels: ``ale_action`` (the 18 action names), the derived ``steer`` (LEFT/NEUTRAL/RIGHT),
``vertical`` (UP/NEUTRAL/DOWN) and ``fire``, plus ``score``, ``reward``, ``duration_ms``
(human decision time) and ``gaze_x``/``gaze_y`` (mean gaze point of the frame).
"""

from __future__ import annotations

import bz2
import csv
import tarfile
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ...core.errors import DataError
from ..episode import Episode
from ..schema import STEER_CLASSES, UNLABELED, LabelSchema, LabelSpec
from ._files import checked, data_files

FRAME_RATE = 20.0  # Hz while a key is held; the game pauses between decisions (see duration_ms)

ACTIONS = (
    "NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT", "DOWNRIGHT", "DOWNLEFT",
    "UPFIRE", "RIGHTFIRE", "LEFTFIRE", "DOWNFIRE", "UPRIGHTFIRE", "UPLEFTFIRE", "DOWNRIGHTFIRE",
    "DOWNLEFTFIRE",
)  # fmt: skip
VERTICAL_CLASSES = ("UP", "NEUTRAL", "DOWN")
HEADER = ("frame_id", "episode_id", "score", "duration(ms)", "unclipped_reward", "action", "gaze_positions")

SCHEMA = LabelSchema.from_list([
    LabelSpec("ale_action", "categorical", ACTIONS, "ALE full action set (Atari-HEAD 'action')"),
    LabelSpec("steer", "categorical", STEER_CLASSES, "horizontal part of the action"),
    LabelSpec("vertical", "categorical", VERTICAL_CLASSES, "vertical part of the action"),
    LabelSpec("fire", "binary", description="the action presses FIRE"),
    LabelSpec("score", "continuous", description="game score before the action", units="points"),
    LabelSpec("reward", "continuous", description="unclipped reward of the action", units="points"),
    LabelSpec("duration_ms", "continuous", description="time the player took to act", units="ms"),
    LabelSpec("gaze_x", "continuous", description="mean gaze x on the 160-wide frame", units="px"),
    LabelSpec("gaze_y", "continuous", description="mean gaze y on the 210-high frame", units="px"),
])  # fmt: skip

# Per-action lookup tables, indexed by action code; index -1 (null action) hits the last entry.
_STEER = np.array([0 if "LEFT" in a else 2 if "RIGHT" in a else 1 for a in ACTIONS] + [UNLABELED], np.int8)
_VERTICAL = np.array([0 if "UP" in a else 2 if "DOWN" in a else 1 for a in ACTIONS] + [UNLABELED], np.int8)
_FIRE = np.array([int("FIRE" in a) for a in ACTIONS] + [UNLABELED], np.int8)


def label_schema(path: str | Path, **params) -> LabelSchema:
    """The labels ``read`` produces (fixed for this format)."""
    return SCHEMA


def read(path: str | Path, game: str | None = None) -> Iterator[Episode]:
    """Yield the episodes of one trial (``path`` = its .tar.bz2 or .txt) or of every trial in a folder.

    ``game`` defaults to the name of the folder holding the trials. Episodes are numbered
    0, 1, … across all trials read. Raises ``ValueError`` naming the file for a missing or
    truncated archive, a row without its image, an image without its row or a malformed row.
    """
    episode = 0
    for tar_path in _trials(path):
        txt_path = tar_path.with_name(tar_path.name[: -len(".tar.bz2")] + ".txt")
        if not txt_path.is_file():
            raise DataError(f"{txt_path}: file missing (every trial .tar.bz2 needs its .txt)")
        checked(txt_path)
        trial = txt_path.stem
        rows = _read_rows(txt_path)
        pngs = _read_pngs(tar_path, trial)
        missing = [fid for fid in rows["frame_id"] if fid not in pngs]
        if missing:
            raise DataError(
                f"{tar_path}: image {trial}/{missing[0]}.png missing from the archive ({len(missing)} rows"
                f" of {txt_path.name} have no image): frames and labels do not match"
            )
        extra = set(pngs) - set(rows["frame_id"])
        if extra:
            raise DataError(
                f"{tar_path}: {len(extra)} images have no row in {txt_path.name}"
                f" (e.g. {trial}/{sorted(extra)[0]}.png): frames and labels do not match"
            )
        for lo, hi in _episode_bounds(rows["episode_id"]):
            ids = rows["frame_id"][lo:hi]
            frames = np.stack([_decode_png(pngs[fid], f"{tar_path}: image {trial}/{fid}.png") for fid in ids])
            action = rows["action"][lo:hi]
            labels = {
                "ale_action": action.astype(np.int8),
                "steer": _STEER[action],
                "vertical": _VERTICAL[action],
                "fire": _FIRE[action],
                **{k: rows[k][lo:hi] for k in ("score", "reward", "duration_ms", "gaze_x", "gaze_y")},
            }
            yield Episode(game or tar_path.parent.resolve().name, episode, frames, labels, source=str(tar_path))
            episode += 1


def _trials(path: str | Path) -> list[Path]:
    """Trial archives: ``path``'s own (given the .tar.bz2 or .txt) or all in folder ``path``."""
    path = Path(path)
    if path.is_file() and path.suffix == ".txt":
        path = path.with_name(path.stem + ".tar.bz2")
        if not path.is_file():
            raise DataError(f"{path}: file missing (every trial .txt needs its .tar.bz2)")
    return data_files(path, (".tar.bz2",))


def _number(value: str, txt: Path, line: int, column: str) -> float:
    if value in ("null", ""):
        return np.nan
    try:
        number = float(value)
    except ValueError:
        raise DataError(f"{txt}: line {line}: {column} {value!r} is not a number or null") from None
    if not np.isfinite(number):
        raise DataError(f"{txt}: line {line}: {column} {value!r} is not a finite number; null marks a missing value")
    return number


def _read_rows(txt: Path) -> dict[str, np.ndarray]:
    """Parse a trial CSV into per-row arrays; action -1 and NaN where the file says null."""
    cols: dict[str, list] = {k: [] for k in ("frame_id", "episode_id", "score", "duration_ms", "reward",
                                             "action", "gaze_x", "gaze_y")}  # fmt: skip
    with open(txt, newline="") as f:
        reader = csv.reader(f)
        header = tuple(h.strip() for h in next(reader, ()))
        if header != HEADER:
            raise DataError(f"{txt}: header is {','.join(header)!r}; expected {','.join(HEADER)!r}")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) < len(HEADER) or row[0] in ("", "null"):
                raise DataError(f"{txt}: line {line}: expected frame_id and at least {len(HEADER)} fields")
            action = row[5].strip()
            if action == "null":
                code = UNLABELED
            elif action.isdigit() and int(action) < len(ACTIONS):
                code = int(action)
            else:
                raise DataError(
                    f"{txt}: line {line}: unknown action {action!r}; expected an ALE action code 0..17 or null"
                )
            gaze = [_number(v, txt, line, "gaze position") for v in row[6:] if v.strip() not in ("null", "")]
            if len(gaze) % 2:
                raise DataError(f"{txt}: line {line}: gaze positions must be x,y pairs, got {len(gaze)} values")
            gx, gy = (np.mean(gaze[0::2]), np.mean(gaze[1::2])) if gaze else (np.nan, np.nan)
            cols["frame_id"].append(row[0].strip())
            cols["episode_id"].append(_number(row[1], txt, line, "episode_id"))
            cols["score"].append(_number(row[2], txt, line, "score"))
            cols["duration_ms"].append(_number(row[3], txt, line, "duration(ms)"))
            cols["reward"].append(_number(row[4], txt, line, "unclipped_reward"))
            cols["action"].append(code)
            cols["gaze_x"].append(gx)
            cols["gaze_y"].append(gy)
    if not cols["frame_id"]:
        raise DataError(f"{txt}: no rows after the header")
    out = {k: np.asarray(v, np.float32) for k, v in cols.items() if k not in ("frame_id", "action", "episode_id")}
    out["frame_id"] = np.asarray(cols["frame_id"])
    out["action"] = np.asarray(cols["action"], np.int64)
    out["episode_id"] = np.asarray(cols["episode_id"], np.float64)
    return out


def _episode_bounds(episode_id: np.ndarray) -> list[tuple[int, int]]:
    """``[lo, hi)`` row ranges of constant episode id; null ids join the episode before them."""
    ids = episode_id.copy()
    known = np.flatnonzero(~np.isnan(ids))
    if len(known) == 0:
        return [(0, len(ids))]
    # forward-fill: each row takes the last known id at or before it (leading nulls: the first id)
    last = np.maximum.accumulate(np.where(~np.isnan(ids), np.arange(len(ids)), known[0]))
    ids = ids[last]
    cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    edges = [0, *cuts.tolist(), len(ids)]
    return list(zip(edges[:-1], edges[1:]))


def _read_pngs(tar_path: Path, trial: str) -> dict[str, bytes]:
    """Stream the archive once; map frame_id -> still-compressed PNG bytes of ``<trial>/*.png``."""
    pngs: dict[str, bytes] = {}
    prefix = f"{trial}/"
    try:
        with bz2.open(tar_path, "rb") as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                if member.isfile() and name.startswith(prefix) and name.endswith(".png"):
                    pngs[name[len(prefix) : -len(".png")]] = tar.extractfile(member).read()
            while raw.read(1 << 20):  # read on to bz2's end-of-stream marker: a cut-off file fails here
                pass
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{tar_path}: cannot read archive (truncated or corrupt .tar.bz2?): {exc}") from None
    return pngs


def _decode_png(png: bytes, where: str) -> np.ndarray:
    """PNG bytes -> RGB uint8 ``(210, 160, 3)``."""
    bgr = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DataError(f"{where} cannot be decoded (corrupt PNG)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
