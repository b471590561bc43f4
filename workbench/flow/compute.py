"""Dense optical flow between consecutive frames, reduced to a few numbers per frame pair.

Seed 000 (§3) labels Atari frames by the dominant Farneback flow direction; §5 calibrates the
neutral threshold from flow statistics. This module computes those statistics for in-memory
frames; :mod:`workbench.flow.parallel` runs it over a whole store.

Conventions (image coordinates, as OpenCV returns them):

* ``dx`` > 0 is motion to the right, ``dy`` > 0 is motion *down*; units are px/frame.
* angles are degrees in [0, 360): 0 = right, 90 = down, 180 = left, 270 = up.
* the statistics at frame ``t`` describe the pair ``t -> t+1``.

Per pair (see :func:`flow_statistics`):

=============  ===========================  =================================================
``flow_dx``    float32 (n,)                 mean horizontal flow over all pixels
``flow_dy``    float32 (n,)                 mean vertical flow over all pixels
``flow_mag``   float32 (n,)                 mean flow magnitude over all pixels
``flow_angle`` float32 (n,)                 dominant direction: centre of the mode bin of a
                                            magnitude-weighted 16-bin angle histogram (22.5°
                                            resolution); NaN when the pair is still
``flow_dom_dx`` float32 (n,)                cos(dominant angle) × mean magnitude of the pixels
                                            in the mode bin: the signed horizontal signal the
                                            proxy labels use (0 when still, so still = NEUTRAL)
``flow_grid``  float32 (n, gy, gx, 2)       mean (dx, dy) per cell of a gy × gx grid, so an
                                            analysis can look at road edges, not the whole frame
=============  ===========================  =================================================
"""

from __future__ import annotations

from typing import Mapping

import cv2
import numpy as np

METHODS = ("farneback", "dis")

# Farneback on 96x96 game frames: a 3-level pyramid (96 -> 48 -> 24 px) follows motions of
# several px/frame; a 15 px window averages over the flat colour areas of game graphics, where a
# small window has no texture to match; 5-pixel polynomials with sigma 1.2 are OpenCV's
# recommended pairing. These are the OpenCV tutorial's values; seed 000 does not state its own.
FARNEBACK_PARAMS = {
    "pyr_scale": 0.5,
    "levels": 3,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.2,
    "flags": 0,
}
# DIS is the fast alternative. FAST rather than ULTRAFAST: on 96x96 frames the two cost about
# the same, and FAST refines more (see the benchmark numbers in the package docstring).
DIS_PRESET = "FAST"
ANGLE_BINS = 16
# Mean magnitude (px/frame) below which a pair counts as still: identical frames give ~1e-3.
STILL_MAG = 0.01
STAT_NAMES = ("flow_dx", "flow_dy", "flow_mag", "flow_angle", "flow_dom_dx")


def method_parameters(method: str) -> dict:
    """The parameters a method runs with, for the provenance attrs of a flow store."""
    check_method(method)
    common = {"angle_bins": ANGLE_BINS, "still_mag": STILL_MAG, "gray": "cv2.COLOR_RGB2GRAY"}
    if method == "farneback":
        return {**FARNEBACK_PARAMS, **common}
    return {"preset": DIS_PRESET, **common}


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown optical flow method {method!r}; expected one of {METHODS}")
    return method


def to_gray(frames: np.ndarray) -> np.ndarray:
    """RGB uint8 ``(n, y, x, 3)`` -> grayscale uint8 ``(n, y, x)`` in one OpenCV call."""
    n, h, w, _ = frames.shape
    flat = np.ascontiguousarray(frames, dtype=np.uint8).reshape(n * h, w, 3)
    return cv2.cvtColor(flat, cv2.COLOR_RGB2GRAY).reshape(n, h, w)


def dense_flow(gray_a: np.ndarray, gray_b: np.ndarray, method: str = "farneback") -> np.ndarray:
    """Dense flow from ``gray_a[i]`` to ``gray_b[i]``: float32 ``(n, y, x, 2)`` in px/frame.

    One OpenCV call per pair is unavoidable; everything after it is vectorised.
    """
    check_method(method)
    n, h, w = gray_a.shape
    out = np.empty((n, h, w, 2), np.float32)
    if method == "farneback":
        p = FARNEBACK_PARAMS
        for i in range(n):
            out[i] = cv2.calcOpticalFlowFarneback(
                gray_a[i], gray_b[i], None, p["pyr_scale"], p["levels"], p["winsize"],
                p["iterations"], p["poly_n"], p["poly_sigma"], p["flags"],
            )
    else:
        dis = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{DIS_PRESET}"))
        for i in range(n):
            out[i] = dis.calc(gray_a[i], gray_b[i], None)
    return out


