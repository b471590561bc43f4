"""``workbench levels``: agents x games x episodes in the real games, then seed 003's level table.

A levels run lives in ``<studies>/<run id>/``:

* ``levels.json`` — the configuration (games and caps, episodes, seed, reference agent, encoder),
  the agents, and ``unavailable``: the agents (``game`` = ``"*"``) and agent-game pairs that
  could not play, with the reason (the ViZDoom hunter needs ATTACK; MPC needs a trained planner);
* ``episodes/<agent>/<game>/ep<k>/frames.zarr`` — every finished episode stored like a recording
  (frames, inputs, outcomes, state; the agent's card in its attrs);
* ``rows/<agent>/<game>/ep<k>.json`` — its row of the episode table, written after its store, so a
  killed batch continues with the first episode that has no row (a store without a row is replayed);
* the tables (``write_level_tables``): ``episodes.csv``, ``survival.csv``, ``curiosity.csv``,
  ``curiosity_episodes.csv``, ``utility.csv``, ``goals.csv``, ``level_table.csv``, ``ranks.csv``,
  ``km_curves.csv``, ``magnitude_curves.csv``, ``trajectories.csv`` (ViZDoom positions),
  ``unavailable.csv`` and per
  episode a GIF and a filmstrip under ``viewer/<agent>/<game>/ep<k>.gif|png``.

Episode ``k`` of a game draws from ``episode_rng(seed, game, k)`` whatever the agent, so agents
meet the same starts. Computing is :mod:`workbench.analysis.levels`; this module plays and stores.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, ClassVar, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml
from tqdm.auto import tqdm

from ..core.errors import ConfigError, DataError
from ..analysis import levels as lv
from ..core.locks import hold
from ..core.paths import atomic_write, check_id, studies_dir
from ..data.recorders import episode_rng, get_engine
from ..data.store import open_store
from .agents import Agent, make_agent, unavailable
from .mpc import episode_goal
from .session import find_game, write_episodes

#: Frames per episode in the viewer's GIF and filmstrip (evenly spaced).
VIEWER_FRAMES = 48
FILMSTRIP_FRAMES = 12
RUN_RECORD = "levels.json"


def level_sets() -> dict[str, dict]:
    """The named level sets (``level_sets.yaml``): name -> ``description``, ``games`` {game: cap}."""
    return yaml.safe_load(resources.files(__package__).joinpath("level_sets.yaml").read_text())["sets"]


@dataclass
class LevelsConfig:
    """One levels run: ``games`` {game: cap in steps}, ``agents`` (names for :func:`make_agent`),
    ``episodes`` per agent and game, ``seed``, the ``reference`` agent of the 0-1 normalisations
    (random = 0; the scripted player stands in for the paper's human), the Curiosity ``encoder``
    (a frame autoencoder id from the model library; ``None`` = :func:`~workbench.analysis.levels.pixel_embedding`)
    and the ``run_id`` (default ``levels-<set or games>-n<episodes>-s<seed>``)."""

    games: dict[str, int]
    agents: list[str] = field(default_factory=lambda: ["random", "scripted"])
    episodes: int = 3
    seed: int = 0
    reference: str | None = "scripted"
    encoder: str | None = None
    run_id: str = ""

    FIELD_HELP: ClassVar[dict[str, str]] = {
        "games": "Games and their caps in steps (on the command line: --set, or --game with --max-steps).",
        "agents": "Agents: random, scripted, the reactive players, mpc:<planner id>.",
        "episodes": "Episodes per agent and game.",
        "seed": "Seed of the episodes' random streams.",
        "reference": "Agent scored 1 in the 0-1 normalisations (random = 0); 'none' for no reference.",
        "encoder": "Frame autoencoder id for Curiosity (default: 16x16 pixel embedding).",
        "run_id": "Run folder name under the studies folder (default: made from the set or games, episodes, seed).",
    }

    def __post_init__(self):
        if not self.games or not self.agents:
            raise ConfigError("levels: give at least one game and one agent")
        for game, cap in self.games.items():
            if int(cap) < 1:
                raise ConfigError(f"levels: the cap of {game} must be at least 1 step, got {cap}")
        if int(self.episodes) < 1:
            raise ConfigError(f"levels: episodes must be at least 1, got {self.episodes}")
        self.games = {str(g): int(c) for g, c in self.games.items()}
        self.run_id = check_id(self.run_id or f"levels-{'-'.join(self.games)[:60]}-n{self.episodes}-s{self.seed}",
                               "levels run id")

    @classmethod
    def from_set(cls, level_set: str, max_steps: int | None = None, **kw) -> "LevelsConfig":
        """A run over the games of a named level set (``max_steps`` caps every game lower)."""
        sets = level_sets()
        if level_set not in sets:
            raise ConfigError(f"unknown level set {level_set!r}; known: {', '.join(sets)}")
        games = {g: min(c, max_steps) if max_steps else c for g, c in sets[level_set]["games"].items()}
        episodes, seed = kw.get("episodes", 3), kw.get("seed", 0)
        kw.setdefault("run_id", f"levels-{level_set}-n{episodes}-s{seed}" + (f"-cap{max_steps}" if max_steps else ""))
        return cls(games=games, **kw)


#: The main job's levels run (:func:`run_demo_levels`): its level set, agents, and per catalog size
#: the episodes per agent and game and a cap lower than the set's (None = the set's own caps).
DEMO_SET, DEMO_AGENTS = "demo", ("random", "scripted", "reactive")
DEMO_SIZES = {"tiny": (1, 16), "demo": (3, None), "full": (5, None)}
#: The MPC agent of the main job: seed 002's demo CEM budget, replanning every 3 steps.
DEMO_MPC = {"horizon": 3, "replan": 3, "n_samples": 100, "top_k": 10, "iterations": 5}


def demo_planner(size: str, seed: int) -> tuple[str | None, str]:
    """``(controller id, "")``: a finished controller of the main job's seed 002 run at ``size`` and
    ``seed`` in the model library (its first controller kind, the first latent world model by name),
    or ``(None, why there is none)``."""
    from ..engine.library import list_models
    from ..methods.worldmodel.study import WorldModelStudyConfig

    cfg = WorldModelStudyConfig(dataset="first_person", size=size, seed=seed)
    prefix = f"{cfg.study_id}.ctrl-{cfg.controllers[0]}."  # the run's controller ids (methods.worldmodel.study)
    found = [m for m in list_models() if m.startswith(prefix)]
    if not found:
        return None, (f"no seed 002 {size} controller in the model library (the main job's seed 002 run "
                      f"{cfg.study_id} trains them: `workbench worldmodel study --size {size} --seed {seed}`)")
    return found[0], ""


def run_demo_levels(size: str = "demo", seed: int = 0, progress: bool = True,
                    log: Callable[[str], None] = lambda s: None) -> Path:
    """The main job's levels run: the ``demo`` level set with the random, scripted and reactive
    agents (``DEMO_SIZES`` episodes and cap for ``size``), plus seed 002's MPC planner when the
    main job's seed 002 run has a controller, else MPC recorded as unavailable with the reason."""
    if size not in DEMO_SIZES:
        raise ConfigError(f"levels: no demo run for size {size!r}; sizes: {', '.join(DEMO_SIZES)}")
    episodes, cap = DEMO_SIZES[size]
    cfg = LevelsConfig.from_set(DEMO_SET, max_steps=cap, agents=list(DEMO_AGENTS), episodes=episodes, seed=seed)
    agents = [make_agent(a) for a in cfg.agents]
    planner, why = demo_planner(size, seed)
    if planner is not None:
        from .mpc import MPCAgent

        agents.append(MPCAgent(planner, seed=seed, **DEMO_MPC))
    return run_levels(cfg, progress, log, agents=agents, missing_agents={} if planner else {"mpc": why})
def levels_config(level_set: str = "doom", games: Sequence[str] = (), max_steps: int | None = None,
                  **fields) -> LevelsConfig:
    """The run of the command line: ``games`` (each capped at ``max_steps``, default 1000) if
    given, else the games of ``level_set`` (capped lower by ``max_steps``); ``fields`` are
    :class:`LevelsConfig`'s other fields."""
    if games:
        return LevelsConfig(games={g: max_steps or 1000 for g in games}, **fields)
    return LevelsConfig.from_set(level_set, max_steps=max_steps, **fields)


def run_folder(run_id: str) -> Path:
    return studies_dir() / check_id(run_id, "levels run id")


def list_level_runs() -> list[str]:
    """Ids of the levels runs in the studies folder (newest first)."""
    root = studies_dir()
    runs = [p.parent for p in root.glob(f"*/{RUN_RECORD}")] if root.is_dir() else []
    return [p.name for p in sorted(runs, key=lambda p: p.stat().st_mtime, reverse=True)]


def _episode_paths(folder: Path, agent_id: str, game: str, ep: int) -> tuple[Path, Path]:
    return (folder / "episodes" / agent_id / game / f"ep{ep}" / "frames.zarr",
            folder / "rows" / agent_id / game / f"ep{ep}.json")


def _write_json(path: Path, data: dict) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=1, default=float)))


