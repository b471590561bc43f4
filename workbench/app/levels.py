"""Levels & agents page: one `workbench levels` run (:mod:`workbench.play.levels`).

The level table with per-game ranks (Survival RMST, Curiosity magnitude AUC beside ground-truth
coverage, Utility return / published HNS), Avg. Rank and Ratio@Top-3, goal reaching, the
Kaplan–Meier and magnitude curves, ViZDoom top-down trajectory maps per agent, and an episode
viewer (GIF and filmstrip) that every row of the level and episode tables links to
(``?page=levels&levels_run=<run>&episode=<agent>/<game>/<k>``). Everything is read from the
run's CSVs and pictures (once per file version); nothing is computed per visitor.
"""

from __future__ import annotations

import base64
import html
import logging
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd
import panel as pn

from ..play.levels import list_level_runs, run_folder, viewer_paths
from ..viz.levels import trajectory_maps
from ..viz.plots import kaplan_meier_curves, magnitude_functions
from .layout import figure, notice, table
from .state import ViewState, choose

log = logging.getLogger(__name__)
#: Level-table columns shown, in order (the CSV has the intervals' ends too).
SHOWN = ["agent", "game", "episodes", "cap", "rmst", "rmst_ci_low", "rmst_ci_high", "curiosity_auc",
         "curiosity_auc_ci_low", "curiosity_auc_ci_high", "coverage", "coverage_kind", "return", "return_ci_low",
         "return_ci_high", "hns_published_pct", "normalisation_valid", "rank_survival", "rank_curiosity",
         "rank_utility"]


@lru_cache(maxsize=64)
def _read_csv(path: str, mtime: int) -> pd.DataFrame:
    return pd.read_csv(path)


def run_csv(run: str, name: str) -> pd.DataFrame | None:
    """Table ``name`` of a levels run (``None`` when the run has not written it)."""
    path = run_folder(run) / f"{name}.csv"
    return _read_csv(str(path), path.stat().st_mtime_ns) if path.is_file() else None


@lru_cache(maxsize=256)
def _bytes(path: str, mtime: int) -> bytes:
    return Path(path).read_bytes()


def episode_pictures(run: str, episode: str) -> tuple[bytes, bytes]:
    """GIF and filmstrip PNG of ``episode`` = ``agent/game/k`` of a run (ids checked)."""
    parts = episode.split("/")
    if len(parts) != 3 or not parts[2].isdigit():
        raise ValueError(f"episode must be agent/game/k, got {episode!r}")
    agent, game, k = parts
    gif, png = viewer_paths(run_folder(run), agent, game, int(k))
    if not gif.is_file() or not png.is_file():
        raise FileNotFoundError(f"levels run {run} has no episode viewer for {episode}")
    return _bytes(str(gif), gif.stat().st_mtime_ns), _bytes(str(png), png.stat().st_mtime_ns)


def _link(run: str, episode: str) -> str:
    query = urlencode({"page": "levels", "levels_run": run, "episode": episode})
    return f'<a href="?{html.escape(query)}" class="wb-episode-link">{html.escape(episode)}</a>'


def linked_table(df: pd.DataFrame, run: str, name: str, digits: int = 3) -> pn.pane.HTML:
    """``df`` as an HTML table whose first column links each row to its episode in the viewer
    (rows with a ``seed`` their own episode, agent-game rows their first one)."""
    shown = df.copy()
    seeds = shown["seed"] if "seed" in shown else pd.Series(0, index=shown.index)
    links = [_link(run, f"{a}/{g}/{int(s)}") for a, g, s in zip(shown["agent"], shown["game"], seeds)]
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].round(digits)
        elif not pd.api.types.is_numeric_dtype(shown[col]):
            shown[col] = shown[col].astype(str).map(html.escape)
    shown.insert(0, "view", links)
    body = shown.to_html(index=False, escape=False, na_rep="–", classes=f"wb-table {name}")
    return pn.pane.HTML(body, name=name, sizing_mode="stretch_width", styles={"overflow": "auto", "max-height": "480px"})


def _viewer(run: str, state: ViewState, episodes: pd.DataFrame) -> pn.viewable.Viewable:
    """The episode viewer: a selector (kept in the URL as ``episode``), the GIF and the filmstrip."""
    options = [f"{a}/{g}/{int(s)}" for a, g, s in zip(episodes["agent"], episodes["game"], episodes["seed"])]
    state.episode = choose(state.episode, options)
    pick = pn.widgets.Select(name="episode", options=options, value=state.episode, width=360)
    pick.param.watch(lambda event: setattr(state, "episode", event.new), "value")
    state.param.watch(_follow_url(state, "episode", pick, options), "episode")

    def show(episode: str) -> pn.viewable.Viewable:
        try:
            gif, png = episode_pictures(run, episode)
        except (FileNotFoundError, ValueError) as exc:
            return notice(str(exc))
        row = episodes.iloc[options.index(episode)]
        about = (f"**{html.escape(episode)}**: {int(row['steps'])} of {int(row['cap'])} steps, return "
                 f"{row['return']:g}, " + ("died" if row["terminated"] else "reached its goal" if row.get("goal_reached")
                                           else "reached the cap" if row["truncated"] else "stopped"))
        src = "data:image/gif;base64," + base64.b64encode(gif).decode()
        return pn.Column(pn.pane.Markdown(about, name="episode-about"),
                         pn.pane.HTML(f'<img class="wb-episode-gif" alt="{html.escape(episode)}" src="{src}">'),
                         pn.pane.PNG(png, alt_text=f"{episode} filmstrip", css_classes=["wb-episode-strip"]))

    return pn.Column(pn.pane.Markdown("### Episode viewer\nEvery row above links here; or choose an episode."),
                     pick, pn.panel(pn.bind(show, pick)), name="episode-viewer", sizing_mode="stretch_width")


