"""Model-predictive control in the real game: seed 002's world model + controller + CEM planner.

Every ``replan`` steps the agent encodes the frame it sees, plans ``horizon`` standardised
actions towards the goal frame's representation with :func:`~workbench.methods.worldmodel.planning.plan`
(CEM, cost ``‖s_goal - ŝ_H‖₂``), and sends the first ``replan`` of them as game inputs. It is
scored by what happens in the game, not in the model: real displacement towards the goal position
(:func:`workbench.analysis.levels.goal_table`) and the levels of the pyramid.

The goal of an episode (:func:`episode_goal`) is where the game's scripted player gets in
``goal_steps`` steps from the episode's start: frame and (x, y). It is drawn from the episode's
random stream right after the reset seed, which every agent here draws first, so the levels batch
scores all agents of an episode against the same goal.

A planned action becomes inputs by its controller's action space: ``inputs`` (W/A/D pressed
above 0.5, the mouse delta clipped to the game's range) or ``motion`` (forward / left displacement
and turn: a key pressed where the displacement along it exceeds half its training standard
deviation, the mouse delta = minus the turn, since a positive mouse delta turns right and the
angle counts counter-clockwise). Inputs the game does not accept are dropped.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..core.errors import ConfigError
from ..data.episode import resize_frame
from ..data.recorders import get_engine, planned
from ..data.runners import env_seed
from ..data.runners import EnvRunner, Observation, Transition

#: Steps of the scripted player that define an episode's goal.
GOAL_STEPS = 48


def episode_goal(runner: EnvRunner, rng: np.random.Generator, steps: int = GOAL_STEPS) -> tuple[int, dict]:
    """``(reset seed, goal)``: the seed drawn first from ``rng`` (as every agent does), then the
    frame and position after ``steps`` steps of the scripted player's plan drawn next from ``rng``.
    ``goal``: ``frame`` uint8 (H, W, 3), ``x``, ``y`` (map units), ``steps``. Needs ViZDoom's state."""
    seed = env_seed(rng)
    _, plan = get_engine(runner.game_cfg["engine"]).script(runner.game_cfg, rng, steps)
    act = planned(plan)
    obs = runner.reset(seed)
    for _ in range(steps):
        obs, _, terminated, truncated, _ = runner.step(act(obs, []))
        if terminated or truncated:
            break
    if "pos_x" not in obs.state:
        raise ConfigError(f"game {runner.game_cfg['game']}: goals need the player's position (ViZDoom)")
    return seed, {"frame": obs.frame, "x": float(obs.state["pos_x"]), "y": float(obs.state["pos_y"]), "steps": steps}


def planned_inputs(space: Mapping, raw: np.ndarray, input_space: Mapping[str, Any]) -> dict[str, Any]:
    """Game inputs of one raw (de-standardised) planned action ``(A,)`` of action space ``space``
    (a card's ``action_space``: name, columns, std), restricted to ``input_space`` (module docstring)."""
    values = dict(zip(space["columns"], np.asarray(raw, float)))
    if space["name"] == "motion":
        std = dict(zip(space["columns"], space["std"]))
        forward, left = values["forward"], values["left"]
        values = {"key_w": forward > 0.5 * std["forward"], "key_a": left > 0.5 * std["left"],
                  "key_d": left < -0.5 * std["left"], "mouse_dx": -values["turn"]}
    out: dict[str, Any] = {}
    for name, choices in input_space.items():
        if name not in values:
            out[name] = 0.0 if isinstance(choices, tuple) else 0
        elif isinstance(choices, tuple):
            out[name] = float(np.clip(values[name], *choices))
        else:
            out[name] = int(values[name] > 0.5)
    return out


class MPCAgent:
    """Replans towards the episode's goal every ``replan`` steps (see the module docstring).

    ``planner``: a controller id from the model library (its card names its world model) or an
    action-conditioned world model id. ``id`` = ``mpc-<planner id>``; ``card`` names both models.
    """

    def __init__(self, planner: str, horizon: int = 3, replan: int = 1, n_samples: int = 300, top_k: int = 10,
                 iterations: int = 15, goal_steps: int = GOAL_STEPS, seed: int = 0, device: str = "cpu"):
        from ..methods.worldmodel.evaluate import resolve_model

        if not 1 <= int(replan) <= int(horizon):
            raise ConfigError(f"mpc: replan must be in [1, horizon={horizon}], got {replan}")
        model, card = resolve_model(planner, device)
        world_id = card.get("world_model") or card["model_id"]
        if card["architecture"] == "LatentActionWorldModel":
            if model.family != "action":
                raise ConfigError(f"mpc: {planner} is a latent-action world model; give one of its controllers"
                                 " (or an action-conditioned world model)")
            self.world, self.controller = model, None
        else:
            self.world, self.controller = resolve_model(world_id, device)[0], model
        self.space = dict(card["action_space"])
        self.horizon, self.replan, self.goal_steps = int(horizon), int(replan), int(goal_steps)
        self.cem = {"n_samples": int(n_samples), "top_k": int(top_k), "iterations": int(iterations)}
        self.seed = int(seed)
        self.id = f"mpc-{card['model_id']}"
        self.card = {"agent": "mpc", "planner": card["model_id"], "world_model": world_id,
                     "action_space": self.space["name"], "horizon": self.horizon, "replan": self.replan,
                     **self.cem, "goal_steps": self.goal_steps}
        self.queue: list[dict] = []
        self.goal_rep = None
        self.input_space: dict = {}
        self.costs: list[float] = []

    @staticmethod
    def unavailable(game_cfg: Mapping) -> str | None:
        """MPC plans towards an episode's goal position, which only ViZDoom's state gives."""
        if game_cfg["engine"] != "vizdoom":
            return "MPC plans towards a goal position, which only ViZDoom games give"
        return None

    def _encode(self, frame: np.ndarray) -> torch.Tensor:
        size = self.world.input_size
        return self.world.encode(resize_frame(frame, (size, size))[None, None])[0, 0]

    def begin(self, runner: EnvRunner, rng: np.random.Generator, max_steps: int) -> int:
        seed, goal = episode_goal(runner, rng, self.goal_steps)
        self.goal_rep = self._encode(goal["frame"])
        self.card = {**self.card, "goal": {"x": goal["x"], "y": goal["y"], "steps": goal["steps"]}}
        self.input_space, self.queue, self.costs = runner.input_space(), [], []
        return seed

    @torch.no_grad()
    def act(self, observation: Observation, history: Sequence[Transition]) -> dict[str, Any]:
        from ..methods.worldmodel.planning import plan

        if not self.queue:
            result = plan(self.world, self._encode(observation.frame), self.goal_rep, self.controller, self.horizon,
                          seed=self.seed + observation.step, **self.cem)
            self.costs.append(result.cost)
            std, mean = np.float32(self.space["std"]), np.float32(self.space["mean"])
            raw = result.best.cpu().numpy()[:self.replan] * std + mean
            self.queue = [planned_inputs(self.space, a, self.input_space) for a in raw]
        return self.queue.pop(0)
