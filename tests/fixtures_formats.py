"""Builders for tiny datasets in each importer's exact native layout, written into a test's tmp_path.

Every frame shows a pure-red square (RGB 255,0,0) moving right on a blue-grey background,
so tests can check both that frames differ and that colour channels come out in RGB order.
Nothing here is committed as binary data; it is all generated per test.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import cv2
import h5py
import numpy as np

RED = (255, 0, 0)
BACKGROUND = (40, 70, 110)
SQUARE = 12  # side of the red square, px
ATARI_TRIAL = "100_RZ_3592991_Aug-24-11-44-38"


def square_frames(n: int, h: int, w: int) -> np.ndarray:
    """RGB uint8 ``(n, h, w, 3)``: the red square at ``square_xy(t)`` on the background."""
    frames = np.empty((n, h, w, 3), np.uint8)
    frames[:] = BACKGROUND
    for t in range(n):
        x, y = square_xy(t)
        frames[t, y : y + SQUARE, x : x + SQUARE] = RED
    return frames


def square_xy(t: int) -> tuple[int, int]:
    """Top-left corner (x, y) of the square in frame ``t``."""
    return 4 + 4 * t, 8


def square_centre(frames: np.ndarray, t: int) -> np.ndarray:
    """The RGB value at the centre of frame ``t``'s square."""
    x, y = square_xy(t)
    return frames[t, y + SQUARE // 2, x + SQUARE // 2]


def write_mp4(path: Path, frames_rgb: np.ndarray, fps: float = 20.0) -> Path:
    """Encode RGB frames as an mp4 (MPEG-4 part 2, "mp4v", which decord reads back)."""
    h, w = frames_rgb.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened(), "OpenCV cannot write mp4v"
    for f in frames_rgb:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def truncate(path: Path, fraction: float = 0.5) -> Path:
    """Cut a file to ``fraction`` of its bytes, as an interrupted download would."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


# --- Atari-HEAD ------------------------------------------------------------------------------

# frame_id suffix, episode_id, score, duration(ms), unclipped_reward, action, gaze tail
ATARI_ROWS = [
    (1, "0", "0", "null", "0", "0", "null"),
    (2, "0", "0", "51", "0", "3", "10.0,20.0,30.0,40.0"),
    (3, "0", "10", "48", "10", "4", "5.5,6.5"),
    (4, "null", "null", "null", "null", "null", "null"),
    (5, "1", "0", "60", "0", "12", "1,2,3,4,5,6"),
    (6, "1", "0", "45", "0", "6", "null"),
    (7, "1", "0", "44", "0", "9", "100,200"),
    (8, "1", "20", "40", "20", "1", "null"),
]
ATARI_HEADER = "frame_id,episode_id,score,duration(ms),unclipped_reward,action,gaze_positions"


def atari_head_trial(
    folder: Path, rows=ATARI_ROWS, trial: str = ATARI_TRIAL, skip_png: int | None = None,
    extra_png: bool = False, corrupt_png: int | None = None,
) -> tuple[Path, np.ndarray]:
    """Write ``<trial>.tar.bz2`` (PNGs ``<trial>/RZ_3592991_<k>.png``) and ``<trial>.txt``.

    Returns the .tar.bz2 path and the RGB frames in row order. ``skip_png`` leaves one row's
    image out of the archive, ``extra_png`` adds an image that has no row, ``corrupt_png``
    stores junk bytes as one row's image.
    """
    folder.mkdir(parents=True, exist_ok=True)
    frames = square_frames(len(rows), 210, 160)
    lines = [ATARI_HEADER] + [f"RZ_3592991_{k}," + ",".join(r) for k, *r in rows]
    (folder / f"{trial}.txt").write_text("\n".join(lines) + "\n")
    tar_path = folder / f"{trial}.tar.bz2"
    images = {f"RZ_3592991_{k}": frames[i] for i, (k, *_) in enumerate(rows) if k != skip_png}
    if extra_png:
        images["RZ_3592991_999"] = frames[0]
    with tarfile.open(tar_path, "w:bz2") as tar:
        for frame_id, rgb in images.items():
            png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
            if frame_id == f"RZ_3592991_{corrupt_png}":
                png = b"\x89PNG junk"
            info = tarfile.TarInfo(f"{trial}/{frame_id}.png")
            info.size = len(png)
            tar.addfile(info, io.BytesIO(png))
    return tar_path, frames


# --- VPT -------------------------------------------------------------------------------------


def vpt_action(keys=(), dx=0.0, dy=0.0, buttons=(), gui=False, hotbar=0) -> dict:
    """One jsonl object as the VPT recorder writes it (fields the importer ignores included)."""
    return {
        "mouse": {"x": 640.0, "y": 360.0, "dx": dx, "dy": dy, "scaledX": 0.0, "scaledY": 0.0,
                  "dwheel": 0.0, "buttons": list(buttons), "newButtons": []},
        "keyboard": {"keys": [f"key.keyboard.{k}" for k in keys], "newKeys": [], "chars": ""},
        "isGuiOpen": gui, "isGuiInventory": False, "hotbar": hotbar, "yaw": 0.0, "pitch": 0.0,
        "xpos": 0.0, "ypos": 64.0, "zpos": 0.0, "tick": 0, "milli": 0, "inventory": [],
        "serverTick": 0, "serverTickDurationMs": 50.0, "stats": {},
    }  # fmt: skip


VPT_ACTIONS = [
    vpt_action(keys=("w",), dx=10.0, dy=-2.0),
    vpt_action(keys=("w", "a"), dx=-20.0),
    None,
    vpt_action(keys=("space", "left.shift"), buttons=(0,), hotbar=3),
    vpt_action(keys=("d", "left.control"), dx=5.0, buttons=(1,)),
    vpt_action(dx=-8.0, gui=True),
    vpt_action(),
    vpt_action(keys=("s",), dx=1.0, dy=4.0),
]


def vpt_recording(folder: Path, name: str = "cheeky-cornflower-setter-abc123-20220101-000000",
                  actions=VPT_ACTIONS, n_frames: int | None = None) -> tuple[Path, np.ndarray]:
    """Write ``<name>.mp4`` (64x48 stand-in for 640x360, 20 Hz) and ``<name>.jsonl``."""
    folder.mkdir(parents=True, exist_ok=True)
    frames = square_frames(len(actions) if n_frames is None else n_frames, 48, 64)
    mp4 = write_mp4(folder / f"{name}.mp4", frames, 20.0)
    (folder / f"{name}.jsonl").write_text("".join(json.dumps(a) + "\n" for a in actions))
    return mp4, frames


# --- CS:GO -----------------------------------------------------------------------------------

CSGO_MOUSE_X = [-1000, -500, -300, -200, -100, -60, -30, -20, -10, -4, -2, 0, 2, 4, 10, 20, 30, 60, 100, 200,
                300, 500, 1000]  # fmt: skip
CSGO_MOUSE_Y = [-200, -100, -50, -20, -10, -4, -2, 0, 2, 4, 10, 20, 50, 100, 200]
CSGO_KEYS = ("w", "a", "s", "d", "space", "ctrl", "shift", "1", "2", "3", "r")


def csgo_vector(keys=(), left=False, right=False, mx=0, my=0) -> np.ndarray:
    """The 51-float ``frame_{i}_y``: 11 key flags, 2 clicks, one-hot mouse x (23), mouse y (15)."""
    y = np.zeros(51, np.float32)
    for k in keys:
        y[CSGO_KEYS.index(k)] = 1
    y[11], y[12] = left, right
    y[13 + CSGO_MOUSE_X.index(mx)] = 1
    y[36 + CSGO_MOUSE_Y.index(my)] = 1
    return y


CSGO_VECTORS = [
    csgo_vector(keys=("w",), mx=-60),
    csgo_vector(keys=("w", "a"), left=True, mx=0, my=-4),
    csgo_vector(keys=("space", "r"), mx=1000, my=200),
    csgo_vector(right=True, mx=-2),
    csgo_vector(keys=("ctrl", "shift", "1"), mx=2, my=10),
    csgo_vector(keys=("3",)),
]


def csgo_file(path: Path, vectors=CSGO_VECTORS) -> tuple[Path, np.ndarray]:
    """Write an HDF5 like ``hdf5_dm_july2021_1.hdf5``: BGR ``frame_{i}_x`` + ``frame_{i}_y`` (+ xaux)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = square_frames(len(vectors), 150, 280)
    with h5py.File(path, "w") as f:
        for i, y in enumerate(vectors):
            f[f"frame_{i}_x"] = frames[i][..., ::-1]  # the dataset stores BGR
            f[f"frame_{i}_y"] = y
            f[f"frame_{i}_xaux"] = np.zeros(54, np.float32)
    return path, frames


# --- Minari ----------------------------------------------------------------------------------


def minari_file(path: Path, episodes: list[dict], dataset_id: str | None = "CarRacing/human-v0") -> Path:
    """Write ``main_data.hdf5``: one ``episode_{id}`` group per dict of arrays (dict values = Dict space)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        if dataset_id is not None:
            f.attrs["dataset_id"] = dataset_id
        for i, ep in enumerate(episodes):
            g = f.create_group(f"episode_{i}")
            g.attrs["id"], g.attrs["total_steps"] = i, len(ep["actions"])
            for key, value in ep.items():
                if isinstance(value, dict):
                    for sub, arr in value.items():
                        g[f"{key}/{sub}"] = arr
                else:
                    g[key] = value
    return path


def minari_episode(n: int, actions: np.ndarray, obs=None) -> dict:
    """An episode of ``n`` steps: ``n+1`` image observations (default RGB 24x64) and the arrays."""
    return {
        "observations": square_frames(n + 1, 24, 64) if obs is None else obs,
        "actions": actions,
        "rewards": np.arange(n, dtype=np.float64) * 0.5,
        "terminations": np.eye(1, n, n - 1, dtype=bool)[0],
        "truncations": np.zeros(n, bool),
    }


# --- generic mp4 + csv -----------------------------------------------------------------------


def video_csv_recording(folder: Path, csv_text: str, name: str = "run1", n_frames: int | None = None):
    """Write ``<name>.mp4`` and ``<name>.csv``; the video has one frame per CSV row by default."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(csv_text.strip().splitlines()) - 1 if n_frames is None else n_frames
    frames = square_frames(n, 48, 64)
    mp4 = write_mp4(folder / f"{name}.mp4", frames, 30.0)
    (folder / f"{name}.csv").write_text(csv_text)
    return mp4, frames