def run_view(run: str, state: ViewState) -> pn.viewable.Viewable:
    """Everything a levels run wrote, section by section."""
    try:
        level = run_csv(run, "level_table")
        if level is None:
            return notice(f"Levels run {run} has no level table yet (it is running or was interrupted; run "
                          "`workbench levels` again to continue it).")
        episodes = run_csv(run, "episodes")
        parts = [pn.pane.Markdown("### Level table\nSurvival: restricted mean survival time (steps, to the cap); "
                                  "Curiosity: magnitude-function AUC of the episode's frames beside ground-truth "
                                  "coverage; Utility: return within the cap and the published random/human HNS "
                                  "(valid only when no episode was capped). Brackets: 95 % bootstrap intervals over "
                                  "episodes; ranks per game (1 = best)."),
                 linked_table(level[[c for c in SHOWN if c in level]], run, "wb-level-table")]
        missing = run_csv(run, "unavailable")
        if missing is not None and len(missing):
            parts += [pn.pane.Markdown("### Not played\nAgents (game `*`) and games an agent could not play, and "
                                       "why."), table(missing, "wb-unavailable")]
        ranks = run_csv(run, "ranks")
        if ranks is not None:
            parts += [pn.pane.Markdown("### Avg. Rank and Ratio@Top-3\nPer level over the games (lower rank = "
                                       "better); `mean_ref_norm`: random 0 / reference 1."), table(ranks, "wb-ranks")]
        goals = run_csv(run, "goals")
        if goals is not None and len(goals):
            parts += [pn.pane.Markdown("### Goal reaching\nReal displacement towards each episode's goal position "
                                       "(map units; > 0 = got closer)."), table(goals, "wb-goals")]
        km = run_csv(run, "km_curves")
        if km is not None:
            parts += [pn.pane.Markdown("### Survival (Kaplan–Meier)"), figure(kaplan_meier_curves(km), "km-curves")]
        mag = run_csv(run, "magnitude_curves")
        if mag is not None and len(mag):
            parts += [pn.pane.Markdown("### Curiosity (magnitude functions)"),
                      figure(magnitude_functions(mag), "magnitude-curves")]
        paths = run_csv(run, "trajectories")
        if paths is not None and len(paths):
            parts += [pn.pane.Markdown("### Top-down trajectories (ViZDoom)\nEach episode's path from its start "
                                       "(circle); stars: the episodes' goals."),
                      figure(trajectory_maps(paths, episodes), "trajectory-maps")]
        parts += [pn.pane.Markdown("### Episodes"), linked_table(episodes.drop(columns=["store"]), run, "wb-episodes"),
                  _viewer(run, state, episodes)]
    except Exception as exc:  # a broken or half-written run must not take the page down
        log.exception("levels run %s failed", run)
        return pn.pane.Alert(f"Could not show levels run {run}: {exc}", alert_type="danger")
    return pn.Column(*parts, sizing_mode="stretch_width")


def _follow_url(state: ViewState, name: str, pick: pn.widgets.Select, options: list[str]):
    """A watcher showing the choice a changed URL names (the browser re-sends its address once
    loaded) and putting the shown one back into the URL when it names none that exists."""
    def follow(event) -> None:
        if event.new in options:
            pick.value = event.new
        else:
            setattr(state, name, pick.value)
    return follow


def levels_page(state: ViewState) -> pn.viewable.Viewable:
    """The run selector (kept in the URL as ``levels_run``) and the chosen run."""
    runs = list_level_runs()
    if not runs:
        return notice("No levels runs yet. Make one with `workbench levels random scripted --max-steps 200` "
                      "(seed 003: Survival, Curiosity and Utility of agents in the real games).")
    state.levels_run = choose(state.levels_run, runs)
    pick = pn.widgets.Select(name="levels run", options=runs, value=state.levels_run, width=420)
    pick.param.watch(lambda event: setattr(state, "levels_run", event.new), "value")
    state.param.watch(_follow_url(state, "levels_run", pick, runs), "levels_run")
    return pn.Column(pick, pn.panel(pn.bind(run_view, pick, state)), sizing_mode="stretch_width")
