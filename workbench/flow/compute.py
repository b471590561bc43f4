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

from functools import lru_cache
from typing import Mapping

import cv2
import numpy as np

from ..core.errors import ConfigError

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
LANES = 8  # interleaved histogram accumulators per pair (see _lanes); LANES * ANGLE_BINS fits uint8
# Pairs per statistics batch: their flow (8 x 96x96x2 float32, 0.6 MB) and temporaries stay in a
# core's L2 cache. Measured on 96x96 DIS flow: 4 pairs pay more per-call overhead; from 12 pairs the
# temporaries outgrow glibc's malloc reuse and every batch page-faults (+60-75 % instead of +37 %).
CHUNK_PAIRS = 8
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
        raise ConfigError(f"unknown optical flow method {method!r}; expected one of {METHODS}")
    return method


def to_gray(frames: np.ndarray) -> np.ndarray:
    """RGB uint8 ``(n, y, x, 3)`` -> grayscale uint8 ``(n, y, x)`` in one OpenCV call."""
    n, h, w, _ = frames.shape
    flat = np.ascontiguousarray(frames, dtype=np.uint8).reshape(n * h, w, 3)
    return cv2.cvtColor(flat, cv2.COLOR_RGB2GRAY).reshape(n, h, w)


def dense_flow(gray_a: np.ndarray, gray_b: np.ndarray, method: str = "farneback", out: np.ndarray | None = None) -> np.ndarray:
    """Dense flow from ``gray_a[i]`` to ``gray_b[i]``: float32 ``(n, y, x, 2)`` in px/frame.

    One OpenCV call per pair is unavoidable; everything after it is vectorised. ``out`` (allocated
    when None) receives the flow: Farneback writes straight into it, DIS is given no flow array
    because it would take one as its initial estimate.
    """
    check_method(method)
    n, h, w = gray_a.shape
    out = np.empty((n, h, w, 2), np.float32) if out is None else out
    if method == "farneback":
        p = FARNEBACK_PARAMS
        for i in range(n):
            cv2.calcOpticalFlowFarneback(
                gray_a[i], gray_b[i], out[i], p["pyr_scale"], p["levels"], p["winsize"],
                p["iterations"], p["poly_n"], p["poly_sigma"], p["flags"],
            )
    else:
        dis = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{DIS_PRESET}"))
        for i in range(n):
            out[i] = dis.calc(gray_a[i], gray_b[i], None)
    return out


@lru_cache(maxsize=8)
def _cell_matrix(size: int, cells: int) -> np.ndarray:
    """float32 one-hot ``(size, cells)``: which of ``cells`` near-equal cells each pixel index falls in."""
    edges = np.linspace(0, size, cells + 1).astype(int)
    member = np.zeros((size, cells), np.float32)
    for k in range(cells):
        member[edges[k] : edges[k + 1], k] = 1
    member.flags.writeable = False
    return member


@lru_cache(maxsize=8)
def _lanes(pixels: int) -> np.ndarray:
    """uint8 ``(pixels,)``: ``(p % LANES) * ANGLE_BINS``, the accumulator offset of pixel ``p``.

    Neighbouring pixels (which mostly share a bin) then add into different accumulators, so
    ``np.bincount`` does not wait on its previous addition; the lanes are summed afterwards.
    """
    lanes = (np.arange(pixels) % LANES * ANGLE_BINS).astype(np.uint8)
    lanes.flags.writeable = False
    return lanes


