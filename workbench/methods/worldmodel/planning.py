"""Controllers in use (seed 002 §7, appendices A and C): rollouts driven by a controller instead
of the IDM, and goal-reaching planning with the Cross-Entropy Method.

Planning (appendix A, "Planning protocol for DROID"): from the representation ``s_t`` of a
held-out clip's first frame and that of its last frame ``s_g = s_{t+H}``, CEM searches
standardised real-action sequences ``a_{t:t+H-1}`` minimising ``‖s_g - ŝ_{t+H}‖₂``, where
``ŝ_{i+1} = p(ŝ_i, c(a_i, ŝ_i))`` (Eq. 2) unrolls the world model through the controller ``c`` (or,
for the action-conditioned baseline, through its own action embedding). CEM keeps a Gaussian
over sequences, initialised at zero mean and unit variance (actions are standardised), samples
``N = 300`` candidates, refits to the ``K = 10`` best, ``I = 15`` times, horizon ``H = 3``.

The score is the paper's Eq. 3: ``|Σ a_plan - Σ a_true|`` per action column, for an action space
whose actions add up over time — ``motion`` (first_person: forward/left displacement in the
player's frame, map units, and turn, degrees) — plus the L1 over columns in standard deviations.
Baselines: random actions (one draw from CEM's initial distribution) and standing still.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from ...core.errors import ConfigError, DataError
from ...engine.card import ModelCard
from ...frames.actions import ActionSpace
from ...frames.stream import FrameReader
from ...frames.split import SPLITS
from .evaluate import ModelRef, clip_index_for, infer_latents, l1, load_clips, resolve_model, rolled_out
from .model import LatentActionWorldModel
from .trajectory import ate, integrate_motion, rpe

@dataclass
class CEMResult:
    """The best sequence found (``best``, shape of the problem), its ``cost``, the final Gaussian
    (``mean``, ``std``) and the best cost after each iteration (``history``)."""

    best: torch.Tensor
    cost: float
    mean: torch.Tensor
    std: torch.Tensor
    history: list[float] = field(default_factory=list)


@torch.no_grad()
def cem(cost: Callable[[torch.Tensor], torch.Tensor], shape: Sequence[int], n_samples: int = 300, top_k: int = 10,
        iterations: int = 15, init_mean: torch.Tensor | None = None, init_std: float | torch.Tensor = 1.0,
        seed: int = 0, device: str | torch.device = "cpu") -> CEMResult:
    """Minimise ``cost`` (``(N, *shape)`` candidates -> ``(N,)`` costs) with the Cross-Entropy
    Method: sample ``n_samples`` from a diagonal Gaussian, refit mean and std to the ``top_k``
    lowest-cost ones, ``iterations`` times; the best candidate ever seen is returned."""
    if not 1 <= top_k <= n_samples:
        raise ConfigError(f"top_k must be in [1, n_samples={n_samples}], got {top_k}")
    generator = torch.Generator(device=device).manual_seed(int(seed))
    mean = torch.zeros(tuple(shape), device=device) if init_mean is None else init_mean.to(device).float().clone()
    std = torch.ones_like(mean) * torch.as_tensor(init_std, dtype=mean.dtype, device=device)
    best, best_cost, history = mean.clone(), float("inf"), []
    for _ in range(int(iterations)):
        noise = torch.randn((n_samples, *mean.shape), generator=generator, device=device)
        candidates = mean + std * noise
        costs = cost(candidates)
        order = costs.argsort()[:top_k]
        elites = candidates[order]
        if float(costs[order[0]]) < best_cost:
            best, best_cost = candidates[order[0]].clone(), float(costs[order[0]])
        mean, std = elites.mean(dim=0), elites.std(dim=0, unbiased=False)
        history.append(best_cost)
    return CEMResult(best, best_cost, mean, std, history)


def drive(world: LatentActionWorldModel, s0: torch.Tensor, actions: torch.Tensor,
          controller: torch.nn.Module | None = None, window: int | None = None) -> torch.Tensor:
    """Unroll ``world`` from ``s0 (N, ...)`` under standardised actions ``(N, H, A)``: through
    ``controller`` (closed loop: it sees each predicted state; discrete latents snapped to codes)
    or, without one, through an action-conditioned world model's embedding. ``(N, H, ...)``;
    ``window`` as in :meth:`LatentActionWorldModel.rollout`."""
    if controller is None:
        if world.family != "action":
            raise ConfigError(f"without a controller the world model must be action-conditioned, not {world.family!r}")
        return world.rollout(s0, world.action_embed(actions), window=window)
    return world.rollout(s0, lambda h, s: world.snap(controller(actions[:, h], s)), steps=actions.shape[1],
                         window=window)


def _latent_space(card: ModelCard) -> ActionSpace:
    return ActionSpace(**card.extras["action_space"])


@torch.no_grad()
def controller_rollouts(world: ModelRef, controllers: Sequence[ModelRef], split: str = "test", n_clips: int = 128,
                        seed: int = 0, device: str | torch.device | None = None, games: Sequence[str] | None = None,
                        per_clip: bool = False) -> pd.DataFrame:
    """Rollout error per horizon of the world model driven by its IDM's latents (``idm``), by
    each controller from the clip's true actions (``controller``), by the controller from another
    clip's actions (``random_actions``: the random-action baseline) and by zero latents
    (``zero``). All from the clip's first frame, against the true representations.

    Columns: controller_id, kind, action_space, latent, horizon, n, error; with ``per_clip``
    one row per clip too (``clip``, ``game``; no ``n``). ``games`` restricts the clips.
    """
    net, card = resolve_model(world, device)
    rows = []
    for ref in controllers:
        ctrl, ccard = resolve_model(ref, device)
        if ccard.extras.get("world_model") != card.model_id:
            raise ConfigError(f"controller {ccard.model_id} was trained for {ccard.extras.get('world_model')!r},"
                             f" not {card.model_id!r}")
        batch = load_clips(net, card, split, n_clips, action_space=ccard.extras["action_space"], games=games)
        s, u = batch.s, batch.actions
        shuffled = u[torch.from_numpy(np.random.default_rng(seed).permutation(len(u)))]
        z = infer_latents(net, s)
        errors = {"idm": l1(rolled_out(net, s[:, 0], z), s[:, 1:]),
                  "controller": l1(drive(net, s[:, 0], u, ctrl), s[:, 1:]),
                  "random_actions": l1(drive(net, s[:, 0], shuffled, ctrl), s[:, 1:]),
                  "zero": l1(rolled_out(net, s[:, 0], torch.zeros_like(z)), s[:, 1:])}
        head = {"controller_id": ccard.model_id, "kind": ccard.extras["kind"],
                "action_space": ccard.extras["action_space"]["name"]}
        game = batch.index.game_names()[batch.positions]
        for latent, err in errors.items():
            for h in range(err.shape[1]):
                rows.append(pd.DataFrame({**head, "latent": latent, "horizon": h + 1, "clip": np.arange(len(err)),
                                          "game": game, "error": err[:, h]}))
    clips = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    if per_clip or clips.empty:
        return clips
    group = ["controller_id", "kind", "action_space", "latent", "horizon"]
    return clips.groupby(group, sort=False).agg(n=("error", "size"), error=("error", "mean")).reset_index()


def plan(world: LatentActionWorldModel, s0: torch.Tensor, goal: torch.Tensor, controller: torch.nn.Module | None = None,
         horizon: int = 3, n_samples: int = 300, top_k: int = 10, iterations: int = 15, seed: int = 0,
         straight: bool = False) -> CEMResult:
    """CEM over standardised action sequences ``(horizon, A)`` from ``s0 (C, G, G)`` towards
    ``goal (C, G, G)``; cost ``‖goal - ŝ_H‖₂``, unrolling from the last state only as in the
    paper's Eq. 2 (see :func:`drive` for ``controller``). ``straight`` searches one action ``(A,)``
    repeated over the horizon (appendix A, RECON: a straight-line trajectory); ``best`` is always
    the whole ``(horizon, A)`` sequence."""
    action_dim = controller.action_dim if controller is not None else world.action_dim

    def sequences(candidates: torch.Tensor) -> torch.Tensor:
        return candidates.unsqueeze(-2).expand(*candidates.shape[:-1], horizon, action_dim) if straight else candidates

    def cost(candidates: torch.Tensor) -> torch.Tensor:
        final = drive(world, s0.expand(len(candidates), *s0.shape), sequences(candidates), controller, window=1)[:, -1]
        return (final - goal).flatten(1).norm(dim=1)

    result = cem(cost, (action_dim,) if straight else (horizon, action_dim), n_samples, top_k, iterations, seed=seed,
                 device=s0.device)
    result.best = sequences(result.best).contiguous()
    return result


def _displacement_errors(space: ActionSpace, planned: np.ndarray, true: np.ndarray) -> dict:
    """``|Σ planned - Σ true|`` per column (raw units) and their sum in standard deviations."""
    gap = np.abs(space.raw(planned).sum(axis=0) - true.sum(axis=0))
    return {**{f"error_{c}": float(g) for c, g in zip(space.columns, gap)},
            "l1_std": float((gap / np.asarray(space.std)).sum())}


def _planner_parts(world: LatentActionWorldModel, planner: torch.nn.Module):
    """``(world model to unroll, controller or None)``: a controller drives ``world``; a world
    model (action-conditioned, :func:`_checked_planners`) drives itself."""
    if isinstance(planner, LatentActionWorldModel):
        return planner, None
    return world, planner


@dataclass
class Episodes:
    """Held-out planning episodes: clips of ``horizon + 1`` frames with their raw ``motion``
    actions ``(E, H, A)``, uint8 ``frames (E, H+1, S, S, 3)``, ``games``, clip ``positions`` and
    the recorded ``poses (E, H+1, 3)`` (x, y, yaw)."""

    positions: np.ndarray
    actions: np.ndarray
    frames: np.ndarray
    games: np.ndarray
    poses: np.ndarray


def held_out_episodes(net: LatentActionWorldModel, card: ModelCard, split: str = "test", n_episodes: int = 64,
                      horizon: int = 3, seed: int = 0, games: Sequence[str] | None = None) -> Episodes:
    """``n_episodes`` clips of ``split`` (of ``games`` when given) drawn with ``seed`` (the same
    ones for every planner)."""
    index = clip_index_for(card, length=horizon + 1, games=games).with_actions("motion")
    candidates = np.flatnonzero((index.split == SPLITS.index(split)) & index.action_mask())
    if not len(candidates):
        raise DataError(f"no {split} clips of {horizon + 1} frames with motion actions")
    rng = np.random.default_rng(seed)
    positions = np.sort(rng.choice(candidates, size=min(n_episodes, len(candidates)), replace=False))
    frames = FrameReader(index.sources, net.input_size, 16).batch(index, positions)
    return Episodes(positions, index.clip_actions(positions), frames, index.game_names()[positions],
                    index.clip_poses(positions))


@torch.no_grad()
def planning_eval(world: ModelRef, controllers: Sequence[ModelRef] = (), action_model: ModelRef | None = None,
                  split: str = "test", n_episodes: int = 64, horizon: int = 3, n_samples: int = 300, top_k: int = 10,
                  iterations: int = 15, seed: int = 0, device: str | torch.device | None = None,
                  games: Sequence[str] | None = None) -> pd.DataFrame:
    """Goal-reaching planning on held-out clips of ``horizon + 1`` frames (module docstring).

    Methods: each controller through ``world`` (``controller:<kind>``), the action-conditioned
    ``action_model`` (``action_model``), ``random`` and ``still`` baselines. Every planner's
    action space must be ``motion``. Columns: episode, game, method, planner_id, error_forward,
    error_left, error_turn (map units, map units, degrees), l1_std, cost (final distance to the
    goal representation; NaN for baselines).
    """
    net, card, planners, space, episodes = _evaluation_setup(world, controllers, action_model, split, n_episodes,
                                                             horizon, seed, device, games)
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(len(episodes.positions)):
        base = {"episode": e, "game": episodes.games[e]}
        baselines = {"random": rng.standard_normal((horizon, len(space.columns))).astype(np.float32),
                     "still": space.standardize(np.zeros((horizon, len(space.columns))))}
        for method, actions in baselines.items():
            rows.append({**base, "method": method, "planner_id": "",
                         **_displacement_errors(space, actions, episodes.actions[e]), "cost": np.nan})
        for method, pcard, result in _plans(net, planners, episodes, e, horizon, n_samples, top_k, iterations, seed):
            rows.append({**base, "method": method, "planner_id": pcard.model_id,
                         **_displacement_errors(_latent_space(pcard), result.best.cpu().numpy(), episodes.actions[e]),
                         "cost": result.cost})
    return pd.DataFrame(rows).assign(world_model=card.model_id)


def _checked_planners(card: ModelCard, controllers: Sequence[ModelRef], action_model: ModelRef | None,
                      device) -> list[tuple[torch.nn.Module, ModelCard]]:
    """The planners of a world model (its controllers, then an action-conditioned model), each
    checked to belong to it and to act in the additive ``motion`` space."""
    planners = [resolve_model(c, device) for c in controllers]
    if action_model is not None:
        planners.append(resolve_model(action_model, device))
    if not planners:
        raise ConfigError("give at least one controller or an action-conditioned model to plan with")
    for model, pcard in planners:
        if pcard.extras.get("world_model", card.model_id) != card.model_id:
            raise ConfigError(f"controller {pcard.model_id} was trained for {pcard.extras['world_model']!r},"
                             f" not {card.model_id!r}")
        if isinstance(model, LatentActionWorldModel) and model.family != "action":
            raise ConfigError(f"{pcard.model_id} is not action-conditioned (family {model.family!r})")
        space = pcard.extras.get("action_space") or {}
        if space.get("name") != "motion":
            raise ConfigError(f"{pcard.model_id} acts in {space.get('name')!r}; planning is scored on"
                             " additive 'motion' actions: train it with action_space='motion'")
    return planners


def _evaluation_setup(world: ModelRef, controllers: Sequence[ModelRef], action_model: ModelRef | None, split: str,
                      n_episodes: int, horizon: int, seed: int, device, games: Sequence[str] | None):
    """What :func:`planning_eval` and :func:`navigation_eval` share: the world model and its card,
    the checked planners, the (first planner's) action space and the held-out episodes."""
    net, card = resolve_model(world, device)
    planners = _checked_planners(card, controllers, action_model, device)
    episodes = held_out_episodes(net, card, split, n_episodes, horizon, seed, games)
    return net, card, planners, _latent_space(planners[0][1]), episodes


def _plans(net: LatentActionWorldModel, planners, episodes: Episodes, e: int, horizon: int, n_samples: int, top_k: int,
           iterations: int, seed: int, straight: bool = False):
    """``(method, planner card, CEMResult)`` of each planner on episode ``e`` (goal: its last frame)."""
    for model, pcard in planners:
        planner_world, controller = _planner_parts(net, model)
        s = planner_world.encode(episodes.frames[e:e + 1])[0]
        result = plan(planner_world, s[0], s[-1], controller, horizon, n_samples, top_k, iterations, seed + e, straight)
        yield ("action_model" if controller is None else f"controller:{pcard.extras['kind']}"), pcard, result


def _trajectory_errors(space: ActionSpace, planned: np.ndarray, poses: np.ndarray) -> dict:
    """ATE and RPE of standardised actions ``(H, A)`` integrated from the first recorded pose
    against the recorded poses ``(H+1, 3)``."""
    route = integrate_motion(poses[0], space.raw(planned))
    rpe_trans, rpe_rot = rpe(route, poses)
    return {"ate": float(ate(route, poses)), "rpe": float(rpe_trans), "rpe_rot": float(rpe_rot)}


@torch.no_grad()
def navigation_eval(world: ModelRef, controllers: Sequence[ModelRef] = (), action_model: ModelRef | None = None,
                    split: str = "test", n_episodes: int = 64, horizon: int = 8, n_samples: int = 120,
                    top_k: int = 10, iterations: int = 1, seed: int = 0, device: str | torch.device | None = None,
                    games: Sequence[str] | None = None) -> pd.DataFrame:
    """Navigation planning, appendix A's RECON protocol (after NWM), on held-out clips of
    ``horizon + 1`` frames: CEM with ``N = 120`` candidates and one iteration searches one
    standardised ``motion`` action that, repeated over ``H = 8`` steps (a straight line), brings the
    world model from the first frame's representation closest to the last frame's. The plan is
    integrated from the recorded start pose and scored against the recorded poses
    (:mod:`workbench.methods.worldmodel.trajectory`): ``ate`` (map units), ``rpe`` (map units per step),
    ``rpe_rot`` (degrees per step). Baselines: ``random`` (one straight line drawn from CEM's
    initial distribution), ``still`` (no motion) and ``straight_fit`` (the clip's mean true action
    repeated: what a straight line can reach when it knows the answer — a floor, not a planner).

    Columns: episode, game, method, planner_id, ate, rpe, rpe_rot, cost, world_model.
    """
    net, card, planners, space, episodes = _evaluation_setup(world, controllers, action_model, split, n_episodes,
                                                             horizon, seed, device, games)
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(len(episodes.positions)):
        base = {"episode": e, "game": episodes.games[e]}
        baselines = {"random": rng.standard_normal(len(space.columns)),
                     "still": space.standardize(np.zeros(len(space.columns))),
                     "straight_fit": space.standardize(episodes.actions[e].mean(axis=0))}
        for method, action in baselines.items():
            line = np.repeat(np.asarray(action, np.float32)[None], horizon, axis=0)
            rows.append({**base, "method": method, "planner_id": "",
                         **_trajectory_errors(space, line, episodes.poses[e]), "cost": np.nan})
        for method, pcard, result in _plans(net, planners, episodes, e, horizon, n_samples, top_k, iterations, seed,
                                            straight=True):
            rows.append({**base, "method": method, "planner_id": pcard.model_id,
                         **_trajectory_errors(_latent_space(pcard), result.best.cpu().numpy(), episodes.poses[e]),
                         "cost": result.cost})
    return pd.DataFrame(rows).assign(world_model=card.model_id)


@torch.no_grad()
def planning_filmstrip(world: ModelRef, planner: ModelRef, episode: int = 0, split: str = "test", n_episodes: int = 64,
                       horizon: int = 3, n_samples: int = 300, top_k: int = 10, iterations: int = 15, seed: int = 0,
                       device: str | torch.device | None = None) -> dict[str, np.ndarray]:
    """A planning rollout as filmstrip rows, uint8 ``(H+1, S, S, 3)`` each: ``real`` (the held-out
    clip, its last frame the goal), ``planned`` (its first frame, then the decoded states the
    chosen plan reaches) and ``goal`` (the goal frame repeated, for side-by-side comparison).
    ``episode`` indexes the episodes :func:`planning_eval` scores with the same arguments."""
    net, card = resolve_model(world, device)
    model, pcard = resolve_model(planner, device)
    episodes = held_out_episodes(net, card, split, n_episodes, horizon, seed)
    if not 0 <= episode < len(episodes.positions):
        raise ConfigError(f"episode must be in [0, {len(episodes.positions) - 1}], got {episode}")
    planner_world, controller = _planner_parts(net, model)
    frames = episodes.frames[episode]
    s = planner_world.encode(frames[None])[0]
    result = plan(planner_world, s[0], s[-1], controller, horizon, n_samples, top_k, iterations, seed + episode)
    reached = drive(planner_world, s[:1], result.best[None], controller, window=1)[0]
    return {"real": frames, "planned": np.concatenate([frames[:1], planner_world.decode(reached)]),
            "goal": np.repeat(frames[-1:], len(frames), axis=0)}
