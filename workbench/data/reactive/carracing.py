"""A reactive CarRacing driver: steers toward the track's centre line, brakes before bends.

The truth comes from the engine: the car's hull position, angle and speed (``obs.state``) and the
track's centre line (``runner.game.track``: one ``(alpha, beta, x, y)`` point per road tile, in
driving order), never from pixels. The hull's forward direction is ``(-sin angle, cos angle)``
(Box2D car body, +y forward); a positive steering input turns right (clockwise).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..runners import Observation
from . import ReactivePlayer
from .atari import DECISION


class CentreLineDriver(ReactivePlayer):
    """Aims at the centre-line point ``lookahead`` tiles ahead of the nearest one (steering
    proportional to the heading error, plus a pull toward the line, damped by the yaw rate), and looks ``bend_tiles`` ahead:
    above ``bend_speed`` with a bend sharper than ``bend_angle`` coming, it brakes; below
    ``cruise_speed`` it accelerates, else coasts (``game_cfg["centreline"]`` overrides each).
    """

    id = "centreline"
    IDLE = {"steer_value": 0.0, "accel": 0, "brake": 0}
    CHOICES = {"accel": [0, 1], "brake": [0, 1]}
    WHY = (
        {"name": "cross_track", "kind": "continuous", "units": "Box2D units", "role": "state",
         "description": "signed distance from the car to the track's centre line (positive = right of it)"},
        {"name": "heading_error", "kind": "continuous", "units": "radians", "role": "state",
         "description": "angle from the car's heading to the aim point on the centre line (positive = aim is left)"},
        {"name": "yaw_rate", "kind": "continuous", "units": "radians/step", "role": "state",
         "description": "change of the car's angle since the last step (positive = turning left)"},
        {"name": "bend_ahead", "kind": "continuous", "units": "radians", "role": "state",
         "description": "absolute turn of the centre line over the next bend_tiles tiles"},
        {**DECISION, "classes": ["wait", "accelerate", "coast", "brake"]},
    )
    DEFAULTS = {"lookahead": 10, "gain": 0.5, "pull": 0.05, "damping": 4.0, "bend_tiles": 12, "bend_angle": 0.5,
                "bend_speed": 25.0, "cruise_speed": 32.0}

    def start(self) -> None:
        self.last_angle = None

    def perceive(self, obs: Observation) -> dict[str, Any]:
        track = np.asarray(self.runner.game.track, np.float64)  # (n, 4): alpha, beta, x, y
        xy, n = track[:, 2:4], len(track)
        car = np.array([obs.state["car_x"], obs.state["car_y"]])
        i = int(np.argmin(((xy - car) ** 2).sum(1)))
        angle = obs.state["car_angle"]
        yaw_rate = 0.0 if self.last_angle is None else float(angle - self.last_angle)
        self.last_angle = angle
        forward = np.array([-np.sin(angle), np.cos(angle)])
        aim = xy[(i + int(self.p["lookahead"])) % n] - car
        heading_error = float(np.arctan2(forward[0] * aim[1] - forward[1] * aim[0], forward @ aim))
        tangent = xy[(i + 1) % n] - xy[i]
        offset = car - xy[i]
        cross = float((tangent[1] * offset[0] - tangent[0] * offset[1]) / (np.linalg.norm(tangent) + 1e-9))
        beta = np.unwrap(track[[(i + k) % n for k in range(int(self.p["bend_tiles"]) + 1)], 1])
        bend = float(abs(beta[-1] - beta[0]))
        speed = obs.state["car_speed"]
        if bend > self.p["bend_angle"] and speed > self.p["bend_speed"]:
            choice = "brake"
        elif speed < self.p["cruise_speed"]:
            choice = "accelerate"
        else:
            choice = "coast"
        return {"cross_track": cross, "heading_error": heading_error, "yaw_rate": yaw_rate, "bend_ahead": bend,
                "decision": choice}

    def decide(self, why: Mapping[str, Any]) -> dict[str, Any]:
        steer = (-self.p["gain"] * why["heading_error"] - self.p["pull"] * why["cross_track"]
                 + self.p["damping"] * why["yaw_rate"])
        choice = why["decision"]
        return {"steer_value": float(np.clip(steer, -1, 1)), "accel": int(choice == "accelerate"),
                "brake": int(choice == "brake")}