def _cell_means(values: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Mean of ``values (n, y, x, c)`` over a ``gy × gx`` grid of near-equal cells -> ``(n, gy, gx, c)``."""
    n, h, w, _ = values.shape
    gy, gx = grid
    if not (1 <= gy <= h and 1 <= gx <= w):
        raise ValueError(f"grid {grid} does not fit frames of {h}x{w} pixels")
    ys = np.linspace(0, h, gy + 1).astype(int)
    xs = np.linspace(0, w, gx + 1).astype(int)
    sums = np.add.reduceat(np.add.reduceat(values, ys[:-1], axis=1), xs[:-1], axis=2)
    counts = np.diff(ys)[:, None] * np.diff(xs)[None, :]
    return sums / counts[None, :, :, None]


def flow_statistics(flow: np.ndarray, grid: tuple[int, int] = (4, 4)) -> dict[str, np.ndarray]:
    """Reduce dense flow ``(n, y, x, 2)`` to the per-pair statistics in the module docstring."""
    n = flow.shape[0]
    dx, dy = flow[..., 0], flow[..., 1]
    mag = np.hypot(dx, dy)
    width = 360.0 / ANGLE_BINS
    angle = np.degrees(np.arctan2(dy, dx)) % 360.0
    bins = (np.floor((angle + width / 2) / width).astype(np.int64) % ANGLE_BINS).reshape(n, -1)
    index = (np.arange(n)[:, None] * ANGLE_BINS + bins).ravel()
    weight = np.bincount(index, mag.ravel(), minlength=n * ANGLE_BINS).reshape(n, ANGLE_BINS)
    count = np.bincount(index, minlength=n * ANGLE_BINS).reshape(n, ANGLE_BINS)
    mode = weight.argmax(axis=1)
    rows = np.arange(n)
    mode_mag = weight[rows, mode] / np.maximum(count[rows, mode], 1)
    centre = mode * width
    mean_mag = mag.mean(axis=(1, 2))
    still = mean_mag < STILL_MAG
    return {
        "flow_dx": dx.mean(axis=(1, 2)).astype(np.float32),
        "flow_dy": dy.mean(axis=(1, 2)).astype(np.float32),
        "flow_mag": mean_mag.astype(np.float32),
        "flow_angle": np.where(still, np.nan, centre).astype(np.float32),
        "flow_dom_dx": np.where(still, 0.0, np.cos(np.radians(centre)) * mode_mag).astype(np.float32),
        "flow_grid": _cell_means(flow, grid).astype(np.float32),
    }


def flow_pairs(
    frames_a: np.ndarray, frames_b: np.ndarray, method: str = "farneback", grid: tuple[int, int] = (4, 4)
) -> dict[str, np.ndarray]:
    """Statistics of the pairs ``frames_a[i] -> frames_b[i]`` (RGB uint8 ``(n, y, x, 3)`` each)."""
    if frames_a.shape != frames_b.shape:
        raise ValueError(f"frame pairs need equal shapes, got {frames_a.shape} and {frames_b.shape}")
    return flow_statistics(dense_flow(to_gray(frames_a), to_gray(frames_b), method), grid)


def successor_mask(game: np.ndarray, episode: np.ndarray, step: np.ndarray) -> np.ndarray:
    """bool ``(n,)``: True where frame ``t+1`` continues frame ``t``'s episode (same game and
    episode, larger step), i.e. where the pair ``t -> t+1`` is a real transition."""
    game, episode, step = np.asarray(game), np.asarray(episode), np.asarray(step)
    out = np.zeros(len(step), bool)
    out[:-1] = (game[1:] == game[:-1]) & (episode[1:] == episode[:-1]) & (step[1:] > step[:-1])
    return out


def empty_statistics(n: int, grid: tuple[int, int]) -> dict[str, np.ndarray]:
    """All-NaN statistics for ``n`` frames (frames without a successor)."""
    out = {name: np.full(n, np.nan, np.float32) for name in STAT_NAMES}
    out["flow_grid"] = np.full((n, *grid, 2), np.nan, np.float32)
    return out


def sequence_flow(
    frames: np.ndarray, has_next: np.ndarray, method: str = "farneback", grid: tuple[int, int] = (4, 4)
) -> dict[str, np.ndarray]:
    """Per-frame statistics of a run of frames ``(m, y, x, 3)``.

    ``has_next`` (bool, length ``n`` ≤ ``m - 1``, or ``m`` with a False last entry) marks the
    frames whose successor belongs to the same episode; only those pairs are computed, the
    others (an episode's last frame) are NaN. Returns arrays of length ``len(has_next)``.
    """
    has_next = np.asarray(has_next, bool)
    n = len(has_next)
    if n > len(frames) or (n == len(frames) and n and has_next[-1]):
        raise ValueError("the last frame of a run cannot have a successor inside it")
    out = empty_statistics(n, grid)
    idx = np.flatnonzero(has_next)
    if len(idx):
        gray = to_gray(frames[: idx[-1] + 2])
        stats = flow_statistics(dense_flow(gray[idx], gray[idx + 1], method), grid)
        for name, values in stats.items():
            out[name][idx] = values
    return out


def concat_statistics(parts: list[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Join per-block statistics in block order."""
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