def _check_record(folder: Path, cfg: LevelsConfig) -> None:
    """Refuse to continue a run made with other games, caps, episodes or seed (agents may be added)."""
    path = folder / RUN_RECORD
    if not path.is_file():
        return
    old = json.loads(path.read_text())["config"]
    fixed = ("games", "episodes", "seed")
    if any(old.get(k) != asdict(cfg)[k] for k in fixed):
        raise ConfigError(f"levels run {cfg.run_id} ({path}) was made with other games, caps, episodes or seed; "
                         "give another --run-id or delete the folder")


def run_levels(cfg: LevelsConfig, progress: bool = True, log: Callable[[str], None] = lambda s: None,
               agents: Sequence[Agent] | None = None, missing_agents: Mapping[str, str] | None = None) -> Path:
    """Play every missing episode of ``cfg`` (resumable), then write the level tables; the run folder.
    ``agents``: ready-made agent objects to play instead of ``cfg.agents`` (e.g. an MPC agent with
    other CEM settings). ``missing_agents``: agents that could not be made, name -> why, recorded as
    unavailable; so is every game an agent cannot play (:func:`~workbench.play.agents.unavailable`)."""
    folder = run_folder(cfg.run_id)
    _check_record(folder, cfg)
    agents = list(agents) if agents is not None else [make_agent(a) for a in cfg.agents]  # mpc without models stops here
    ids = [a.id for a in agents]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"levels: agents with the same id {ids}")
    games = {g: find_game(g) for g in cfg.games}
    folder.mkdir(parents=True, exist_ok=True)
    with hold(folder / "levels.lock", f"levels run {cfg.run_id}"):
        previous = json.loads((folder / RUN_RECORD).read_text()) if (folder / RUN_RECORD).is_file() else {}
        skipped = [{"agent": name, "game": "*", "reason": why} for name, why in (missing_agents or {}).items()]
        skipped += [{"agent": a.id, "game": g, "reason": why} for a in agents for g in cfg.games
                    if (why := unavailable(a, games[g][1]))]
        for item in skipped:
            log(f"levels: {item['agent']} cannot play {item['game']}: {item['reason']}")
        earlier = set(previous.get("agents", [])) - set(ids)  # agents of an earlier call keep their rows
        record = {"config": asdict(cfg), "agents": sorted(earlier | set(ids)),
                  "unavailable": [u for u in previous.get("unavailable", []) if u["agent"] in earlier] + skipped}
        _write_json(folder / RUN_RECORD, record)
        off = {(item["agent"], item["game"]) for item in skipped}
        pairs = [(a, g) for a in agents for g in cfg.games if (a.id, g) not in off]
        todo = [(a, g, ep) for a, g in pairs for ep in range(cfg.episodes)
                if not _episode_paths(folder, a.id, g, ep)[1].is_file()]
        total = len(pairs) * cfg.episodes
        log(f"levels run {cfg.run_id}: {total - len(todo)} of {total} episodes done, {len(todo)} to play")
        goals: dict[tuple[str, int], dict | None] = {}
        with tqdm(total=total, initial=total - len(todo), desc="levels", unit="episode", disable=not progress) as bar:
            for agent, game, ep in todo:
                bar.set_postfix_str(f"{agent.id} {game} ep{ep}")
                entry, game_cfg = games[game]
                if (game, ep) not in goals:
                    goals[game, ep] = _goal(entry, game_cfg, cfg.seed, ep)
                store, row_path = _episode_paths(folder, agent.id, game, ep)
                rows: list[dict] = []
                write_episodes(agent, entry, game_cfg, store, [ep], cfg.seed, cfg.games[game],
                               on_episode=lambda k, episode: rows.append(_row(episode, cfg.games[game], goals[game, k])))
                _write_json(row_path, {"agent": agent.id, "game": game, "seed": ep, "engine": game_cfg["engine"],
                                       "store": str(store.relative_to(folder)), **rows[0]})
                bar.update(1)
        write_level_tables(folder, cfg, progress=progress)
    return folder


