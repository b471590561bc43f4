"""``workbench play``: episodes of an agent in one catalog game, written as a dataset store.

A play store has the layout of a recording (frames, every input / outcome / state label of the
game's catalog entry, ``game`` / ``episode`` / ``step`` coordinates), so every analysis opens it
with :func:`workbench.data.store.open_dataset`. It lives at
``<cache>/plays/<agent>/<game>/n<episodes>-steps<max_steps>-seed<seed>/frames.zarr``; its attrs
name the agent and its card, the game's configuration and catalog entry, the seed and the cap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Mapping

from tqdm.auto import tqdm

from ..core.errors import ConfigError
from ..data.catalog import CatalogEntry, CatalogError, load_catalog
from ..data.episode import Episode
from ..data.recorders import episode_rng, get_engine
from ..data.runners import rollout
from ..data.store import StoreWriter, clean_stale_tmp, is_complete, open_store
from ..core.locks import store_lock
from ..core.paths import cache_dir, check_id
from ..core.provenance import versions
from .agents import Agent, make_agent


def find_game(game: str) -> tuple[CatalogEntry, Mapping]:
    """The first recorded catalog entry with a game named ``game`` and that game's configuration."""
    catalog = load_catalog()
    for entry in catalog.values():
        for cfg in entry.source.get("games", []) if entry.kind == "record" else []:
            if cfg["game"] == game:
                return entry, cfg
    known = sorted({g["game"] for e in catalog.values() if e.kind == "record" for g in e.source["games"]})
    raise CatalogError(f"no catalog game {game!r}; the recorded entries have: {', '.join(known)}")


def play_path(agent_id: str, game: str, episodes: int, seed: int, max_steps: int) -> Path:
    return (cache_dir() / "plays" / check_id(agent_id, "agent id") / check_id(game, "game")
            / f"n{episodes}-steps{max_steps}-seed{seed}" / "frames.zarr")


def play(agent: str | Agent, game: str, episodes: int = 1, seed: int = 0, max_steps: int = 1000,
         force: bool = False, progress: bool = True) -> Path:
    """Play ``episodes`` episodes of at most ``max_steps`` steps and store them (reused when complete).

    Episode ``e`` draws from ``episode_rng(seed, game, e)``, as recordings do: the scripted agent
    with a recording's seed and length replays that recording frame for frame.
    """
    for name, value in (("episodes", episodes), ("max_steps", max_steps)):
        if int(value) < 1:
            raise ConfigError(f"play: {name} must be at least 1, got {value}")
    agent = make_agent(agent) if isinstance(agent, str) else agent
    entry, game_cfg = find_game(game)
    path = play_path(agent.id, game, episodes, seed, max_steps)
    if is_complete(path) and not force:
        return path
    bar = tqdm(total=episodes * max_steps, desc=f"play {agent.id} {game}", unit="step", disable=not progress)

    def advance(ep: int, episode) -> None:
        bar.update(max_steps * (ep + 1) - bar.n)  # an early end skips the rest of its steps

    write_episodes(agent, entry, game_cfg, path, range(episodes), seed, max_steps, lambda: bar.update(1), advance)
    bar.close()
    return path


def write_episodes(agent: Agent, entry: CatalogEntry, game_cfg: Mapping, path: Path, episodes: Iterable[int],
                   seed: int, max_steps: int, on_step: Callable[[], None] = lambda: None,
                   on_episode: Callable[[int, Episode], None] = lambda ep, episode: None) -> Path:
    """Play the episodes numbered ``episodes`` (episode ``e`` draws from ``episode_rng(seed, game, e)``)
    into the store ``path``; ``on_step`` after every step, ``on_episode(e, episode)`` after each."""
    game = game_cfg["game"]
    frame_size = entry.frame_size or (96, 96)
    engine = get_engine(game_cfg["engine"])
    attrs = {"dataset_id": f"play-{agent.id}-{game}", "title": f"{agent.id} agent playing {game}",
             "domain": entry.domain, "variant": path.parent.name, "source": {"type": "play", "game": dict(game_cfg)},
             "catalog_entry": entry.id, "agent_id": agent.id, "seed": int(seed), "max_steps": int(max_steps),
             "flow_sign": {game: int(game_cfg.get("flow_sign", 1))}, "versions": versions(*engine.version())}

    def act(observation, history):
        on_step()
        return agent.act(observation, history)

    path.parent.mkdir(parents=True, exist_ok=True)
    with store_lock(path.parent):  # one writer per store: another one's temporaries are not stale
        clean_stale_tmp(path.parent)
        with StoreWriter(path, entry.schema, [game], frame_size, attrs) as writer, \
                engine.Runner(entry.runner_config(game_cfg), frame_size) as runner:
            for ep in episodes:
                reset_seed = agent.begin(runner, episode_rng(seed, game, ep), max_steps)
                episode = rollout(runner, act, reset_seed, max_steps, ep)
                labels = {k: v for k, v in episode.labels.items() if k in entry.schema}
                writer.append(episode.frames, game, ep, episode.step, labels, source=episode.source)
                on_episode(ep, episode)
            writer.attrs["agent"] = agent.card
    return path


def play_summary(path: Path) -> dict:
    """What a stored play holds: ``steps``, episodes ``terminated`` and ``truncated``, the summed ``return``."""
    ds = open_store(path)
    ends = ds["episode_end"].values
    return {"steps": ds.sizes["frame"], "terminated": int((ends == 1).sum()), "truncated": int((ends == 2).sum()),
            "return": float(ds["reward"].sum())}
