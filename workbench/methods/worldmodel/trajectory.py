"""Planar trajectories of the first-person player and the navigation planning scores of seed 002
appendix A (the RECON protocol, after NWM): absolute trajectory error (ATE) and relative pose
error (RPE, Sturm et al. 2012) between a planned and the recorded trajectory.

A pose is ``(x, y, yaw)``: map units, map units, degrees (ViZDoom's ``pos_x``, ``pos_y``,
``angle``; yaw counter-clockwise). A ``motion`` action (:mod:`workbench.frames.actions`) is
``(forward, left, turn)``: the step's displacement in the player's frame at its start and the
yaw change, so integrating a clip's recorded actions from its first pose gives back its poses.
Both trajectories start at the same recorded pose, so ATE needs no alignment (aligning them
would hide a wrong heading).
"""

from __future__ import annotations

import numpy as np


def integrate_motion(start: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """Poses ``(..., H+1, 3)`` reached from ``start (..., 3)`` by motion actions ``(..., H, 3)``."""
    start = np.asarray(start, np.float64)
    actions = np.asarray(actions, np.float64)
    poses = [start]
    for h in range(actions.shape[-2]):
        x, y, yaw = np.moveaxis(poses[-1], -1, 0)
        forward, left, turn = np.moveaxis(actions[..., h, :], -1, 0)
        rad = np.radians(yaw)
        poses.append(np.stack([x + forward * np.cos(rad) - left * np.sin(rad),
                               y + forward * np.sin(rad) + left * np.cos(rad), yaw + turn], axis=-1))
    return np.stack(poses, axis=-2)


def _wrap(degrees: np.ndarray) -> np.ndarray:
    return (np.asarray(degrees) + 180.0) % 360.0 - 180.0


def ate(planned: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Absolute trajectory error ``(...)``: RMSE of the positions of poses ``(..., L, 3)`` over
    the steps after the shared start (map units)."""
    gap = np.asarray(planned, np.float64)[..., 1:, :2] - np.asarray(true, np.float64)[..., 1:, :2]
    return np.sqrt((gap ** 2).sum(-1).mean(-1))


def _relative(poses: np.ndarray) -> np.ndarray:
    """Each step's motion ``(..., L-1, 3)`` in the frame of the pose it starts from."""
    d = np.diff(poses[..., :2], axis=-2)
    rad = np.radians(poses[..., :-1, 2])
    return np.stack([d[..., 0] * np.cos(rad) + d[..., 1] * np.sin(rad),
                     -d[..., 0] * np.sin(rad) + d[..., 1] * np.cos(rad), _wrap(np.diff(poses[..., 2], axis=-1))],
                    axis=-1)


def rpe(planned: np.ndarray, true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relative pose error over one-step intervals of poses ``(..., L, 3)``: ``(translation RMSE
    in map units, mean absolute rotation error in degrees)``, each ``(...)``.

    Per step the error is ``E_i = Δtrue_i⁻¹ Δplanned_i`` (Sturm et al.); in the plane its
    translation is ``R_true_iᵀ (t_planned_i - t_true_i)``, whose norm is that of the difference of
    the two relative motions.
    """
    p, q = _relative(np.asarray(planned, np.float64)), _relative(np.asarray(true, np.float64))
    return (np.sqrt(((p[..., :2] - q[..., :2]) ** 2).sum(-1).mean(-1)),
            np.abs(_wrap(p[..., 2] - q[..., 2])).mean(-1))
