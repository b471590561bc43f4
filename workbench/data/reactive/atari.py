"""Reactive Atari players reading object positions from the 2600's RAM (``obs.state["ram"]``).

Enduro: RAM addresses from OC_Atari's Enduro extractor (k4ntz/OC_Atari, ``ocatari/ram/enduro.py``):
bytes 27-33 hold one opponent car per depth slot (27 = nearest the player, 33 = farthest; 0 =
empty); bit 4 clear = centre lane, else bit 0 set = right lane, clear = left lane. Byte 46
(signed) is the road's lateral offset — measured here: it predicts the road centre's screen x at
the player's row (row 146) as ``87 + 0.92 * byte46`` (r = 0.96 over 1,072 frames), the player's car
staying near screen x 80 on a road 93 px wide. Our pixel check of the lane bits found them only
loosely separated, so ``player_lane`` / lane matches are approximate; the depth slots are exact.

Pong: AtariARI's annotations (Anand et al. 2019, ``atariari/benchmark/ram_annotations.py``):
player paddle y = byte 51, ball y = byte 54 (0 while no ball is in play). RIGHT moves the paddle up.
The paddle's centre sits at ``ball_y ≈ paddle_y - 2`` (measured: that aim wins points from the CPU).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..runners import Observation
from . import ReactivePlayer

#: Enduro RAM (see the module docstring)
ENDURO_SLOTS, ENDURO_ROAD = slice(27, 34), 46
#: screen geometry at the player's row: road centre = CENTRE0 + ROAD_GAIN * byte46; lanes are thirds of ROAD_WIDTH
CENTRE0, ROAD_GAIN, PLAYER_X, ROAD_WIDTH = 87.0, 0.92, 80.0, 93.0
NO_CAR = 7  # ``ahead_gap`` when no car is ahead in the player's lane
PONG_PADDLE, PONG_BALL, PONG_AIM = 51, 54, -2
LEFT, NEUTRAL, RIGHT = 0, 1, 2

DECISION = {"name": "decision", "kind": "categorical", "role": "state",
            "description": "the reactive player's choice at the frame its inputs react to ('wait' before its first reaction)"}


def signed(byte: int) -> int:
    return int(byte) - 256 if byte & 128 else int(byte)


class EnduroDriver(ReactivePlayer):
    """Accelerates down the road, brakes when a car is right ahead in its lane, swerves for one
    a little further up, and steers back to the road centre when it drifts toward the edge.

    Settings (``game_cfg["enduro"]``): ``brake_gap`` and ``swerve_gap``, in depth slots.
    """

    id = "enduro"
    IDLE = {"steer": NEUTRAL, "accel": 1, "brake": 0}
    CHOICES = {"steer": [LEFT, NEUTRAL, RIGHT], "accel": [0, 1], "brake": [0, 1]}
    DEFAULTS = {"brake_gap": 1, "swerve_gap": 3}
    WHY = (
        {"name": "ahead_gap", "kind": "continuous", "units": "depth slots", "role": "state",
         "description": "depth slot of the nearest car ahead in the player's lane (0 = alongside, 7 = none)"},
        {"name": "car_lane", "kind": "continuous", "units": "lane", "role": "state",
         "description": "lane (0 left, 1 centre, 2 right) of the nearest car in any lane (NaN = none)"},
        {"name": "player_lane", "kind": "continuous", "units": "lane", "role": "state",
         "description": "the player's lane (0 left, 1 centre, 2 right) from the road offset"},
        {"name": "road_offset", "kind": "continuous", "units": "px", "role": "state",
         "description": "player x minus the road centre x at the player's row (negative = left of centre)"},
        {**DECISION, "classes": ["wait", "cruise", "swerve_left", "swerve_right", "brake", "recentre_left",
                                 "recentre_right"]},
    )

    def perceive(self, obs: Observation) -> dict[str, Any]:
        slots = obs.state["ram"][ENDURO_SLOTS].astype(int)
        lanes = np.where(slots & 16 == 0, 1, np.where(slots & 1, 2, 0))
        offset = PLAYER_X - (CENTRE0 + ROAD_GAIN * signed(obs.state["ram"][ENDURO_ROAD]))
        lane = 0 if offset < -ROAD_WIDTH / 6 else 2 if offset > ROAD_WIDTH / 6 else 1
        mine = np.flatnonzero((slots != 0) & (lanes == lane))
        cars = np.flatnonzero(slots != 0)
        gap = int(mine[0]) if len(mine) else NO_CAR
        why = {"ahead_gap": float(gap), "car_lane": float(lanes[cars[0]]) if len(cars) else np.nan,
               "player_lane": float(lane), "road_offset": float(offset)}
        if gap <= self.p["brake_gap"]:
            choice = "brake"
        elif gap <= self.p["swerve_gap"]:
            choice = "swerve_right" if lane == 0 or (lane == 1 and offset < 0) else "swerve_left"
        elif abs(offset) > ROAD_WIDTH / 3:
            choice = "recentre_right" if offset < 0 else "recentre_left"
        else:
            choice = "cruise"
        return {**why, "decision": choice}

    def decide(self, why: Mapping[str, Any]) -> dict[str, Any]:
        choice = why["decision"]
        steer = RIGHT if choice.endswith("right") else LEFT if choice.endswith("left") else NEUTRAL
        return {"steer": steer, "accel": int(choice != "brake"), "brake": int(choice == "brake")}


class PaddlePlayer(ReactivePlayer):
    """Pong: moves its paddle toward where the ball will be when it reacts (the ball's height plus
    its last step's motion times the reaction delay) while a ball is in play, else keeps still.
    The paddle is fast (~25 RAM units a step) and coasts, so the player foresees its own paddle like a
    human's efference copy: from its last step's motion and the moves it has already decided but not
    yet made, where the paddle would come to rest if it let go now; it aims that rest point at the ball.

    Settings (``game_cfg["paddle"]``): ``deadzone`` (RAM units): aim errors this small are left alone;
    ``coast`` and ``push``: the paddle's motion model, per step ``v <- coast * v + push * direction``
    (fitted on a random player's RAM: 0.62 and 10 units, R^2 > 0.9).
    """

    id = "paddle"
    IDLE = {"steer": NEUTRAL}
    CHOICES = {"steer": [LEFT, NEUTRAL, RIGHT]}
    DEFAULTS = {"deadzone": 10.0, "coast": 0.62, "push": 10.0}
    WHY = (
        {"name": "ball_y", "kind": "continuous", "units": "RAM units", "role": "state",
         "description": "ball height (RAM byte 54, AtariARI; NaN while no ball is in play)"},
        {"name": "paddle_y", "kind": "continuous", "units": "RAM units", "role": "state",
         "description": "the player's paddle height (RAM byte 51, AtariARI)"},
        {"name": "aim_error", "kind": "continuous", "units": "RAM units", "role": "state",
         "description": "the ball's height foreseen one reaction delay ahead minus where the paddle centre"
                        " would come to rest after the moves already decided (negative = above; NaN = no ball)"},
        {**DECISION, "classes": ["wait", "up", "down", "still"]},
    )

    def start(self) -> None:
        self.last_ball = self.last_paddle = np.nan

    def rest_point(self, paddle: float) -> float:
        """Where the paddle stops if, after the moves still queued behind the reaction delay, it is let go."""
        p, v = paddle, np.nan_to_num(paddle - self.last_paddle)
        for want, _ in self.seen:
            v = self.p["coast"] * v + self.p["push"] * {RIGHT: -1, LEFT: 1}.get(want["steer"], 0)
            p += v
        return p + v * self.p["coast"] / (1 - self.p["coast"])

    def perceive(self, obs: Observation) -> dict[str, Any]:
        ram = obs.state["ram"]
        ball, paddle = float(ram[PONG_BALL]), float(ram[PONG_PADDLE])
        ball = ball if ball > 0 else np.nan
        motion = 0.0 if np.isnan(self.last_ball) or np.isnan(ball) else ball - self.last_ball
        error = ball + motion * self.reflexes.delay - (self.rest_point(paddle) + PONG_AIM)
        self.last_ball, self.last_paddle = ball, paddle
        choice = "still" if not abs(error) > self.p["deadzone"] else "up" if error < 0 else "down"
        return {"ball_y": ball, "paddle_y": paddle, "aim_error": error, "decision": choice}

    def decide(self, why: Mapping[str, Any]) -> dict[str, Any]:
        return {"steer": {"up": RIGHT, "down": LEFT}.get(why["decision"], NEUTRAL)}
