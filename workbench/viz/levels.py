"""Figures of a levels run (:mod:`workbench.play.levels`) beyond the survival and magnitude curves
of :mod:`workbench.viz.plots`: ViZDoom top-down trajectory maps per agent."""

from __future__ import annotations

import holoviews as hv
import pandas as pd

from .plots import _ensure_extensions, _style, game_colors


def trajectory_maps(trajectories: pd.DataFrame, goals: pd.DataFrame | None = None, title: str = ""):
    """Top-down maps of ViZDoom player paths (``agent, game, seed, step, x, y`` in map units): one
    panel per game, one colour per agent, each episode a path from its start (circle); ``goals``
    (``game, seed, goal_x, goal_y``) marks each episode's goal position (star)."""
    _ensure_extensions()
    agents = list(dict.fromkeys(trajectories["agent"]))
    colors = game_colors(agents)
    panels = []
    for game, rows in trajectories.groupby("game", sort=False):
        layers = []
        for agent in agents:
            part = rows[rows["agent"] == agent].sort_values(["seed", "step"])
            if part.empty:
                continue
            paths = [ep[["x", "y"]].to_numpy() for _, ep in part.groupby("seed")]
            layers.append(_style(hv.Path(paths, label=str(agent)), {"color": colors[agent]},
                                 bokeh={"line_width": 1.5, "alpha": 0.8}, mpl={"linewidth": 1.2, "alpha": 0.8}))
            starts = part.groupby("seed").first()[["x", "y"]]
            layers.append(_style(hv.Points(starts, ["x", "y"]), {"color": colors[agent]}, bokeh={"size": 7},
                                 mpl={"s": 25}))
        if goals is not None and "goal_x" in goals:
            marks = goals[goals["game"] == game].drop_duplicates("seed")[["goal_x", "goal_y"]].dropna()
            if len(marks):
                layers.append(_style(hv.Points(marks, ["goal_x", "goal_y"], label="goal"), {"color": "black"},
                                     bokeh={"marker": "star", "size": 12}, mpl={"marker": "*", "s": 90}))
        panels.append(_style(hv.Overlay(layers), {"title": title or f"{game}: top-down paths", "xlabel": "x (map units)",
                                                   "ylabel": "y (map units)", "legend_position": "right"},
                             bokeh={"width": 520, "height": 420}, mpl={"fig_inches": (5.5, 4.5), "aspect": "equal"}))
    if not panels:
        raise ValueError("trajectory_maps: no ViZDoom trajectories")
    return panels[0] if len(panels) == 1 else hv.Layout(panels).cols(2)