def _goal(entry, game_cfg, seed: int, ep: int) -> dict | None:
    """The episode's goal position (ViZDoom games; :func:`~workbench.play.mpc.episode_goal`), else None."""
    if game_cfg["engine"] != "vizdoom":
        return None
    with get_engine("vizdoom").Runner(entry.runner_config(game_cfg), entry.frame_size or (96, 96)) as runner:
        _, goal = episode_goal(runner, episode_rng(seed, game_cfg["game"], ep))
    return {"x": goal["x"], "y": goal["y"]}


def _row(episode, cap: int, goal: dict | None) -> dict:
    """The episode-table fields of a played episode (its runner's labels), with goal distances."""
    row = lv.episode_outcome(episode.labels, cap)
    if goal is not None:
        x, y = episode.labels["pos_x"].astype(float), episode.labels["pos_y"].astype(float)
        row.update(goal_x=goal["x"], goal_y=goal["y"],
                   goal_distance_start=float(np.hypot(x[0] - goal["x"], y[0] - goal["y"])),
                   goal_distance_end=float(np.hypot(x[-1] - goal["x"], y[-1] - goal["y"])))
    return row


def read_episode_rows(folder: Path) -> pd.DataFrame:
    """The episode table of a run: one row per finished episode (scalars only)."""
    rows = [json.loads(p.read_text()) for p in sorted((Path(folder) / "rows").glob("*/*/ep*.json"))]
    if not rows:
        raise DataError(f"levels run {folder}: no finished episodes yet")
    return pd.DataFrame(rows)


