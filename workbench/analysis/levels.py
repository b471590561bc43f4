"""Seed 003's evaluation pyramid: Survival, Curiosity and Utility of agents' episodes, with
bootstrap intervals over episodes and the paper's Avg. Rank / Ratio@Top-3 aggregates.

Everything here computes tidy pandas tables from an **episode table** (one row per played episode),
so the runner, the notebook and the dashboard share one definition of each level. Plots of the
curves are in :mod:`workbench.viz.plots` (:func:`~workbench.viz.plots.kaplan_meier_curves`,
:func:`~workbench.viz.plots.magnitude_functions`).

Episode table (a :class:`pandas.DataFrame`, one row per episode; see :func:`validate_episodes`)

=============== ========= ==================================================================
column          type      meaning
=============== ========= ==================================================================
agent           str       agent name (``"random"`` is the default random reference)
game            str       game id as in the catalog (``SpaceInvaders``, ``take_cover``, ...)
seed            int       episode seed
steps           int       environment steps played (agent decisions), ``0 <= steps <= cap``
cap             int       the length cap of the episode (same for every episode of a game)
terminated      bool      the episode ended by irreversible failure (game over, death, off track)
truncated       bool      the episode ended because it reached ``cap``
return          float     summed game reward of the episode (to game over or the cap)
failure_step    float     *optional*: step of the irreversible failure when the episode played on
                          after it (e.g. ALE's first life loss while the game runs to game over);
                          NaN = no failure. Without the column, failure = ``steps`` if terminated
embedding       array     *optional*: ``(steps, d)`` float embedding of the episode's frames
                          (Curiosity; the frozen autoencoder rep stands in for the paper's CLIP)
positions       array     *optional*: ``(steps, 2)`` ViZDoom player (x, y) in map units
player_ram      array     *optional*: ``(steps, k)`` uint8 ALE RAM bytes of the player's position
                          (``PLAYER_RAM``, for games whose annotations publish them)
ram             array     *optional*: ``(steps, 128)`` uint8 ALE RAM per step
tiles           array     *optional*: int indices of the CarRacing track tiles visited
=============== ========= ==================================================================

An episode that is neither terminated nor truncated (stopped early) is right-censored at ``steps``.
Utility's ``return`` should be the full game's return up to game over or the cap: play on after
a life loss and record ``failure_step`` for Survival rather than stopping there.

Why no survival library: the Kaplan–Meier estimator and its restricted mean are a dozen numpy
lines (tested against the textbook 6-MP example), while ``lifelines`` would be a new dependency
for two functions; do not add one for this module.
"""

from __future__ import annotations

import warnings
from importlib import resources
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import scipy.linalg
import yaml
from scipy import stats
from scipy.optimize import brentq
from scipy.spatial.distance import pdist, squareform

from ..data.episode import resize_frames
from ..data.schema import EPISODE_END_CLASSES

REQUIRED_COLUMNS = ("agent", "game", "seed", "steps", "cap", "terminated", "truncated", "return")
#: Per-step array columns and how each becomes a ground-truth coverage count.
#: The first one an episode has is its coverage.
COVERAGE_COLUMNS = ("positions", "player_ram", "ram", "tiles")
#: ViZDoom coverage cell in map units: Doom's flats and most walls sit on a 64-unit grid.
DOOM_CELL = 64.0
#: Frames per episode for Curiosity (evenly spaced; all frames if fewer).
N_SUB = 128
#: Magnipy defaults: the convergence scale is where Mag = 0.95 x the number of points, and the
#: magnitude function is evaluated at 30 evenly spaced scales in [0, t_max].
TARGET_PROPORTION = 0.95
N_SCALES = 30
#: Bootstrap resamples (percentile intervals, seeded numpy Generator through scipy.stats.bootstrap).
N_RESAMPLES = 2000
LEVELS = ("survival", "curiosity", "utility")


# ------------------------------------------------------------------------------ episode table

def validate_episodes(episodes: pd.DataFrame, name: str = "episode table") -> pd.DataFrame:
    """A checked copy of an episode table with the documented dtypes; ``ValueError`` (one line
    naming ``name`` and the problem) on missing columns, impossible steps or mixed caps."""
    missing = [c for c in REQUIRED_COLUMNS if c not in episodes.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing} (needs {list(REQUIRED_COLUMNS)})")
    if episodes.empty:
        raise ValueError(f"{name}: no episodes")
    df = episodes.copy()
    df["agent"], df["game"] = df["agent"].astype(str), df["game"].astype(str)
    columns = {"seed": np.int64, "steps": np.int64, "cap": np.int64, "return": float, "failure_step": float}
    for col, dtype in columns.items():
        if col in df:
            try:
                df[col] = pd.to_numeric(df[col], errors="raise").astype(dtype)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name}: column {col!r} must be {np.dtype(dtype).name} numbers ({exc})") from None
    for col in ("terminated", "truncated"):
        if not df[col].isin([True, False]).all():
            raise ValueError(f"{name}: column {col!r} must hold True/False, got {sorted(set(map(str, df[col])))[:5]}")
        df[col] = df[col].astype(bool)

    def check(bad: pd.Series, problem: str) -> None:
        if bad.any():
            row = df[bad].iloc[0]
            raise ValueError(f"{name}: {problem} in {int(bad.sum())} rows"
                             f" (first: agent={row.agent}, game={row.game}, seed={row.seed})")

    check((df["steps"] < 0) | (df["steps"] > df["cap"]) | (df["cap"] <= 0), "steps outside [0, cap] or cap <= 0")
    if "failure_step" in df:
        check((df["failure_step"] < 0) | (df["failure_step"] > df["steps"]), "failure_step outside [0, steps]")
    caps = df.groupby("game")["cap"].nunique()
    if (caps > 1).any():
        game = caps[caps > 1].index[0]
        found = sorted(df.loc[df.game == game, "cap"].unique())
        raise ValueError(f"{name}: episodes of {game} have different caps {found};"
                         " survival and ranks compare episodes of equal length caps")
    return df