def flow_statistics(flow: np.ndarray, grid: tuple[int, int] = (4, 4)) -> dict[str, np.ndarray]:
    """Reduce dense flow ``(n, y, x, 2)`` to the per-pair statistics in the module docstring.

    Vectorised over the ``n`` pairs; give it a few pairs at a time (:data:`CHUNK_PAIRS`) so the
    temporaries stay in cache, as :func:`pair_statistics` does. Cell sums are float32 matrix
    products and the histogram sums float64, so results equal a pixel-by-pixel float64
    computation to float32 rounding.
    """
    n, h, w, _ = flow.shape
    gy, gx = grid
    if not (1 <= gy <= h and 1 <= gx <= w):
        raise ConfigError(f"grid {grid} does not fit frames of {h}x{w} pixels")
    dx, dy = np.ascontiguousarray(flow[..., 0]), np.ascontiguousarray(flow[..., 1])  # (n, y, x) each
    mag, angle = cv2.cartToPolar(dx.reshape(-1, w), dy.reshape(-1, w), angleInDegrees=True)  # [0, 360), ~0.3° accurate
    mag, angle = mag.reshape(n, -1), angle.reshape(n, -1)
    width = np.float32(360.0 / ANGLE_BINS)
    angle += width / 2  # bin k is centred on k * width
    angle /= width
    bins = angle.astype(np.uint8)
    bins &= ANGLE_BINS - 1  # 16 (the upper half of bin 0) -> 0
    slots = (bins + _lanes(h * w)).astype(np.intp)  # (n, pixels): lane * ANGLE_BINS + bin
    slots += np.arange(0, n * LANES * ANGLE_BINS, LANES * ANGLE_BINS)[:, None]  # each pair its own slots
    lanes = np.bincount(slots.ravel(), mag.ravel(), n * LANES * ANGLE_BINS).reshape(n, LANES, ANGLE_BINS)
    weight = lanes.sum(axis=1)  # magnitude-weighted angle histogram (n, ANGLE_BINS)
    mode = weight.argmax(axis=1)
    count = np.count_nonzero(bins == mode[:, None].astype(np.uint8), axis=1)
    mode_mag = weight[np.arange(n), mode] / np.maximum(count, 1)
    mean_mag = weight.sum(axis=1) / (h * w)
    still = mean_mag < STILL_MAG
    rows, cols = _cell_matrix(h, gy).T, _cell_matrix(w, gx)
    sums = np.stack([(rows @ plane) @ cols for plane in (dx, dy)], axis=-1)  # (n, gy, gx, 2) px/frame sums
    return {
        "flow_dx": (sums[..., 0].sum(axis=(1, 2), dtype=np.float64) / (h * w)).astype(np.float32),
        "flow_dy": (sums[..., 1].sum(axis=(1, 2), dtype=np.float64) / (h * w)).astype(np.float32),
        "flow_mag": mean_mag.astype(np.float32),
        "flow_angle": np.where(still, np.nan, mode * float(width)).astype(np.float32),
        "flow_dom_dx": np.where(still, 0.0, _BIN_COS[mode] * mode_mag).astype(np.float32),
        "flow_grid": (sums / (rows.sum(axis=1)[:, None] * cols.sum(axis=0))[..., None]).astype(np.float32),
    }


def pair_statistics(
    gray_a: np.ndarray, gray_b: np.ndarray, method: str = "farneback", grid: tuple[int, int] = (4, 4)
) -> dict[str, np.ndarray]:
    """Statistics of the flow ``gray_a[i] -> gray_b[i]`` (uint8 ``(n, y, x)`` each), taken
    :data:`CHUNK_PAIRS` pairs at a time while their flow is still in cache."""
    n, h, w = gray_a.shape
    out = empty_statistics(n, grid)
    buffer = np.empty((min(n, CHUNK_PAIRS), h, w, 2), np.float32)
    for start in range(0, n, CHUNK_PAIRS):
        part = slice(start, min(start + CHUNK_PAIRS, n))
        flow = dense_flow(gray_a[part], gray_b[part], method, buffer[: part.stop - start])
        for name, values in flow_statistics(flow, grid).items():
            out[name][part] = values
    return out


def flow_pairs(
    frames_a: np.ndarray, frames_b: np.ndarray, method: str = "farneback", grid: tuple[int, int] = (4, 4)
) -> dict[str, np.ndarray]:
    """Statistics of the pairs ``frames_a[i] -> frames_b[i]`` (RGB uint8 ``(n, y, x, 3)`` each)."""
    if frames_a.shape != frames_b.shape:
        raise ValueError(f"frame pairs need equal shapes, got {frames_a.shape} and {frames_b.shape}")
    return pair_statistics(to_gray(frames_a), to_gray(frames_b), method, grid)


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
        for name, values in pair_statistics(gray[idx], gray[idx + 1], method, grid).items():
            out[name][idx] = values
    return out


def concat_statistics(parts: list[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Join per-block statistics in block order."""
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