def _embedder(encoder: str | None) -> Callable[[np.ndarray], np.ndarray]:
    """Frames ``(n, H, W, 3)`` -> embedding ``(n, d)``: pixels, or a library frame autoencoder's rep."""
    if encoder is None:
        return lv.pixel_embedding
    from ..data.episode import resize_frames
    from ..engine.library import load_model
    from ..methods.worldmodel.model import frames_to_tensor

    net = load_model(encoder, "cpu")

    def embed(frames: np.ndarray) -> np.ndarray:
        x = frames_to_tensor(resize_frames(frames, (net.input_size, net.input_size)), "cpu")
        return net.encode(x).flatten(1).detach().numpy()
    return embed


def episode_arrays(folder: Path, rows: pd.DataFrame, encoder: str | None = None) -> pd.DataFrame:
    """The episode table with its per-step arrays read from the stores: ``embedding`` of the
    :data:`~workbench.analysis.levels.N_SUB` evenly spaced frames Curiosity uses, and the
    ground-truth coverage column of the engine (ViZDoom ``positions``, ALE ``ram`` and, for a ROM
    in :data:`~workbench.analysis.levels.PLAYER_RAM`, ``player_ram``; CarRacing ``tiles`` = the
    indices of the tiles counted so far)."""
    embed = _embedder(encoder)
    out = rows.copy()
    columns = {c: [] for c in ("embedding", *lv.COVERAGE_COLUMNS)}
    roms = {g: find_game(g)[1].get("rom", g) for g in set(rows.loc[rows["engine"] == "ale", "game"])}
    for _, row in rows.iterrows():
        ds = open_store(Path(folder) / row["store"])
        n = ds.sizes["frame"]
        pick = np.unique(np.linspace(0, n - 1, min(lv.N_SUB, n)).round().astype(int))
        columns["embedding"].append(embed(ds["frames"].values[pick]))
        arrays = dict.fromkeys(lv.COVERAGE_COLUMNS)
        if row["engine"] == "vizdoom":
            arrays["positions"] = np.stack([ds["pos_x"].values, ds["pos_y"].values], axis=1)
        elif row["engine"] == "ale":
            arrays["ram"] = ds["ram"].values
            if roms[row["game"]] in lv.PLAYER_RAM:
                arrays["player_ram"] = arrays["ram"][:, list(lv.PLAYER_RAM[roms[row["game"]]])]
        else:
            arrays["tiles"] = np.arange(int(np.nanmax(ds["tiles"].values)))
        for name, value in arrays.items():
            columns[name].append(value)
    for name, values in columns.items():
        out[name] = pd.Series(values, index=out.index, dtype=object)
    return out