def failure_times(episodes: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Survival data of each episode: ``time`` (steps to irreversible failure, or to censoring)
    and ``event`` (True = failure observed, False = right-censored at ``time``)."""
    if "failure_step" in episodes:
        failure = pd.to_numeric(episodes["failure_step"]).to_numpy(float)
        failed = np.isfinite(failure)
        event = failed | episodes["terminated"].to_numpy(bool)
        time = np.where(failed, failure, episodes["steps"].to_numpy(float))
    else:
        event = episodes["terminated"].to_numpy(bool)
        time = episodes["steps"].to_numpy(float)
    return time, event


# ------------------------------------------------------------------------------ statistics

def bootstrap_ci(samples: tuple[np.ndarray, ...], statistic: Callable, rng: np.random.Generator,
                 n_resamples: int = N_RESAMPLES, vectorized: bool = False) -> tuple[float, float]:
    """95 % percentile interval of ``statistic(*samples)`` resampling episodes (rows are paired
    across ``samples``) with :func:`scipy.stats.bootstrap`; NaN for fewer than two episodes."""
    if len(samples[0]) < 2:
        return np.nan, np.nan
    res = stats.bootstrap(samples, statistic, paired=True, vectorized=vectorized, method="percentile",
                          n_resamples=n_resamples, rng=rng)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def _affine(table: pd.DataFrame, source: str, target: str, offset, scale) -> None:
    """``target = (source - offset) / scale`` for the value and its ``_ci_low``/``_ci_high``
    columns (re-ordered where the scale is negative), conditional on the reference values."""
    table[target] = (table[source] - offset) / scale
    ends = [(table[source + suffix] - offset) / scale for suffix in ("_ci_low", "_ci_high")]
    table[target + "_ci_low"], table[target + "_ci_high"] = np.fmin(*ends), np.fmax(*ends)


def _reference(table: pd.DataFrame, value: str, agent: str | None) -> pd.Series:
    """Per-game ``value`` of ``agent`` broadcast to the table's rows (NaN where it did not play)."""
    if agent is None:
        return pd.Series(np.nan, index=table.index)
    per_game = table.loc[table["agent"] == agent].set_index("game")[value]
    return table["game"].map(per_game).astype(float)


def reference_normalise(table: pd.DataFrame, value: str, target: str, random_agent: str | None,
                        reference_agent: str | None, eps: float = 0.0) -> None:
    """Tab. 2's per-game normalisation, random 0 / reference 1:
    ``target = (value - value_random) / (value_reference - value_random + eps)`` (paper Eq. 12).
    NaN on a game where the reference does not beat random: there the formula's scale is zero or
    negative, and a better agent would get a lower score."""
    low = _reference(table, value, random_agent)
    high = _reference(table, value, reference_agent)
    _affine(table, value, target, low, (high - low + eps).where(high > low))


# ------------------------------------------------------------------------------ Survival

def _km(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, ...]:
    """Kaplan–Meier arrays at the distinct times: (times, at_risk, events, survival)."""
    times, inverse = np.unique(time, return_inverse=True)
    at_risk = len(time) - np.searchsorted(np.sort(time), times, side="left")
    events = np.bincount(inverse, weights=event, minlength=len(times))
    return times, at_risk, events, np.cumprod(1.0 - events / at_risk)


def kaplan_meier(time, event) -> pd.DataFrame:
    """Kaplan–Meier estimate S(t) = prod_{t_i <= t} (1 - d_i / n_i) from right-censored data.

    ``time`` (n,) steps, ``event`` (n,) True = failure observed. One row per distinct time
    (plus t = 0, S = 1): ``time``, ``at_risk`` n_i, ``events`` d_i, ``censored``, ``survival``
    (the value from that time on: a right-continuous step function).
    """
    time, event = np.asarray(time, float), np.asarray(event, bool)
    if time.ndim != 1 or time.shape != event.shape or not len(time):
        raise ValueError(f"kaplan_meier needs equal non-empty 1-D time and event, got {time.shape} and {event.shape}")
    times, at_risk, events, survival = _km(time, event)
    censored = np.bincount(np.unique(time, return_inverse=True)[1], minlength=len(times)) - events
    curve = pd.DataFrame({"time": times, "at_risk": at_risk, "events": events.astype(int),
                          "censored": censored.astype(int), "survival": survival})
    if times[0] > 0:
        start = pd.DataFrame({"time": [0.0], "at_risk": [len(time)], "events": [0], "censored": [0], "survival": [1.0]})
        curve = pd.concat([start, curve], ignore_index=True)
    return curve


def restricted_mean(time, event, tau: float) -> float:
    """Restricted mean survival time: the area under the Kaplan–Meier curve on [0, ``tau``],
    i.e. the expected steps survived when every life is cut at ``tau`` (E[min(T, tau)])."""
    times, _, _, survival = _km(np.asarray(time, float), np.asarray(event, bool))
    keep = times < tau
    edges = np.concatenate([[0.0], times[keep], [tau]])
    return float(np.sum(np.diff(edges) * np.concatenate([[1.0], survival[keep]])))


def median_survival(curve: pd.DataFrame) -> float:
    """First time the Kaplan–Meier curve reaches 0.5 or below; NaN when it never does (censored)."""
    below = curve.loc[curve["survival"] <= 0.5, "time"]
    return float(below.iloc[0]) if len(below) else np.nan


def survival_curves(episodes: pd.DataFrame) -> pd.DataFrame:
    """Kaplan–Meier curves per (agent, game), stacked: :func:`kaplan_meier`'s columns plus
    ``agent``, ``game`` and ``cap`` (for plotting up to the cap)."""
    episodes = validate_episodes(episodes)
    parts = []
    for (agent, game), group in episodes.groupby(["agent", "game"], sort=True):
        curve = kaplan_meier(*failure_times(group))
        parts.append(curve.assign(agent=agent, game=game, cap=int(group["cap"].iloc[0])))
    return pd.concat(parts, ignore_index=True)[["agent", "game", "cap", "time", "at_risk", "events", "censored",
                                                "survival"]]


def step_unit(steps: float) -> float:
    """Paper Eq. 10: the order-of-magnitude step unit H = 10^(floor(log10 L) + 1) of a lifetime L."""
    return float(10.0 ** (np.floor(np.log10(steps)) + 1)) if steps > 0 else np.nan


def survival_table(episodes: pd.DataFrame, random_agent: str | None = "random", reference_agent: str | None = None,
                   n_resamples: int = N_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Survival per (agent, game): RMST up to the cap with a bootstrap 95 % interval, and the
    paper's normalisations side by side.

    Columns: ``episodes``, ``failures``, ``censored``, ``cap``, ``rmst`` (+``_ci_low/_ci_high``),
    ``median_survival`` (NaN when over half survive), and

    * ``rmst_over_cap`` = RMST / cap (1 = every episode reached the cap);
    * ``survival_typ`` = RMST / T_typ, T_typ = the random agent's KM median survival (§5.1;
      NaN when the random agent's median is not reached);
    * ``survival_unit`` = RMST / H, H = :func:`step_unit` of the random agent's RMST (Eq. 10–11);
    * ``survival_ref_norm`` = random 0 / ``reference_agent`` 1 (Tab. 2); NaN without a reference.

    The paper's E[T] ignores censoring; RMST is its censoring-aware version (equal to the mean of
    min(T, cap) when every censoring is at the cap). Normalised intervals treat the references as fixed.
    """
    episodes = validate_episodes(episodes)
    rng = np.random.default_rng(seed)
    rows = []
    for (agent, game), group in episodes.groupby(["agent", "game"], sort=True):
        time, event = failure_times(group)
        cap = int(group["cap"].iloc[0])
        low, high = bootstrap_ci((time, event), lambda t, e: restricted_mean(t, e, cap), rng, n_resamples)
        rows.append({"agent": agent, "game": game, "episodes": len(group), "failures": int(event.sum()),
                     "censored": int((~event).sum()), "cap": cap, "rmst": restricted_mean(time, event, cap),
                     "rmst_ci_low": low, "rmst_ci_high": high,
                     "median_survival": median_survival(kaplan_meier(time, event))})
    table = pd.DataFrame(rows)
    _affine(table, "rmst", "rmst_over_cap", 0.0, table["cap"])
    table["t_typ"] = _reference(table, "median_survival", random_agent)
    _affine(table, "rmst", "survival_typ", 0.0, table["t_typ"])
    table["h_unit"] = _reference(table, "rmst", random_agent).map(step_unit)
    _affine(table, "rmst", "survival_unit", 0.0, table["h_unit"])
    reference_normalise(table, "rmst", "survival_ref_norm", random_agent, reference_agent)
    return table


# ------------------------------------------------------------------------------ Curiosity

def magnitude(dist: np.ndarray, scales) -> np.ndarray:
    """Magnitude function of a finite metric space: |tX| = sum(w) with Z(t) w = 1,
    Z_ij = exp(-t d_ij), at each scale t of ``scales``; ``dist`` (n, n) distances.

    Cholesky solve (Z is positive definite for Euclidean points at t > 0), least squares where it
    fails. |0X| = 1 (the one-point limit). Duplicate points are one point of the metric space,
    so pass distinct points (:func:`frame_distances` merges them); shape ``(len(scales),)``.
    """
    dist = np.asarray(dist, float)
    if dist.ndim != 2 or dist.shape[0] != dist.shape[1]:
        raise ValueError(f"magnitude needs a square distance matrix, got shape {dist.shape}")
    ones = np.ones(len(dist))
    out = np.ones(len(np.atleast_1d(scales)))
    for i, t in enumerate(np.atleast_1d(scales)):
        if t <= 0 or len(dist) == 1:
            continue
        z = np.exp(-t * dist)
        with warnings.catch_warnings():
            warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
            try:
                w = scipy.linalg.solve(z, ones, assume_a="pos")
            except (np.linalg.LinAlgError, scipy.linalg.LinAlgWarning):
                w = np.linalg.lstsq(z, ones, rcond=None)[0]
        out[i] = w.sum()
    return out


def convergence_scale(dist: np.ndarray, proportion: float = TARGET_PROPORTION) -> float:
    """Magnipy's convergence scale: the t where |tX| = ``proportion`` x n (root-finding from a
    bracket grown tenfold); NaN for a one-point space, which never grows."""
    n = len(dist)
    if n < 2:
        return np.nan
    target = proportion * n
    f = lambda t: magnitude(dist, [t])[0] - target  # noqa: E731
    low, high = 0.0, 10.0 / max(float(np.median(dist[np.triu_indices(n, 1)])), 1e-12)
    while f(high) < 0:
        low, high = high, high * 10
    return float(brentq(f, low, high, rtol=1e-5))


def magnitude_area(dist: np.ndarray, t_max: float, n_scales: int = N_SCALES) -> tuple[float, np.ndarray, np.ndarray]:
    """The paper's Curiosity E = AUC(M): trapezoid area of the magnitude function at ``n_scales``
    evenly spaced scales in [0, ``t_max``], divided by ``t_max`` (magnipy ``mag_area``, scale=True),
    so E runs from 1 (one point) to n (points far apart at every scale). Returns (E, scales, M);
    E is NaN when ``t_max`` is not a positive number (no scale to measure at)."""
    if len(dist) == 1:  # one point: M = 1 at every scale, whatever the range
        t_max = t_max if np.isfinite(t_max) and t_max > 0 else 1.0
    elif not (np.isfinite(t_max) and t_max > 0):
        return np.nan, np.full(n_scales, np.nan), np.full(n_scales, np.nan)
    scales = np.linspace(0.0, t_max, n_scales)
    mag = magnitude(dist, scales)
    return float(np.trapezoid(mag, scales) / t_max), scales, mag


def frame_distances(embedding: np.ndarray, n_sub: int = N_SUB, normalise: bool = True) -> np.ndarray:
    """The episode's metric space as an (m, m) Euclidean distance matrix: ``n_sub`` evenly spaced
    frames of ``embedding (steps, d)`` (all if fewer), L2-normalised like CLIP features when
    ``normalise``, identical frames merged into one point (m <= n_sub)."""
    x = np.asarray(embedding, float)
    if x.ndim != 2 or not len(x) or not np.isfinite(x).all():
        raise ValueError(f"embedding must be a finite non-empty (steps, d) array, got shape {x.shape}")
    x = x[np.unique(np.linspace(0, len(x) - 1, min(n_sub, len(x))).round().astype(int))]
    if normalise:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    x = np.unique(x, axis=0)
    return squareform(pdist(x)) if len(x) > 1 else np.zeros((1, 1))


def map_cells(positions: np.ndarray, cell: float = DOOM_CELL) -> int:
    """Distinct ``cell`` x ``cell`` map squares visited by ``positions (steps, 2)`` (ViZDoom x, y)."""
    return len(np.unique(np.floor(np.asarray(positions, float) / cell).astype(np.int64), axis=0))


def distinct_states(states: np.ndarray) -> int:
    """Distinct rows of ``states (steps, k)`` (e.g. the RAM bytes of the player's position)."""
    return len(np.unique(np.asarray(states).reshape(len(states), -1), axis=0))


#: RAM bytes of the player's own position, by ALE ROM, where published annotations name them:
#: Pong — AtariARI (Anand et al. 2019, ``ram_annotations.py``) ``player_y`` = 51 (its x is fixed);
#: Enduro — OC_Atari's extractor (``ocatari/ram/enduro.py``) byte 46, the road's lateral offset,
#: i.e. where the player's car is across the road (the car itself stays at screen x ~ 80).
PLAYER_RAM = {"Pong": (51,), "Enduro": (46,)}
#: A RAM byte is a counter when, on at least this share of steps, it changes by the same amount
#: (mod 256) as on the step before (a frame counter or timer) or as two steps before (a toggle).
COUNTER_SHARE = 0.9


def counter_bytes(ram: np.ndarray, share: float = COUNTER_SHARE) -> np.ndarray:
    """Which bytes of ``ram (steps, bytes)`` are counters on this episode: ``(bytes,)`` bool.

    ALE's RAM holds frame counters and timers (Pong's byte 8 gains 4 every step at frameskip 4,
    Enduro's byte 48 loses 4), so every RAM row differs from every other and "distinct RAM
    states" only counts steps. A counter changes every step by a repeating amount; an object
    that moves and stops or turns back (a ball, a paddle) does not, and is kept."""
    change = np.diff(np.asarray(ram, np.int16), axis=0) % 256
    if len(change) < 3:
        return np.zeros(np.shape(ram)[1], bool)
    moving = change != 0
    steady = ((change[1:] == change[:-1]) & moving[1:]).mean(axis=0)
    toggle = ((change[2:] == change[:-2]) & moving[2:]).mean(axis=0)
    return (steady >= share) | (toggle >= share)


def ram_states(ram: np.ndarray) -> int:
    """Distinct RAM states of an episode ``ram (steps, bytes)`` over its non-counter bytes
    (:func:`counter_bytes`): states the game actually revisits count once."""
    ram = np.asarray(ram)
    return distinct_states(ram[:, ~counter_bytes(ram)])


def tiles_visited(tiles: np.ndarray) -> int:
    """Distinct CarRacing track tiles among ``tiles`` (indices; negatives = no tile)."""
    tiles = np.asarray(tiles).ravel()
    return len(np.unique(tiles[tiles >= 0]))


#: Ground-truth coverage per optional column: (count function, label).
COVERAGE = {"positions": (map_cells, f"map cells ({DOOM_CELL:g} u)"),
            "player_ram": (distinct_states, "player positions (RAM)"),
            "ram": (ram_states, "RAM states (counters excluded)"), "tiles": (tiles_visited, "track tiles")}


def episode_coverage(row: pd.Series) -> tuple[float, str]:
    """(count, kind) from the first coverage column present in an episode row; (NaN, "") if none."""
    for col in COVERAGE_COLUMNS:
        value = row.get(col)
        if value is None or (np.isscalar(value) and pd.isna(value)):
            continue
        count, kind = COVERAGE[col]
        return float(count(value)), kind
    return np.nan, ""


def curiosity_episodes(episodes: pd.DataFrame, t_ref: float | Mapping[str, float] | None = None,
                       random_agent: str | None = "random", n_sub: int = N_SUB, normalise: bool = True,
                       n_scales: int = N_SCALES) -> pd.DataFrame:
    """Curiosity and ground-truth coverage of every episode with an ``embedding``.

    Columns: ``agent``, ``game``, ``seed``, ``steps``, ``n_points`` (distinct subsampled frames),
    ``all_frames`` (True = the episode had at most ``n_sub`` frames, so longer lives are not
    subsampled alike), ``t_conv`` (the episode's own convergence scale), ``t_ref``,
    ``curiosity_auc`` (E on [0, t_ref], comparable across agents of a game), ``curiosity_auc_own``
    (E on [0, t_conv]: magnipy's per-space default, paper-literal, invariant to the trajectory's
    overall spread), ``coverage``, ``coverage_kind``.

    ``t_ref`` per game: given (a number or a mapping game → scale), else the median ``t_conv`` of
    ``random_agent``'s episodes of that game, else of all episodes of the game (``t_ref_from``).
    """
    episodes = validate_episodes(episodes)
    if "embedding" not in episodes:
        raise ValueError("episode table: Curiosity needs an 'embedding' column of (steps, d) arrays")
    rows, spaces = [], []
    for _, row in episodes[episodes["embedding"].notna()].iterrows():
        dist = frame_distances(row["embedding"], n_sub, normalise)
        t_conv = convergence_scale(dist)
        coverage, kind = episode_coverage(row)
        rows.append({"agent": row["agent"], "game": row["game"], "seed": row["seed"], "steps": row["steps"],
                     "n_points": len(dist), "all_frames": len(row["embedding"]) <= n_sub, "t_conv": t_conv,
                     "curiosity_auc_own": magnitude_area(dist, t_conv, n_scales)[0],
                     "coverage": coverage, "coverage_kind": kind})
        spaces.append(dist)
    if not rows:
        raise ValueError("episode table: no episode has an embedding")
    table = pd.DataFrame(rows)
    refs = _shared_scales(table, t_ref, random_agent)
    table["t_ref"] = table["game"].map(lambda g: refs[g][0])
    table["t_ref_from"] = table["game"].map(lambda g: refs[g][1])
    table["curiosity_auc"] = [magnitude_area(d, t, n_scales)[0] for d, t in zip(spaces, table["t_ref"])]
    return table


def _shared_scales(table: pd.DataFrame, t_ref, random_agent) -> dict[str, tuple[float, str]]:
    """Per game (t_ref, where it came from) for :func:`curiosity_episodes`."""
    out = {}
    for game, group in table.groupby("game"):
        if isinstance(t_ref, Mapping) and game in t_ref:
            out[game] = (float(t_ref[game]), "given")
        elif t_ref is not None and not isinstance(t_ref, Mapping):
            out[game] = (float(t_ref), "given")
        elif random_agent is not None and group.loc[group.agent == random_agent, "t_conv"].notna().any():
            scale = float(group.loc[group.agent == random_agent, "t_conv"].median())
            out[game] = (scale, f"median t_conv of {random_agent}")
        else:
            out[game] = (float(group["t_conv"].median()), "median t_conv of all agents")
    return out


def magnitude_curves(episodes: pd.DataFrame, curiosity: pd.DataFrame, n_sub: int = N_SUB, normalise: bool = True,
                     n_scales: int = N_SCALES) -> pd.DataFrame:
    """Magnitude functions M(t) on each game's shared [0, t_ref] (from :func:`curiosity_episodes`),
    averaged over an agent's episodes: ``agent``, ``game``, ``t``, ``t_over_ref``, ``magnitude``,
    ``magnitude_sd``, ``curiosity_auc`` (the mean E, for the legend)."""
    episodes = validate_episodes(episodes)
    t_ref = curiosity.drop_duplicates("game").set_index("game")["t_ref"]
    parts = []
    for _, row in episodes[episodes["embedding"].notna()].iterrows():
        ref = t_ref[row["game"]]
        auc, scales, mag = magnitude_area(frame_distances(row["embedding"], n_sub, normalise), ref, n_scales)
        parts.append(pd.DataFrame({"agent": row["agent"], "game": row["game"], "seed": row["seed"], "t": scales,
                                   "t_over_ref": scales / ref, "magnitude": mag, "auc": auc}))
    long = pd.concat(parts, ignore_index=True)
    out = long.groupby(["agent", "game", "t", "t_over_ref"], sort=True).agg(
        magnitude=("magnitude", "mean"), magnitude_sd=("magnitude", "std"), curiosity_auc=("auc", "mean"))
    return out.reset_index()


def curiosity_table(curiosity: pd.DataFrame, random_agent: str | None = "random", reference_agent: str | None = None,
                    n_resamples: int = N_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Curiosity per (agent, game) from :func:`curiosity_episodes`: mean ``curiosity_auc`` with a
    bootstrap 95 % interval, the paper-literal ``curiosity_auc_own`` mean, mean ``coverage``
    (+ interval) beside it, ``steps_auc_spearman`` (how much E follows episode length), and
    ``curiosity_ref_norm`` (random 0 / reference 1)."""
    rng = np.random.default_rng(seed)
    rows = []
    for (agent, game), group in curiosity.groupby(["agent", "game"], sort=True):
        auc, cov = group["curiosity_auc"].to_numpy(float), group["coverage"].to_numpy(float)
        row = {"agent": agent, "game": game, "episodes": len(group), "t_ref": group["t_ref"].iloc[0],
               "curiosity_auc": auc.mean(), "curiosity_auc_own": group["curiosity_auc_own"].mean()}
        row["curiosity_auc_ci_low"], row["curiosity_auc_ci_high"] = bootstrap_ci(
            (auc,), np.mean, rng, n_resamples, vectorized=True)
        row.update(coverage=cov.mean(), coverage_kind=group["coverage_kind"].iloc[0])
        row["coverage_ci_low"], row["coverage_ci_high"] = (bootstrap_ci((cov,), np.mean, rng, n_resamples, vectorized=True)
                                                           if np.isfinite(cov).all() else (np.nan, np.nan))
        rows.append(row)
    table = pd.DataFrame(rows)
    by_game = curiosity.groupby("game")[["steps", "curiosity_auc"]].apply(
        lambda g: stats.spearmanr(g["steps"], g["curiosity_auc"]).statistic if g["steps"].nunique() > 1 else np.nan)
    table["steps_auc_spearman"] = table["game"].map(by_game)
    reference_normalise(table, "curiosity_auc", "curiosity_ref_norm", random_agent, reference_agent)
    return table


# ------------------------------------------------------------------------------ Utility

def atari_reference_scores() -> pd.DataFrame:
    """Published random / human scores of the catalog's ALE games (``atari_reference_scores.yaml``,
    source cited there): index ``game``, columns ``random``, ``human``. Full-episode scores."""
    text = resources.files(__package__).joinpath("atari_reference_scores.yaml").read_text()
    data = yaml.safe_load(text)
    return pd.DataFrame.from_dict(data["games"], orient="index").rename_axis("game")[["random", "human"]]


def utility_table(episodes: pd.DataFrame, random_agent: str | None = "random", reference_agent: str | None = None,
                  n_resamples: int = N_RESAMPLES, seed: int = 0, eps: float = 0.0) -> pd.DataFrame:
    """Utility per (agent, game): mean ``return`` within the cap (+ bootstrap 95 % interval),
    ``capped`` (episodes that reached the cap), ``hns_published_pct`` (+ interval) against the
    published random/human Atari scores (NaN for games not in the table) with
    ``normalisation_valid`` = no episode was capped (the published scores are full games), and
    ``utility_ref_norm`` = the workbench's own random 0 / reference 1 scale (paper Eq. 12, ``eps``)."""
    episodes = validate_episodes(episodes)
    rng = np.random.default_rng(seed)
    rows = []
    for (agent, game), group in episodes.groupby(["agent", "game"], sort=True):
        ret = group["return"].to_numpy(float)
        low, high = bootstrap_ci((ret,), np.mean, rng, n_resamples, vectorized=True)
        rows.append({"agent": agent, "game": game, "episodes": len(group), "cap": int(group["cap"].iloc[0]),
                     "capped": int(group["truncated"].sum()), "return": ret.mean(), "return_ci_low": low,
                     "return_ci_high": high})
    table = pd.DataFrame(rows)
    published = atari_reference_scores().reindex(table["game"])
    table["hns_random"], table["hns_human"] = published["random"].to_numpy(), published["human"].to_numpy()
    percent = (table["hns_human"] - table["hns_random"]) / 100.0
    _affine(table, "return", "hns_published_pct", table["hns_random"], percent)
    table["normalisation_valid"] = table["hns_random"].notna() & (table["capped"] == 0)
    reference_normalise(table, "return", "utility_ref_norm", random_agent, reference_agent, eps)
    return table


# ------------------------------------------------------------------------------ aggregates

def level_scores(survival: pd.DataFrame | None = None, curiosity: pd.DataFrame | None = None,
                 utility: pd.DataFrame | None = None, columns: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Stack the level tables into ``agent``, ``game``, ``level``, ``score`` for
    :func:`rank_aggregates`; ``columns`` picks each level's score column (default: the random 0 /
    reference 1 normalisations of Tab. 2). Per-game ranks do not depend on the choice: every
    normalisation is a positive per-game rescaling."""
    columns = {"survival": "survival_ref_norm", "curiosity": "curiosity_ref_norm", "utility": "utility_ref_norm",
               **(columns or {})}
    parts = [table.assign(level=level, score=table[columns[level]])[["agent", "game", "level", "score"]]
             for level, table in zip(LEVELS, (survival, curiosity, utility)) if table is not None]
    if not parts:
        raise ValueError("level_scores needs at least one level table")
    return pd.concat(parts, ignore_index=True)


def rank_aggregates(scores: pd.DataFrame, top: int = 3) -> pd.DataFrame:
    """Tab. 2's aggregates per (agent, level) from a long ``agent, game, level, score`` table
    (higher score = better).

    ``mean`` / ``median`` of the per-game scores; ``avg_rank``: the agent's rank among the agents
    of each game (1 = best, ties averaged), averaged over games (lower = better);
    ``ratio_top3``: % of games where the agent ranks within the top ``top`` (competition ranking,
    so agents tied at the boundary all count). Level ``overall`` ranks, per game, the mean of an
    agent's level scores (only agent-games with every level), then averages as above (the paper
    does not state its rule). Missing scores (NaN) are left out of a game's ranking.
    """
    missing = {"agent", "game", "level", "score"} - set(scores.columns)
    if missing:
        raise ValueError(f"rank_aggregates: missing columns {sorted(missing)}")
    scores = scores.dropna(subset=["score"])
    levels = list(dict.fromkeys(scores["level"]))
    combined = scores.pivot_table(index=["agent", "game"], columns="level", values="score").dropna()
    if len(levels) > 1 and len(combined):
        overall = combined.mean(axis=1).rename("score").reset_index().assign(level="overall")
        scores = pd.concat([scores, overall], ignore_index=True)
    by = scores.groupby(["level", "game"])["score"]
    scores = scores.assign(rank=by.rank(method="average", ascending=False),
                           top=by.rank(method="min", ascending=False) <= top)
    out = scores.groupby(["agent", "level"], sort=False).agg(
        games=("game", "nunique"), mean=("score", "mean"), median=("score", "median"), avg_rank=("rank", "mean"),
        ratio_top3=("top", "mean")).reset_index()
    out["ratio_top3"] *= 100.0
    order = {level: i for i, level in enumerate([*LEVELS, "overall"])}
    return out.sort_values(["level", "avg_rank"], key=lambda s: s.map(order) if s.name == "level" else s,
                           kind="stable").reset_index(drop=True)


# ------------------------------------------------------------------------------ played episodes

#: Per-step outcome labels that mark an irreversible failure (ViZDoom death, CarRacing off track).
FAILURE_OUTCOMES = ("death", "off_track")
#: Block-averaged frame grid of :func:`pixel_embedding` (16 x 16 x RGB = 768 dimensions).
PIXEL_GRID = 16


def episode_outcome(labels: Mapping[str, np.ndarray], cap: int) -> dict:
    """Episode-table fields of one played episode from its per-step labels (a recording's or a
    rollout's: ``reward``, ``episode_end`` as names or codes, and ``death`` / ``off_track`` /
    ``lives`` where the game has them; a label filled with -1 counts as absent).

    Failure: the first step with a failure outcome (``FAILURE_OUTCOMES``), else the first life lost
    (ALE ``lives`` drops; the game plays on to game over); a game without a failure outcome (ALE)
    fails when it ends. A game that ends without a failure where it could report one (my_way_home's
    vest, CarRacing's finished lap) reached its goal: ``goal_reached``, and survival is censored there.
    Returns ``steps``, ``cap``, ``terminated`` (ended by the failure), ``truncated`` (ended by a
    length limit), ``goal_reached``, ``return``, ``failure_step`` (steps survived; NaN = none).
    """
    reward = np.asarray(labels["reward"], float)
    steps = len(reward)
    end = labels["episode_end"][-1]
    end = EPISODE_END_CLASSES[int(end)] if np.issubdtype(np.asarray(end).dtype, np.number) else str(end)
    failure, explicit = np.nan, False
    for name in FAILURE_OUTCOMES:
        values = np.asarray(labels.get(name, []), float)
        if (values >= 0).any():  # a store fills a label its game lacks with -1
            explicit = True
            hits = np.flatnonzero(values > 0)
            if len(hits):
                failure = min(failure, float(hits[0] + 1)) if np.isfinite(failure) else float(hits[0] + 1)
    if not explicit and "lives" in labels:
        lost = np.flatnonzero(np.diff(np.asarray(labels["lives"], float)) < 0)
        if len(lost):
            failure = float(lost[0] + 1)
    game_over = end == "terminated"
    if game_over and not explicit and not np.isfinite(failure):
        failure = float(steps)
    terminated = game_over and np.isfinite(failure)
    return {"steps": steps, "cap": int(cap), "terminated": bool(terminated), "truncated": end == "truncated",
            "goal_reached": bool(game_over and not terminated), "return": float(reward.sum()), "failure_step": failure}


def pixel_embedding(frames: np.ndarray, grid: int = PIXEL_GRID) -> np.ndarray:
    """A model-free frame embedding for Curiosity: ``frames (n, H, W, 3)`` uint8 area-averaged to
    ``grid`` x ``grid`` and flattened, in [0, 1]: ``(n, grid * grid * 3)`` float32."""
    small = resize_frames(np.asarray(frames), (grid, grid))
    return (small.reshape(len(small), -1) / 255.0).astype(np.float32)


def goal_table(episodes: pd.DataFrame, n_resamples: int = N_RESAMPLES, seed: int = 0) -> pd.DataFrame:
    """Goal reaching in the real game per (agent, game), from episodes with ``goal_distance_start``
    and ``goal_distance_end`` (map units from the player to the episode's goal position): mean
    ``progress`` = start - end distance (+ bootstrap 95 % interval; > 0 = got closer) and the mean
    final ``goal_distance``. Empty when no episode has a goal."""
    if "goal_distance_start" not in episodes:
        return pd.DataFrame()
    rng = np.random.default_rng(seed)
    have = episodes[np.isfinite(pd.to_numeric(episodes["goal_distance_start"], errors="coerce"))]
    rows = []
    for (agent, game), group in have.groupby(["agent", "game"], sort=True):
        progress = (group["goal_distance_start"] - group["goal_distance_end"]).to_numpy(float)
        low, high = bootstrap_ci((progress,), np.mean, rng, n_resamples, vectorized=True)
        rows.append({"agent": agent, "game": game, "episodes": len(group), "progress": progress.mean(),
                     "progress_ci_low": low, "progress_ci_high": high,
                     "goal_distance": float(group["goal_distance_end"].mean())})
    return pd.DataFrame(rows)


#: The raw column each level is ranked on (per-game ranks are the same under any positive rescaling).
RAW_SCORES = {"survival": "rmst", "curiosity": "curiosity_auc", "utility": "return"}


def level_ranks(survival: pd.DataFrame, curiosity: pd.DataFrame | None, utility: pd.DataFrame,
                reference_agent: str | None = None) -> pd.DataFrame:
    """Avg. Rank and Ratio@Top-3 per agent and level (:func:`rank_aggregates`), ranked per game on
    the raw level values (``RAW_SCORES``; ties share the average rank); ``overall`` ranks, per
    game, an agent's mean rank over the levels. ``mean_ref_norm``: the agent's mean Tab. 2 score
    (random 0 / ``reference_agent`` 1) over the games where it is finite (a game where the two
    references tie has none); NaN without a reference."""
    tables = {level: t for level, t in zip(LEVELS, (survival, curiosity, utility)) if t is not None}
    raw = level_scores(**tables, columns=RAW_SCORES).dropna(subset=["score"])
    raw["score"] = -raw.groupby(["level", "game"])["score"].rank(method="average", ascending=False)
    out = rank_aggregates(raw).drop(columns=["mean", "median"])
    out["mean_ref_norm"] = np.nan
    if reference_agent is not None:
        norm = level_scores(**tables)
        norm = norm[np.isfinite(norm["score"])].groupby(["agent", "level"])["score"].mean()
        out["mean_ref_norm"] = [norm.get((a, level), np.nan) for a, level in zip(out["agent"], out["level"])]
    return out


def level_table(survival: pd.DataFrame, curiosity: pd.DataFrame | None, utility: pd.DataFrame) -> pd.DataFrame:
    """The level table, one row per (agent, game): Survival RMST, Curiosity E with ground-truth
    coverage beside it, Utility return and published HNS (with its validity), each with its 95 %
    interval, and the agent's rank among the game's agents per level (1 = best; ties averaged)."""
    keep = {"survival": ["episodes", "cap", "failures", "rmst", "rmst_ci_low", "rmst_ci_high", "survival_unit"],
            "curiosity": ["curiosity_auc", "curiosity_auc_ci_low", "curiosity_auc_ci_high", "coverage",
                          "coverage_ci_low", "coverage_ci_high", "coverage_kind"],
            "utility": ["capped", "return", "return_ci_low", "return_ci_high", "hns_published_pct",
                        "hns_published_pct_ci_low", "hns_published_pct_ci_high", "normalisation_valid"]}
    out = survival[["agent", "game", *keep["survival"]]]
    if curiosity is not None:
        out = out.merge(curiosity[["agent", "game", *keep["curiosity"]]], on=["agent", "game"], how="left")
    out = out.merge(utility[["agent", "game", *keep["utility"]]], on=["agent", "game"], how="left")
    for level, column in RAW_SCORES.items():
        if column in out:
            out[f"rank_{level}"] = out.groupby("game")[column].rank(method="average", ascending=False)
    return out
