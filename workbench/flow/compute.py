"""Dense optical flow between consecutive frames, reduced to a few numbers per frame pair.

Seed 000 (§3) labels Atari frames by the dominant Farneback flow direction; §5 calibrates the
neutral threshold from flow statistics. This module computes those statistics for in-memory
frames; :mod:`workbench.flow.parallel` runs it over a whole store.

Conventions (image coordinates, as OpenCV returns them):

* ``dx`` > 0 is motion to the right, ``dy`` > 0 is motion *down*; units are px/frame.
* angles are degrees in [0, 360): 0 = right, 90 = down, 180 = left, 270 = up.
* the statistics at frame ``t`` describe the pair ``t -> t+1``.

Per pair (see :func:`flow_statistics`), all float32:

``flow_dx``, ``flow_dy`` (n,)
    mean horizontal / vertical flow over all pixels, px/frame
``flow_mag`` (n,)
    mean flow magnitude over all pixels, px/frame
``flow_angle`` (n,)
    dominant direction, degrees: the centre of the mode bin of a magnitude-weighted 16-bin
    histogram of pixel flow angles (22.5° resolution); NaN when the pair is still
``flow_dom_dx`` (n,)
    cos(dominant angle) × mean magnitude of the pixels in the mode bin, px/frame: the signed
    horizontal signal the proxy labels use; 0 when still, so a still pair is NEUTRAL
``flow_grid`` (n, gy, gx, 2)
    mean (dx, dy) per cell of a gy × gx grid, px/frame, so an analysis can look at road edges
    rather than the whole frame
"""

from __future__ import annotations

from typing import Mapping

import cv2
import numpy as np

METHODS = ("farneback", "dis")

# Farneback on 96x96 game frames. These are the OpenCV tutorial's values (seed 000 does not
# state its own): a 15 px window averages over the flat colour areas of game graphics, where a
# smaller window has no texture to match; 5-pixel polynomials with sigma 1.2 are OpenCV's
# recommended pairing. Two limits at this size, measured on synthetic shifts:
# * OpenCV builds no pyramid level below 32 px, so at 96x96 every ``levels`` >= 1 gives the
#   same flow (checked); motions above ~6 px/frame are underestimated (8 px reads as ~5).
# * low contrast shrinks the estimate (a texture with a grey-level std of 5 reads 2 px as 0.35).
FARNEBACK_PARAMS = {
    "pyr_scale": 0.5,
    "levels": 3,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.2,
    "flags": 0,
}
# DIS is the fast alternative and follows large motions (12 px/frame) better. FAST rather than
# ULTRAFAST: ULTRAFAST is about twice as fast again but loses more on large motions.
DIS_PRESET = "FAST"
ANGLE_BINS = 16
# Mean magnitude (px/frame) below which a pair counts as still: identical frames give ~1e-3.
STILL_MAG = 0.01
# cos of each bin centre, rounded so the vertical bins give exactly 0 (vertical motion = NEUTRAL)
_BIN_COS = np.round(np.cos(np.radians(np.arange(ANGLE_BINS) * 360.0 / ANGLE_BINS)), 12)
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
    dx = np.ascontiguousarray(flow[..., 0]).reshape(-1, 1)
    dy = np.ascontiguousarray(flow[..., 1]).reshape(-1, 1)
    mag, angle = cv2.cartToPolar(dx, dy, angleInDegrees=True)  # angle in [0, 360), ~0.3° accurate
    mag, angle = mag.reshape(n, -1), angle.reshape(n, -1)
    width = np.float32(360.0 / ANGLE_BINS)
    bins = ((angle + width / 2) / width).astype(np.uint8) % ANGLE_BINS  # bin k is centred on k * width
    index = (np.arange(n)[:, None] * ANGLE_BINS + bins).ravel()
    weight = np.bincount(index, mag.ravel(), n * ANGLE_BINS)
    mode = weight.reshape(n, ANGLE_BINS).argmax(axis=1)
    in_mode = bins == mode[:, None]
    mode_mag = (mag * in_mode).sum(axis=1) / np.maximum(in_mode.sum(axis=1), 1)
    mean_mag = mag.mean(axis=1)
    still = mean_mag < STILL_MAG
    return {
        "flow_dx": dx.reshape(n, -1).mean(axis=1).astype(np.float32),
        "flow_dy": dy.reshape(n, -1).mean(axis=1).astype(np.float32),
        "flow_mag": mean_mag.astype(np.float32),
        "flow_angle": np.where(still, np.nan, mode * float(width)).astype(np.float32),
        "flow_dom_dx": np.where(still, 0.0, _BIN_COS[mode] * mode_mag).astype(np.float32),
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