def write_level_tables(folder: Path, cfg: LevelsConfig, progress: bool = False) -> dict[str, pd.DataFrame]:
    """Compute and write every table of a run (module docstring) from its finished episodes."""
    folder = Path(folder)
    rows = read_episode_rows(folder)
    episodes = episode_arrays(folder, rows, cfg.encoder)
    agents = set(rows["agent"])
    random_agent = "random" if "random" in agents else None
    reference = cfg.reference if cfg.reference in agents and cfg.reference != random_agent else None
    survival = lv.survival_table(episodes, random_agent, reference)
    curiosity_ep = lv.curiosity_episodes(episodes, random_agent=random_agent)
    curiosity = lv.curiosity_table(curiosity_ep, random_agent, reference)
    utility = lv.utility_table(episodes, random_agent, reference)
    tables = {"episodes": rows, "survival": survival, "curiosity": curiosity, "curiosity_episodes": curiosity_ep,
              "utility": utility, "goals": lv.goal_table(rows),
              "level_table": lv.level_table(survival, curiosity, utility),
              "ranks": lv.level_ranks(survival, curiosity, utility, reference),
              "km_curves": lv.survival_curves(episodes),
              "magnitude_curves": lv.magnitude_curves(episodes, curiosity_ep),
              "trajectories": _trajectories(folder, rows), "unavailable": _unavailable(folder)}
    for name, table in tables.items():
        atomic_write(folder / f"{name}.csv", lambda tmp, t=table: t.to_csv(tmp, index=False))
    _viewer(folder, rows, progress)
    return tables


def _unavailable(folder: Path) -> pd.DataFrame:
    """``agent, game, reason`` of what the run could not play (``game`` ``*`` = the whole agent)."""
    record = json.loads((folder / RUN_RECORD).read_text()) if (folder / RUN_RECORD).is_file() else {}
    return pd.DataFrame(record.get("unavailable", []), columns=["agent", "game", "reason"])


def _trajectories(folder: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """ViZDoom player positions per step: ``agent, game, seed, step, x, y`` (+ the goal when set)."""
    parts = []
    for _, row in rows[rows["engine"] == "vizdoom"].iterrows():
        ds = open_store(folder / row["store"])
        parts.append(pd.DataFrame({"agent": row["agent"], "game": row["game"], "seed": row["seed"],
                                   "step": ds["step"].values, "x": ds["pos_x"].values, "y": ds["pos_y"].values}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["agent", "game", "seed", "step",
                                                                                   "x", "y"])


def viewer_paths(folder: Path, agent: str, game: str, seed: int) -> tuple[Path, Path]:
    """The episode viewer's GIF and filmstrip PNG of one episode."""
    base = Path(folder) / "viewer" / check_id(agent, "agent id") / check_id(game, "game")
    return base / f"ep{int(seed)}.gif", base / f"ep{int(seed)}.png"


def _viewer(folder: Path, rows: pd.DataFrame, progress: bool) -> None:
    """A GIF (``VIEWER_FRAMES`` frames) and a filmstrip (``FILMSTRIP_FRAMES``) of every episode."""
    from ..methods.worldmodel.transfer import save_filmstrip, save_gif

    for _, row in tqdm(list(rows.iterrows()), desc="episode viewer", disable=not progress):
        gif, png = viewer_paths(folder, row["agent"], row["game"], row["seed"])
        if gif.is_file() and png.is_file():
            continue
        frames = open_store(folder / row["store"])["frames"]
        n = frames.shape[0]

        def spaced(k: int) -> np.ndarray:  # read only the k frames shown, not the episode
            return frames[np.unique(np.linspace(0, n - 1, min(k, n)).round().astype(int))].values

        save_gif(spaced(VIEWER_FRAMES), gif, fps=8.0)
        save_filmstrip([spaced(FILMSTRIP_FRAMES)], png, scale=1)


def read_tables(folder: Path, names: Sequence[str] = ("level_table", "ranks")) -> dict[str, pd.DataFrame]:
    """Tables a run has written (a missing one is left out)."""
    return {n: pd.read_csv(Path(folder) / f"{n}.csv") for n in names if (Path(folder) / f"{n}.csv").is_file()}
