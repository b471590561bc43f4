"""A reactive ViZDoom player: turns toward and fires at visible enemies, avoids walls, explores.

The truth comes from the engine (the runner's ``game_state`` with ``objects: true``): the labels
buffer lists the objects on screen with their names and screen boxes (an enemy's bearing is its
box centre's angle from the screen centre: 90 degrees of view over the screen width), the depth
buffer gives the distance to whatever is ahead, and the position game variables the map cells
visited so far. Needs a game with ``attack: true`` and ``objects: true``.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import numpy as np

from ...core.errors import ConfigError
from ..runners import Observation
from . import ReactivePlayer
from .atari import DECISION

#: Doom monster class names (Freedoom keeps Doom's actor names), matched in the labels buffer;
#: corpses (``DeadZombieMan``, ``GibbedMarine``) are decoration, not enemies.
MONSTERS = re.compile(r"^(?!Dead|Gibbed).*(Zombie|Guy|Imp|Demon|Spectre|LostSoul|Caco|Baron|Knight|Revenant"
                      r"|Arachno|Fatso|Pain|Vile|Cyber|Spider|Wolfenstein|Marine)")
FOV = 90.0  # degrees of horizontal view


class DoomHunter(ReactivePlayer):
    """Hunts: walks toward the nearest visible enemy, turning ``turn_gain`` of the way to it each step,
    and fires while it is within ``aim_tolerance`` degrees. Its bearing is the one foreseen once the
    turns already decided (queued behind the reaction delay) are made, as a human's efference copy
    does: aiming at the bearing seen ``delay`` steps ago overshoots. With none in view it walks forward
    (a player that cannot walk, as in defend_the_center, scans by turning ``scan_turn`` a step), turning toward the more open side when a wall is
    nearer than ``wall_depth`` (depth-buffer units), and turns away from map cells it has visited
    ``bored_visits`` times (``cell`` map units square). ``game_cfg["hunter"]`` overrides each.
    """

    id = "hunter"
    IDLE = {"key_w": 0, "key_a": 0, "key_d": 0, "mouse_dx": 0.0, "attack": 0}
    CHOICES = {"key_w": [0, 1], "key_a": [0, 1], "key_d": [0, 1], "attack": [0, 1]}
    WHY = (
        {"name": "enemy_bearing", "kind": "continuous", "units": "degrees", "role": "state",
         "description": "bearing of the nearest visible enemy from the view centre once the turns already"
                        " decided are made (positive = right; NaN = none)"},
        {"name": "enemy_size", "kind": "continuous", "units": "px", "role": "state",
         "description": "screen height of the nearest visible enemy's box (larger = nearer; NaN = none)"},
        {"name": "wall_ahead", "kind": "continuous", "units": "depth units", "role": "state",
         "description": "depth-buffer distance straight ahead (median of the centre strip)"},
        {"name": "open_side", "kind": "continuous", "units": "depth units", "role": "state",
         "description": "mean depth of the right third minus the left third (positive = more room right)"},
        {"name": "cell_visits", "kind": "continuous", "units": "steps", "role": "state",
         "description": "steps already spent in the player's current map cell"},
        {**DECISION, "classes": ["wait", "aim", "fire", "avoid_left", "avoid_right", "explore", "bored"]},
    )
    DEFAULTS = {"aim_tolerance": 4.0, "turn_gain": 0.6, "wall_depth": 12.0, "avoid_turn": 12.0, "cell": 128.0,
                "bored_visits": 60, "bored_turn": 20.0, "scan_turn": 15.0}

    def __init__(self, game_cfg: Mapping):
        super().__init__(game_cfg)
        if not (game_cfg.get("attack") and game_cfg.get("objects")):
            raise ConfigError(f"game {game_cfg.get('game')!r}: the hunter needs attack: true and objects: true")

    def start(self) -> None:
        self.visits: dict[tuple[int, int], int] = {}

    def perceive(self, obs: Observation) -> dict[str, Any]:
        state = self.runner.game_state
        width = state.screen_buffer.shape[1]
        enemies = [(lb.height, (lb.x + lb.width / 2 - width / 2) / width * FOV) for lb in state.labels
                   if MONSTERS.search(lb.object_name)]
        size, bearing = max(enemies) if enemies else (np.nan, np.nan)
        bearing -= sum(want["mouse_dx"] for want, _ in self.seen)  # turning right brings a bearing left
        depth = np.asarray(state.depth_buffer, np.float64)
        h, w = depth.shape
        band = depth[h // 3: 2 * h // 3]
        ahead = float(np.median(band[:, 2 * w // 5: 3 * w // 5]))
        open_side = float(band[:, 2 * w // 3:].mean() - band[:, : w // 3].mean())
        cell = (int(obs.state["pos_x"] // self.p["cell"]), int(obs.state["pos_y"] // self.p["cell"]))
        self.visits[cell] = visits = self.visits.get(cell, 0) + 1
        if enemies:
            choice = "fire" if abs(bearing) <= self.p["aim_tolerance"] else "aim"
        elif ahead < self.p["wall_depth"]:
            choice = "avoid_right" if open_side > 0 else "avoid_left"
        elif visits > self.p["bored_visits"]:
            choice = "bored"
        else:
            choice = "explore"
        return {"enemy_bearing": float(bearing), "enemy_size": float(size), "wall_ahead": ahead,
                "open_side": open_side, "cell_visits": float(visits), "decision": choice}

    def decide(self, why: Mapping[str, Any]) -> dict[str, Any]:
        choice, p = why["decision"], self.p
        turn = {"aim": p["turn_gain"] * np.nan_to_num(why["enemy_bearing"]),
                "fire": p["turn_gain"] * np.nan_to_num(why["enemy_bearing"]),
                "avoid_right": p["avoid_turn"], "avoid_left": -p["avoid_turn"],
                "explore": 0.0 if "key_w" in self.space else p["scan_turn"],
                "bored": p["bored_turn"] if why["open_side"] >= 0 else -p["bored_turn"]}.get(choice, 0.0)
        return {"key_w": int(choice != "avoid_left" and choice != "avoid_right"), "key_a": 0, "key_d": 0,
                "mouse_dx": float(np.clip(turn, -30, 30)), "attack": int(choice == "fire")}
