"""The levels batch (`workbench levels`): wall time of 4 games x agents x 3 episodes, play and tables.

The doom level set (ViZDoom's four scenarios) with every agent that needs no model (random,
scripted and the reactive players registered in ``workbench.play.AGENTS``), at a small cap, in a
temporary cache and studies folder. Reported: the wall time of playing and of the tables (level
table, curves, trajectories, episode viewer), seconds per played step, and the linear estimate for
issue 12's 4 games x 5 agents x 3 episodes at that cap (target: at most 15 minutes on 2 cores).
Model-based agents (MPC) cost their planner's time per step on top. Figures are measured, never asserted.
"""

from __future__ import annotations

import os
import tempfile
import time


from workbench.play import AGENTS
from workbench.play.levels import LevelsConfig, read_episode_rows, run_levels, write_level_tables

CAP = 300
EPISODES = 3
TARGET_AGENTS = 5


def run(workers: int | None = None, cap: int = CAP, episodes: int = EPISODES) -> dict:
    keys = ("WORKBENCH_CACHE", "WORKBENCH_STUDIES")
    old = {k: os.environ.get(k) for k in keys}
    with tempfile.TemporaryDirectory(prefix="bench-levels-") as root:
        os.environ.update({k: os.path.join(root, k.lower()) for k in keys})
        try:
            cfg = LevelsConfig.from_set("doom", max_steps=cap, agents=list(AGENTS), episodes=episodes)
            start = time.perf_counter()
            folder = run_levels(cfg, progress=False)
            total = time.perf_counter() - start
            start = time.perf_counter()
            write_level_tables(folder, cfg)  # the tables again (the viewer's pictures exist): their share
            tables = time.perf_counter() - start
            rows = read_episode_rows(folder)
        finally:
            for k, v in old.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    steps = int(rows["steps"].sum())
    per_agent = total / len(cfg.agents)
    return {"cap": cap, "episodes": episodes, "games": list(cfg.games), "agents": list(cfg.agents),
            "episodes_played": len(rows), "steps_played": steps, "wall_s": total, "tables_s": tables,
            "s_per_step": (total - tables) / steps, "estimate_5_agents_s": per_agent * TARGET_AGENTS,
            "per_game": rows.groupby("game")["steps"].mean().to_dict()}


def to_markdown(r: dict) -> str:
    lines = [f"# Levels batch ({len(r['games'])} games x {len(r['agents'])} agents x {r['episodes']} episodes, "
             f"cap {r['cap']} steps)", "",
             f"Agents: {', '.join(r['agents'])}; games: {', '.join(r['games'])}.", "",
             "| episodes | steps played | wall (s) | tables alone (s) | s per step | 5-agent estimate (min) |",
             "|---|---|---|---|---|---|",
             f"| {r['episodes_played']} | {r['steps_played']} | {r['wall_s']:.0f} | {r['tables_s']:.0f} | "
             f"{r['s_per_step']:.4f} | {r['estimate_5_agents_s'] / 60:.1f} |", "",
             "Mean steps per episode: " + ", ".join(f"{g} {v:.0f}" for g, v in r["per_game"].items()),
             "", "Target (issue 12): 4 games x 5 agents x 3 episodes in at most 15 minutes on 2 cores."]
    return "\n".join(lines) + "\n"
