"""The claims ledger: each claim of a seed paper (quoted, with its section) against the
workbench's number computed from a study folder's tables, a 95 % bootstrap interval, the
control that would make it fail, and a verdict. Computing only; reports render the DataFrame.

**Claims.** A :class:`Claim` is a small declarative entry: quote, section, the function that
turns a study's tables into one :class:`Measurement` per scope (a domain, a game, a model), the
bootstrap unit, the control, and the claim's interval ``rule = (low, high)``: the claim says
its statistic lies strictly inside it (one end may be infinite).

**Bootstrap.** A vectorised numpy percentile bootstrap (not ``scipy.stats.bootstrap``):
``B = 2000`` resamples from ``np.random.default_rng(seed)``; each resample draws the claim's
units (test blocks, clips, planning episodes, game pairs) with replacement *within each stratum*
(the game), as multinomial counts ``W (B, n_units)``, and the statistic is recomputed from the
units' sums (ratios of weighted sums: balanced accuracy = mean over classes of Σ correct / Σ
frames). Paired claims (A − B) use the same draw for both terms. The interval is the 2.5 and
97.5 percentiles of the replicates.

**Seeds.** Replicates are finished sibling study folders whose config equals this one's but for
its seeds (``seed``, and ``data_seed``/``draw_seed`` where the config has them). The estimate is the mean of the per-seed estimates; the
interval a two-stage bootstrap: draw seeds with replacement, then units within each drawn seed
(a seed without per-unit data contributes its point estimate). It is computed with ≥ 3 seeds, or
with fewer when every seed has per-unit data (one seed: the plain unit bootstrap). With 3 seeds
and no per-unit data the seed-level interval is narrow by construction: read it as a floor.

**Verdict.** *reproduced* when the interval lies inside the claim's rule, *refuted* when it lies
wholly outside, else *inconclusive at this budget*. Without an interval (no per-unit table and
fewer than 3 seeds) the verdict is *inconclusive: no per-block data* (or *too few units*: fewer
than :data:`MIN_UNITS` units give no interval). Units pool over seeds: a scope with few units
per seed (a small game's handful of test blocks) gets the two-stage interval once its seeds hold
:data:`MIN_UNITS` units together (each seed ≥ 2); a missing table gives
*inconclusive: not measured (…)*. Nothing is written by hand: every number comes from the tables.

**Per-unit table** (``units.csv``: in each seed 000 domain folder, in a seed 002 run folder), one
row per unit × class of a measured quantity: ``quantity`` (``accuracy``, ``probe``,
``silhouette_action``, ``leakage_cut`` …: see each claim), ``model``, ``game``, ``head``
(selectors, empty when not applicable), ``stratum`` (the game), ``unit`` (block / clip /
episode id within the stratum), ``class`` (the true class for per-class sums, empty for plain
means), ``num`` and ``den`` (sums over the unit's frames: correct predictions and frames of that
class, or Σ value and count). :func:`unit_rows` builds them from per-frame arrays. Two saved
tables are read as units directly: a seed 000 domain's ``test_predictions.csv`` (one row per
labeled test frame: ``game``, ``block``, true ``steer``, one column of predicted classes per
method) gives ``accuracy`` rows per test block — models ``joint_v3``, ``single:<game>``,
``ceiling:<game>``, ``flow_percentile`` … and ``few_shot`` (its label draws pooled) — and a seed
002 run's per-clip ``leakage_clips.csv``, ``cycle_clips.csv``, ``controllers_clips.csv`` (longest
horizon) and per-episode ``planning.csv`` give one unit per clip / episode
(:data:`SEED002_UNITS`).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from ..core.errors import DataError
from .framework import RUNTIME_FIELDS, read_record

N_BOOT = 2000
MIN_SEEDS = 3
MIN_UNITS = 8  # fewer units (over the pooled seeds): no interval (a bootstrap of a handful is no interval)
UNITS = "units.csv"
UNIT_COLUMNS = ["quantity", "model", "game", "head", "stratum", "unit", "class", "num", "den"]
COLUMNS = ["claim", "scope", "section", "quote", "estimate", "ci_low", "ci_high", "n_units", "unit", "seeds",
           "control", "control_estimate", "rule", "rule_low", "rule_high", "verdict", "note"]
REPRODUCED, REFUTED, INCONCLUSIVE = "reproduced", "refuted", "inconclusive at this budget"
NO_UNITS = "inconclusive: no per-block data"


# ---------------------------------------------------------------------------------------------
# measurements and the bootstrap

@dataclass
class Measurement:
    """One claim's statistic in one scope.

    ``point``: the estimate. ``units``: the bootstrap units' strata ``(n,)`` (None: no per-unit
    data). ``replicate``: resample counts ``W (B, n)`` → statistic ``(B,)`` (``W`` of ones gives
    the point). ``control``: the control's own number where it is computed. ``missing``: why
    there is no estimate (the verdict says it)."""

    point: float = np.nan
    units: np.ndarray | None = None
    replicate: Callable[[np.ndarray], np.ndarray] | None = None
    control: float = np.nan
    note: str = ""
    missing: str = ""


def missing(reason: str) -> Measurement:
    return Measurement(missing=reason)


def resample_counts(strata: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Counts ``(n_boot, n)`` of a bootstrap draw of the ``n`` units, with replacement within
    each stratum (each stratum keeps its number of units)."""
    strata = np.asarray(strata)
    out = np.zeros((n_boot, len(strata)))
    for s in pd.unique(strata):
        idx = np.flatnonzero(strata == s)
        out[:, idx] = rng.multinomial(len(idx), np.full(len(idx), 1 / len(idx)), size=n_boot)
    return out


def replicates(m: Measurement, n_boot: int, rng: np.random.Generator,
               min_units: int = MIN_UNITS) -> np.ndarray | None:
    """``(n_boot,)`` bootstrap replicates of a measurement, or None without per-unit data (or
    with fewer than ``min_units`` units)."""
    if m.units is None or m.replicate is None or len(m.units) < min_units:
        return None
    return np.asarray(m.replicate(resample_counts(m.units, n_boot, rng)), float)


def _nanmean(a: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmean`` that gives NaN without a warning on an all-NaN slice (a bootstrap draw
    that holds no unit of a class, or only seeds without an estimate)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def pooled(measurements: Sequence[Measurement], n_boot: int = N_BOOT, seed: int = 0) -> dict:
    """Estimate, 95 % interval and unit count over one or more seed replicates (module docstring)."""
    rng = np.random.default_rng(seed)
    ok = [m for m in measurements if not m.missing and np.isfinite(m.point)]
    if not ok:
        return {"estimate": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n_units": 0, "seeds": 0}
    n_units = int(sum(len(m.units) for m in ok if m.units is not None))
    # several seeds holding MIN_UNITS units together: each seed's units resample within the seed
    min_units = 2 if len(ok) > 1 and n_units >= MIN_UNITS else MIN_UNITS
    reps = [replicates(m, n_boot, rng, min_units) for m in ok]
    point = float(np.mean([m.point for m in ok]))
    if len(ok) >= MIN_SEEDS or all(r is not None for r in reps):
        table = np.stack([np.full(n_boot, m.point) if r is None else r for m, r in zip(ok, reps)])  # (S, B)
        draw = rng.integers(0, len(ok), size=(n_boot, len(ok)))
        boot = _nanmean(table[draw, np.arange(n_boot)[:, None]], axis=1)
    else:
        boot = None
    low, high = (np.nan, np.nan) if boot is None or np.isfinite(boot).sum() < 2 else np.nanpercentile(boot, [2.5, 97.5])
    return {"estimate": point, "ci_low": float(low), "ci_high": float(high), "n_units": n_units, "seeds": len(ok)}


def verdict(ci_low: float, ci_high: float, rule: tuple[float, float]) -> str:
    """reproduced / refuted / inconclusive from a 95 % interval and the claim's ``(low, high)``."""
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return NO_UNITS  # the caller names its unit
    low, high = rule
    if ci_low > low and ci_high < high:
        return REPRODUCED
    if ci_high <= low or ci_low >= high:
        return REFUTED
    return INCONCLUSIVE


# ---------------------------------------------------------------------------------------------
# per-unit sums

def unit_rows(quantity: str, num, den, stratum, unit, cls=None, **keys) -> pd.DataFrame:
    """Per-unit rows of ``units.csv`` from per-frame arrays ``(n,)``: ``num``/``den`` summed over
    the frames of each (stratum, unit, class). For balanced accuracy pass ``num`` = correct (0/1),
    ``den`` = 1, ``cls`` = the true class; for a mean pass the values and ``den`` = 1, no ``cls``.
    ``keys``: ``model``, ``game``, ``head`` (empty when not given)."""
    n = len(np.asarray(num))
    frame = pd.DataFrame({"stratum": np.asarray(stratum).astype(str), "unit": np.asarray(unit),
                          "class": "" if cls is None else np.asarray(cls).astype(str),
                          "num": np.asarray(num, float), "den": np.broadcast_to(np.asarray(den, float), (n,))})
    out = frame.groupby(["stratum", "unit", "class"], sort=False, as_index=False)[["num", "den"]].sum()
    for k in ("model", "game", "head"):
        out.insert(0, k, str(keys.get(k, "")))
    out.insert(0, "quantity", quantity)
    return out[UNIT_COLUMNS]


def accuracy_units(emb, model: str, head: str, block: int, quantity: str = "accuracy", pred=None) -> pd.DataFrame:
    """Per-block balanced-accuracy rows of a model's ``pred_<head>`` (or the class codes ``pred``
    ``(n,)``, e.g. a probe's) on an embeddings Dataset (:func:`workbench.methods.idm.extract_embeddings`,
    e.g. its test split): a unit is a split block, ``source_frame // block`` within each game;
    unlabeled and unpredicted (-1) frames are left out."""
    y = np.asarray(emb[head].values, np.int64)
    pred = np.asarray(emb[f"pred_{head}"].values if pred is None else pred, np.int64)
    classes = np.asarray(emb[head].attrs["classes"])
    game = np.asarray(emb["game"].values).astype(str)
    unit = np.asarray(emb["source_frame"].values, np.int64) // int(block)
    rows = [unit_rows(quantity, (pred == y)[sel], 1, game[sel], unit[sel], classes[y[sel]], model=model, game=g,
                      head=head)
            for g in pd.unique(game) for sel in [(game == g) & (y >= 0) & (pred >= 0)] if sel.any()]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=UNIT_COLUMNS)


def probe_units(ds, predictions: pd.DataFrame, block: int) -> pd.DataFrame:
    """``probe`` rows per block (model = the probe variant) from the out-of-fold predictions of
    :func:`workbench.analysis.probes.linear_probe` (``return_predictions``) on ``ds``."""
    rows = [accuracy_units(ds.isel(frame=part["row"].to_numpy(np.int64)), str(variant), str(head), block, "probe",
                           part["pred"].to_numpy(np.int64))
            for (head, variant), part in predictions.groupby(["head", "variant"], sort=False)]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=UNIT_COLUMNS)


def geometry_units(silhouette: pd.DataFrame, interleaving: pd.DataFrame, game, block) -> pd.DataFrame:
    """``silhouette_action`` / ``silhouette_game`` and ``interleaving_observed`` /
    ``interleaving_expected`` rows per test block from the per-row values of
    :func:`workbench.analysis.geometry.silhouette_scores` / ``interleaving`` (``return_values``;
    indexed by row position into ``game`` and ``block``, the rows' games and split blocks ``(n,)``)."""
    game, block = np.asarray(game).astype(str), np.asarray(block)
    rows = []
    for values, quantities in ((silhouette, {"silhouette_action": "by_action", "silhouette_game": "by_game"}),
                               (interleaving, {"interleaving_observed": "observed",
                                               "interleaving_expected": "expected"})):
        values = values.dropna()
        at = values.index.to_numpy()
        rows += [unit_rows(q, values[col].to_numpy(), 1, game[at], block[at]) for q, col in quantities.items()]
    return pd.concat(rows, ignore_index=True)


#: Per-frame prediction columns of ``test_predictions.csv`` that are not methods.
FRAME_COLUMNS = ("game", "episode", "step", "source_frame", "block", "steer")


def prediction_units(predictions: pd.DataFrame, head: str = "steer") -> pd.DataFrame:
    """``accuracy`` rows per test block from a seed 000 ``test_predictions.csv``: one model per
    method column (``single``/``ceiling`` become ``single:<game>``/``ceiling:<game>``; the
    ``few_shot_*`` draws pool into ``few_shot``); frames a method did not predict are left out."""
    game, block, truth = (predictions[c].astype(str).to_numpy() for c in ("game", "block", head))
    rows = []
    for column in predictions.columns.drop([c for c in FRAME_COLUMNS if c in predictions.columns]):
        pred = predictions[column].astype(str).to_numpy()
        name = "few_shot" if column.startswith("few_shot_") else column
        for g in pd.unique(game):
            sel = (game == g) & (pred != "")
            if sel.any():
                model = f"{name}:{g}" if name in ("single", "ceiling") else name
                rows.append(unit_rows("accuracy", pred[sel] == truth[sel], 1, game[sel], block[sel], truth[sel],
                                      model=model, game=g, head=head))
    if not rows:
        return pd.DataFrame(columns=UNIT_COLUMNS)
    out = pd.concat(rows, ignore_index=True)  # few-shot draws: the same block's sums added up
    return out.groupby(UNIT_COLUMNS[:7], sort=False, as_index=False)[["num", "den"]].sum()


#: Seed 002 per-clip / per-episode tables read as units: file → (unit column, {quantity: value
#: column}, column read as ``game``, column read as ``head``); ``stratum`` is the clip's game.
SEED002_UNITS = {
    "leakage_clips.csv": ("clip", {"leakage": "error", "leakage_cut": "error_cut"}, None, "pairing"),
    "cycle_clips.csv": ("clip", {"cycle": "error", "cycle_after": "error_cycle"}, None, "pairing"),
    "controllers_clips.csv": ("clip", {"controller": "error"}, "kind", "latent"),
    "planning.csv": ("episode", {"planning": "l1_std"}, None, "method"),
}


def table_units(table: pd.DataFrame, quantities: dict[str, str], unit: str, game: str | None = None,
                head: str | None = None) -> pd.DataFrame:
    """Unit rows from a seed 002 table with one row per clip or episode (``model``, ``game``,
    ``unit`` columns): one row per quantity, ``num`` = its value column, ``den`` = 1. A table
    with a ``horizon`` column keeps its longest horizon only (the controller claim's)."""
    if "horizon" in table.columns:
        table = table[table["horizon"] == table["horizon"].max()]
    keys = {"model": table["model"].astype(str), "game": table[game].astype(str) if game else "",
            "head": table[head].astype(str) if head else "", "stratum": table["game"].astype(str),
            "unit": table[unit], "class": ""}
    return pd.concat([pd.DataFrame({"quantity": q, **keys, "num": table[col].to_numpy(float), "den": 1.0})
                      for q, col in quantities.items()], ignore_index=True)[UNIT_COLUMNS]


class Term:
    """A macro-averaged ratio of unit sums (a balanced accuracy, a mean, an error) as a function of
    resample counts over a shared unit index; terms combine with ``-``, ``/``."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]):
        self.fn = fn

    def __call__(self, w: np.ndarray) -> np.ndarray:
        return self.fn(w)

    def __sub__(self, other: Term) -> Term:
        return Term(lambda w: self(w) - other(w))

    def __truediv__(self, other: Term) -> Term:
        return Term(lambda w: self(w) / other(w))


def unit_measurement(units: pd.DataFrame, build: Callable[[Callable[..., Term]], Term], **extra) -> Measurement:
    """A :class:`Measurement` over the units of ``units`` that ``build`` uses: ``build(term)``
    composes terms, ``term(quantity, **selectors)`` is one quantity's macro ratio (classes
    averaged); point = the statistic on all units once."""
    index = units[["stratum", "unit"]].drop_duplicates().reset_index(drop=True)
    position = pd.Series(np.arange(len(index)), index=pd.MultiIndex.from_frame(index))
    used: set[int] = set()

    def term(quantity: str, **selectors) -> Term:
        rows = units[units["quantity"] == quantity]
        for key, value in selectors.items():
            rows = rows[rows[key].astype(str) == str(value)]
        if rows.empty:
            raise KeyError(f"{quantity} {selectors}")
        classes = list(pd.unique(rows["class"].astype(str)))
        at = position.loc[pd.MultiIndex.from_frame(rows[["stratum", "unit"]])].to_numpy()
        used.update(at.tolist())
        num, den = np.zeros((len(index), len(classes))), np.zeros((len(index), len(classes)))
        col = pd.Index(classes).get_indexer(rows["class"].astype(str))
        np.add.at(num, (at, col), rows["num"].to_numpy(float))
        np.add.at(den, (at, col), rows["den"].to_numpy(float))

        def fn(w: np.ndarray) -> np.ndarray:
            with np.errstate(invalid="ignore", divide="ignore"):
                return _nanmean((w @ num) / (w @ den), axis=1)
        return Term(fn)

    try:
        stat = build(term)
    except KeyError as err:
        return missing(f"not measured (no per-unit rows for {err.args[0]})")
    keep = np.array(sorted(used))

    def replicate(w_used: np.ndarray) -> np.ndarray:
        w = np.zeros((len(w_used), len(index)))
        w[:, keep] = w_used
        with np.errstate(invalid="ignore", divide="ignore"):
            return stat(w)
    point = float(replicate(np.ones((1, len(keep))))[0])
    return Measurement(point, index["stratum"].to_numpy()[keep], replicate, **extra)


def rank_correlation(x: np.ndarray, y: np.ndarray, strata: np.ndarray | None = None, **extra) -> Measurement:
    """Spearman ρ of paired values with the pairs as bootstrap units (ties averaged)."""
    from scipy.stats import rankdata

    x, y = np.asarray(x, float), np.asarray(y, float)

    def replicate(w: np.ndarray) -> np.ndarray:
        out = np.full(len(w), np.nan)
        for b, counts in enumerate(w.astype(int)):
            rx, ry = rankdata(np.repeat(x, counts)), rankdata(np.repeat(y, counts))
            if rx.std() > 0 and ry.std() > 0:
                out[b] = np.corrcoef(rx, ry)[0, 1]
        return out
    strata = np.zeros(len(x), int) if strata is None else strata
    return Measurement(float(replicate(np.ones((1, len(x))))[0]), strata, replicate, **extra)


# ---------------------------------------------------------------------------------------------
# a study's tables

class NotMeasured(Exception):
    """A table a claim needs is missing: its verdict says "inconclusive: not measured (…)"."""


class Tables:
    """The saved tables of one study folder (a seed 000 domain folder or a seed 002 run), each
    read once; ``units`` joins ``units.csv`` with the per-episode planning rows."""

    def __init__(self, folder: Path, record: dict):
        self.folder, self.record = Path(folder), record

    def csv(self, name: str, **kw) -> pd.DataFrame | None:
        path = self.folder / name
        return pd.read_csv(path, **kw) if path.is_file() and path.stat().st_size > 1 else None

    def need(self, name: str, columns: Sequence[str] = (), **kw) -> pd.DataFrame:
        """The table ``name`` with ``columns``, or :class:`NotMeasured`."""
        table = self.csv(name, **kw)
        if table is None or not set(columns) <= set(table.columns):
            raise NotMeasured(f"no {name}" + (f" with {', '.join(columns)}" if table is not None else ""))
        return table

    def json(self, name: str) -> dict | None:
        path = self.folder / name
        return json.loads(path.read_text()) if path.is_file() else None

    @cached_property
    def units(self) -> pd.DataFrame:
        parts = []
        table = self.csv(UNITS, keep_default_na=False)
        if table is not None:
            missing_cols = set(UNIT_COLUMNS) - set(table.columns)
            if missing_cols:
                raise DataError(f"{self.folder / UNITS}: missing columns {sorted(missing_cols)}")
            parts.append(table[UNIT_COLUMNS])
        predictions = self.csv("test_predictions.csv", keep_default_na=False)
        if predictions is not None and len(predictions):
            parts.append(prediction_units(predictions))
        for name, (unit, quantities, game, head) in SEED002_UNITS.items():
            table = self.csv(name)
            if table is not None and len(table):
                parts.append(table_units(table, quantities, unit, game, head))
        if not parts:
            return pd.DataFrame(columns=UNIT_COLUMNS)
        out = pd.concat(parts, ignore_index=True)
        for col in ("quantity", "model", "game", "head", "stratum", "class"):
            out[col] = out[col].astype(str)
        return out

    def has_units(self, quantity: str) -> bool:
        return bool((self.units["quantity"] == quantity).any())


def summary_or_units(tables: Tables, quantities: Sequence[str], point: float,
                     build: Callable[[Callable[..., Term]], Term], **extra) -> Measurement:
    """The per-unit measurement when every quantity has per-unit rows, else the summary tables'
    point estimate without an interval."""
    if all(tables.has_units(q) for q in quantities):
        m = unit_measurement(tables.units, build, **extra)
        if not m.missing:
            return m
    return Measurement(point, **extra)


# ---------------------------------------------------------------------------------------------
# claims

@dataclass(frozen=True)
class Claim:
    """One claim of a seed paper and how the workbench tests it (module docstring)."""

    id: str
    paper: str  # "seed000" / "seed002"
    section: str
    quote: str
    estimate: Callable[[Tables], dict[str, Measurement]]
    unit: str
    control: str
    rule: tuple[float, float]
    domains: tuple[str, ...] = ()  # seed 000: the domains it is tested on (empty: every domain)

    @property
    def rule_text(self) -> str:
        low, high = self.rule
        if np.isinf(low):
            return f"< {high:g}"
        if np.isinf(high):
            return f"> {low:g}"
        return f"in ({low:g}, {high:g})"


CLAIMS: dict[str, list[Claim]] = {"seed000": [], "seed002": []}


def claim(paper: str, id: str, section: str, quote: str, unit: str, control: str, rule: tuple[float, float],
          domains: tuple[str, ...] = ()):
    """Register the decorated estimate function as a claim of ``paper``."""
    def register(fn: Callable[[Tables], dict[str, Measurement]]):
        CLAIMS[paper].append(Claim(id, paper, section, quote, fn, unit, control, rule, domains))
        return fn
    return register


INF = np.inf
MAIN_HEAD = "steer"


def _ba(acc: pd.DataFrame, model: str, game: str, head: str = MAIN_HEAD) -> float:
    row = acc[(acc.model == model) & (acc.game == game) & (acc["head"] == head)]
    return float(row["balanced_accuracy"].iloc[0]) if len(row) else np.nan


def _games(tables: Tables, acc: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(acc.loc[acc.model == "joint_v3", "game"].astype(str)))


@claim("seed000", "clusters-by-action", "§4.2, Figure 2",
       "Joint training clusters by action, not game. … embeddings cluster by action class (LEFT, NEUTRAL, "
       "RIGHT) with frames from all games distributed across each cluster.",
       "test block", "silhouette by game: a representation that separates games scores higher there",
       (0.0, INF))
def _clusters(t: Tables) -> dict[str, Measurement]:
    """silhouette(by action) − silhouette(by game) of joint v3; units: ``silhouette_action`` /
    ``silhouette_game`` (Σ per-sample silhouette and count per test block)."""
    g = t.need("geometry.csv", index_col=0)["value"]
    point = float(g.get("silhouette_by_action", np.nan) - g.get("silhouette_by_game", np.nan))
    return {"": summary_or_units(t, ["silhouette_action", "silhouette_game"], point,
                                 lambda q: q("silhouette_action") - q("silhouette_game"),
                                 control=float(g.get("silhouette_by_game", np.nan)))}


@claim("seed000", "interleaved", "§4.1, Figure 1",
       "PP and Enduro frames interleaved within each cluster — the model has learned to represent steering "
       "direction, not game identity.",
       "test block", "games in separate sub-clusters of each action (interleaving 0); claim read as ≥ half "
       "the mixing of random interleaving", (0.5, INF))
def _interleaved(t: Tables) -> dict[str, Measurement]:
    """Interleaving Σ observed / Σ expected over all actions; units: ``interleaving_observed`` and
    ``interleaving_expected`` per test block."""
    inter = t.need("interleaving.csv", index_col=0)
    return {"": summary_or_units(t, ["interleaving_observed", "interleaving_expected"],
                                 float(inter["interleaving"].get("all", np.nan)),
                                 lambda q: q("interleaving_observed") / q("interleaving_expected"))}


@claim("seed000", "joint-helps-small-game", "§4.1, Table 1",
       "Single-game (Enduro only) 52.1% … Joint IDM v3 (+hflip aug.) 58.3%",
       "test block", "the single-game model of the smallest game on the same test blocks (same updates per game)",
       (0.0, INF))
def _small_game(t: Tables) -> dict[str, Measurement]:
    """Balanced accuracy (steer) of joint v3 − the single-game model on the game with the fewest
    frames; units: ``accuracy`` rows of both models."""
    acc, summary = t.need("accuracy.csv"), t.need("data_summary.csv", ["frames"], index_col=0)
    game = str(summary["frames"].idxmin())
    single = f"single:{game}"
    point = _ba(acc, "joint_v3", game) - _ba(acc, single, game)
    m = summary_or_units(t, ["accuracy"], point,
                         lambda q: q("accuracy", model="joint_v3", game=game, head=MAIN_HEAD)
                         - q("accuracy", model=single, game=game, head=MAIN_HEAD),
                         control=_ba(acc, single, game),
                         note=f"{game}: {int(summary.loc[game, 'frames'])} of {int(summary['frames'].sum())} frames")
    return {game: m}


@claim("seed000", "probe-beats-zero-shot", "§4.3",
       "a linear probe on the same embeddings reaches 71.9% and 63.9%. The information is there; the decision "
       "boundary is wrong.",
       "test block", "a probe on shuffled labels (chance where it was not run); probes fitted on frames the IDM "
       "never trained on, scored on test", (0.0, INF))
def _probe(t: Tables) -> dict[str, Measurement]:
    """Per game: per-game linear probe − joint v3 zero-shot, balanced accuracy (steer); units:
    ``probe`` (model ``per_game``/``joint``) and ``accuracy`` (model ``joint_v3``)."""
    acc, probes = t.need("accuracy.csv"), t.need("probes.csv")
    probes = probes[probes["head"] == MAIN_HEAD]
    variant = "per_game" if (probes.variant == "per_game").any() else "joint"
    out = {}
    for game in _games(t, acc):
        row = probes[(probes.game == game) & (probes.variant == variant)]
        if row.empty:
            continue
        shuffled = probes[(probes.game == game) & (probes.variant == "shuffled")]
        control = float((shuffled if len(shuffled) else row)["balanced_accuracy" if len(shuffled) else "chance"].iloc[0])
        point = float(row["balanced_accuracy"].iloc[0]) - _ba(acc, "joint_v3", game)
        out[game] = summary_or_units(t, ["probe", "accuracy"], point,
                                     lambda q, g=game: q("probe", model=variant, game=g, head=MAIN_HEAD)
                                     - q("accuracy", model="joint_v3", game=g, head=MAIN_HEAD),
                                     control=control, note=f"{variant} probe")
    return out or {"": missing("not measured (no steer probes)")}


@claim("seed000", "fifty-labels-close-gap", "§4.3, §5",
       "With 50 labeled frames per class, the boundary can be repositioned and the full accuracy is recovered.",
       "test block", "few-shot no better than zero-shot (0 % closed); the gap itself (ceiling − zero-shot) is the "
       "control number", (0.9, INF))
def _fifty(t: Tables) -> dict[str, Measurement]:
    """Per game: fraction of the gap closed, (few-shot − zero-shot) / (ceiling − zero-shot);
    units: ``accuracy`` of models ``few_shot``, ``joint_v3`` and ``ceiling:<game>``."""
    gap = t.need("calibration_gap.csv", ["few_shot", "gap"], index_col=0)
    out = {}
    for game, row in gap.iterrows():
        if not row["gap"] > 0:
            out[str(game)] = Measurement(control=float(row["gap"]), missing="no gap at this budget")
            continue
        out[str(game)] = summary_or_units(
            t, ["accuracy"], float((row["few_shot"] - row["zero_shot"]) / row["gap"]),
            lambda q, g=game: (q("accuracy", model="few_shot", game=g, head=MAIN_HEAD)
                               - q("accuracy", model="joint_v3", game=g, head=MAIN_HEAD))
            / (q("accuracy", model=f"ceiling:{g}", game=g, head=MAIN_HEAD)
               - q("accuracy", model="joint_v3", game=g, head=MAIN_HEAD)),
            control=float(row["gap"]))
    return out


@claim("seed000", "p67-near-ceiling", "§5",
       "setting the neutral threshold at the 67th percentile, we recover 91.1% accuracy on Pole Position — within "
       "0.3 pp of the supervised ceiling.",
       "test block", "the oracle prior: p67 is the truth on a game ≈ 2/3 neutral; control number = the game's true "
       "neutral share (judge games far from 0.67)", (-0.01, 0.01))
def _p67(t: Tables) -> dict[str, Measurement]:
    """Per game: flow-p67 zero-label accuracy − the 20 % ceiling (balanced, steer), within ±1 pp;
    units: ``accuracy`` of models ``flow_percentile`` and ``ceiling:<game>``."""
    gap = t.need("calibration_gap.csv", ["flow_percentile", "ceiling"], index_col=0)
    summary = t.csv("data_summary.csv", index_col=0)
    out = {}
    for game, row in gap.iterrows():
        share = float(summary.loc[game, "steer_NEUTRAL"]) if summary is not None and "steer_NEUTRAL" in summary \
            and game in summary.index else np.nan
        out[str(game)] = summary_or_units(
            t, ["accuracy"], float(row["flow_percentile"] - row["ceiling"]),
            lambda q, g=game: q("accuracy", model="flow_percentile", game=g, head=MAIN_HEAD)
            - q("accuracy", model=f"ceiling:{g}", game=g, head=MAIN_HEAD),
            control=share, note=f"true neutral share {share:.2f}")
    return out


@claim("seed000", "knn-predicts-benefit", "§4.2, Figure 3",
       "This metric predicts which game pairs will benefit from joint training before running the experiment.",
       "ordered game pair", "which game is easy is not which pair helps: ρ within each query game (its row's mean "
       "taken out); control number = the 95th percentile of that ρ with partners shuffled within rows (2000 draws)",
       (0.0, INF))
def _knn(t: Tables) -> dict[str, Measurement]:
    """Spearman ρ between off-diagonal KNN accuracy and the benefit of joint training over ordered
    pairs (``knn_matrix.csv``, ``benefit_matrix.csv``), each centred on its query game's mean so a
    game that is easy (high KNN) or hard alone (large benefit) cannot make the correlation; pairs
    resampled (they share games, so the interval is optimistic). The unadjusted ρ and its p value
    (``knn_benefit.json``) are in the note."""
    knn = t.need("knn_matrix.csv", index_col=0)
    if len(knn) < 3:  # one partner per query game: nothing to rank within a row
        raise NotMeasured(f"{len(knn)} games; ranking partners within each query game needs ≥ 3")
    benefit = t.need("benefit_matrix.csv", index_col=0)  # only with pairwise models (> 2 games)
    pairs = pd.concat([knn.stack(future_stack=True).rename("knn"), benefit.stack(future_stack=True).rename("benefit")],
                      axis=1, join="inner")
    off = np.array([q != r for q, r in pairs.index], bool)
    pairs = pairs[off & np.isfinite(pairs.to_numpy()).all(axis=1)]
    if len(pairs) < 3:
        raise NotMeasured(f"{len(pairs)} game pairs")
    query = pairs.index.get_level_values(0).to_numpy()
    centred = pairs - pairs.groupby(level=0).transform("mean")
    x, y = centred["knn"].to_numpy(), centred["benefit"].to_numpy()
    rng = np.random.default_rng(0)
    groups = [np.flatnonzero(query == q) for q in pd.unique(query)]
    null = []
    for _ in range(2000):  # partners shuffled within each query row
        order = np.arange(len(y))
        for g in groups:
            order[g] = rng.permutation(g)
        null.append(rank_correlation(x, y[order]).point)
    stats = t.json("knn_benefit.json") or {}
    note = f"unadjusted ρ = {stats['rho']:.2f}, p = {stats['p_value']:.3f}" if {"rho", "p_value"} <= set(stats) else ""
    return {"": rank_correlation(x, y, query, control=float(np.nanpercentile(null, 95)), note=note)}


@claim("seed000", "movement-beats-camera", "§4.3, Table 2",
       "Movement keys align well. … Camera direction is where the calibration gap is most visible.",
       "test block", "both heads scored above chance on the same test blocks; chance-normalised so 2- and 3-class "
       "heads compare; control number = camera head's normalised score", (0.0, INF), domains=("first_person",))
def _movement(t: Tables) -> dict[str, Measurement]:
    """Per game: joint v3 chance-normalised balanced accuracy, (BA − chance) / (1 − chance), of
    the forward key (``key_w``) − the camera direction (``steer``)."""
    acc = t.need("accuracy.csv")
    if not (acc["head"] == "key_w").any():
        raise NotMeasured("no key_w head")
    out = {}
    for game in _games(t, acc):
        rows = acc[(acc.model == "joint_v3") & (acc.game == game)].set_index("head")
        if not {"key_w", MAIN_HEAD} <= set(rows.index):
            continue
        norm = (rows["balanced_accuracy"] - rows["chance"]) / (1 - rows["chance"])
        chance = rows["chance"]

        def build(q, g=game):
            def scaled(head):
                c, term = float(chance[head]), q("accuracy", model="joint_v3", game=g, head=head)
                return Term(lambda w: (term(w) - c) / (1 - c))
            return scaled("key_w") - scaled(MAIN_HEAD)
        out[game] = summary_or_units(t, ["accuracy"], float(norm["key_w"] - norm[MAIN_HEAD]), build,
                                     control=float(norm[MAIN_HEAD]))
    return out


# --- seed 002 --------------------------------------------------------------------------------

def _short(model_id: str, record: dict) -> str:
    study_id = record["config"]["study_id"]
    return model_id[len(study_id) + 1:] if model_id.startswith(study_id + ".") else model_id


@claim("seed002", "leakage-above-1", "§6, Table 1",
       "no matter the capacity of the latent actions, we find that the prediction error more than doubles compared "
       "to its baseline level.",
       "test clip", "a latent that carries the next frame: error at a scene cut ≈ without it (ratio 1); the "
       "deterministic model on the same cuts shows where a latent that carries nothing sits (control number: "
       "its ratio)", (1.0, INF))
def _leakage(t: Tables) -> dict[str, Measurement]:
    """Per latent model: one-step error at a scene cut / without it; units: ``leakage_cut`` and
    ``leakage`` (Σ error and count per clip, model = its name in the run). The ``zero`` model's
    row, where a run has one, is the control: nothing can leak through a latent that is always 0."""
    leak = t.need("leakage.csv")
    zero = leak[leak.family == "zero"]
    control = float(zero.ratio.iloc[0]) if len(zero) else np.nan
    out = {}
    for row in leak[leak.family != "zero"].itertuples():
        name = _short(row.model_id, t.record)
        out[name] = summary_or_units(t, ["leakage", "leakage_cut"], float(row.ratio),
                                     lambda q, n=name, p=row.pairing: q("leakage_cut", model=n, head=p)
                                     / q("leakage", model=n, head=p), control=control)
    return out


def _capacity_order(t: Tables) -> pd.DataFrame:
    """Per latent model: family and mean one-step error (lower = more capacity, §5)."""
    cap = t.need("capacity.csv")
    one = cap[cap["mode"] == "one_step"].groupby(["model_id", "family"], sort=False)["error"].mean()
    return one.reset_index()


@claim("seed002", "cycle-worse-with-capacity", "§6, Table 2",
       "While latent actions with higher capacity lead to a worse transfer, their performance remains higher after "
       "transfer than their more constrained counterparts.",
       "test clip", "capacity measured, not assumed: control number = one-step error of the lower-capacity model − "
       "the higher (must be > 0 for the order to mean anything)", (0.0, INF))
def _cycle(t: Tables) -> dict[str, Measurement]:
    """Per family with ≥ 2 models: cycle ratio of its highest-capacity model (lowest one-step
    error) − of its lowest-capacity one (pairing ``across`` where run, else ``within``); units:
    ``cycle`` / ``cycle_after`` per clip, ``head`` = the pairing."""
    cycle, order = t.need("cycle.csv"), _capacity_order(t)
    pairing = "across" if (cycle.pairing == "across").any() else "within"
    ratio = cycle[cycle.pairing == pairing].set_index("model_id")["ratio"]
    out = {}
    for family, part in order[order.model_id.isin(ratio.index)].groupby("family", sort=False):
        if len(part) < 2:
            continue
        part = part.sort_values("error")
        high, low = part.model_id.iloc[0], part.model_id.iloc[-1]
        hn, ln = _short(high, t.record), _short(low, t.record)

        def build(q, hn=hn, ln=ln):
            def r(n):
                return q("cycle_after", model=n, head=pairing) / q("cycle", model=n, head=pairing)
            return r(hn) - r(ln)
        out[family] = summary_or_units(t, ["cycle", "cycle_after"], float(ratio[high] - ratio[low]), build,
                                       control=float(part.error.iloc[-1] - part.error.iloc[0]),
                                       note=f"{hn} vs {ln}, {pairing} pairing")
    return out or {"": missing("not measured (no family with two capacities)")}


@claim("seed002", "controller-beats-random", "§7, Figure 11 (left)",
       "models are able to achieve quality predictions when using the controller.",
       "test clip", "the same controller fed another clip's actions (random-action baseline): ratio 1",
       (1.0, INF))
def _controller(t: Tables) -> dict[str, Measurement]:
    """Per latent model × controller kind: rollout error at the longest horizon with random
    actions / with the clip's true actions; units: ``controller`` rows, ``head`` = the latent
    source (``controller``, ``random_actions``), ``game`` = the kind, longest horizon only."""
    ctrl = t.need("controllers.csv")
    last = ctrl[ctrl.horizon == ctrl.horizon.max()]
    out = {}
    for (model, kind), part in last.groupby(["model", "kind"], sort=False):
        err = part.groupby("latent")["error"].mean()
        out[f"{model} · {kind}"] = summary_or_units(
            t, ["controller"], float(err["random_actions"] / err["controller"]),
            lambda q, m=model, k=kind: q("controller", model=m, game=k, head="random_actions")
            / q("controller", model=m, game=k, head="controller"),
            control=float(err["random_actions"]))
    return out


def _planning(t: Tables, against: str, statistic: Callable[[Term, Term], Term]) -> dict[str, Measurement]:
    plans = t.need("planning.csv")  # none without motion actions
    out = {}
    action = plans[plans.method == "action_model"]
    for (model, method), part in plans[plans.method.str.startswith("controller:")].groupby(["model", "method"],
                                                                                           sort=False):
        if against == "still":
            base_model, base_method = model, "still"
        elif len(action):
            base_model, base_method = str(action.model.iloc[0]), "action_model"
        else:
            continue
        base = plans[(plans.model == base_model) & (plans.method == base_method)]
        m = unit_measurement(t.units, lambda q, m=model, me=method, bm=base_model, bme=base_method: statistic(
            q("planning", model=m, head=me), q("planning", model=bm, head=bme)),
            control=float(base.l1_std.mean()))
        out[f"{model} · {method.split(':', 1)[1]}"] = m
    return out or {"": missing("not measured (no controller planning rows)")}


@claim("seed002", "planning-beats-still", "§7 (takeaway)",
       "Latent actions learned solely on natural videos can be leveraged to solve planning tasks",
       "planning episode", "standing still on the same episodes (control number: its mean l1_std)", (0.0, INF))
def _plan_still(t: Tables) -> dict[str, Measurement]:
    """Per latent model × controller: mean l1_std of standing still − of CEM through the controller."""
    return _planning(t, "still", lambda ctrl, still: still - ctrl)


@claim("seed002", "planning-near-action-model", "§7 (takeaway)",
       "with similar performance as models having access to domain specific data with labeled actions.",
       "planning episode", "the action-conditioned model planning the same episodes; 'similar' read as at most "
       "25 % worse (control number: its mean l1_std)", (0.0, 1.25))
def _plan_action(t: Tables) -> dict[str, Measurement]:
    """Per latent model × controller: mean l1_std through the controller / the action-conditioned model."""
    return _planning(t, "action", lambda ctrl, action: ctrl / action)


# ---------------------------------------------------------------------------------------------
# the ledger

def study_kind(folder: Path) -> tuple[str, dict]:
    """``("seed000" | "seed002", record)`` of a study folder (:func:`workbench.study.framework.read_record`)."""
    record = read_record(folder)
    return record["paper"], record


#: Config fields a seed replicate may differ in (the seeds, and what changes no result).
REPLICATE_FIELDS = ("seed", "data_seed", "draw_seed", *RUNTIME_FIELDS)


def replicates_of(folder: Path) -> list[Path]:
    """This study and its seed replicates: finished sibling folders of the same kind whose config
    equals this one's but for :data:`REPLICATE_FIELDS`; this folder first."""
    folder = Path(folder)
    kind, record = study_kind(folder)

    def key(rec: dict) -> dict:
        return {k: v for k, v in rec["config"].items() if k not in REPLICATE_FIELDS}
    out = [folder]
    for other in sorted(folder.parent.iterdir()):
        if other == folder or not other.is_dir():
            continue
        try:
            other_kind, other_record = study_kind(other)
        except (FileNotFoundError, ValueError):
            continue
        if other_kind == kind and key(other_record) == key(record) and "finished" in other_record:
            out.append(other)
    return out


def _scopes(folder: Path, kind: str, record: dict) -> list[tuple[str, Tables]]:
    """(domain, tables) per part of a study: the domains of a seed 000 study, the run of seed 002."""
    if kind == "seed002":
        return [("", Tables(folder, record))]
    return [(d, Tables(folder / d, record)) for d in record.get("domains", {})]


def measure(folder: Path) -> dict[tuple[str, str], Measurement]:
    """Every claim's measurements in one study folder, keyed by (claim id, scope)."""
    kind, record = study_kind(folder)
    out = {}
    for domain, tables in _scopes(folder, kind, record):
        for c in CLAIMS[kind]:
            if c.domains and domain not in c.domains:
                continue
            try:
                found = c.estimate(tables)
            except NotMeasured as reason:
                found = {"": missing(f"not measured ({reason})")}
            for scope, m in found.items():
                out[(c.id, " / ".join(s for s in (domain, scope) if s))] = m
    return out


def ledger(study_dir: Path, n_boot: int = N_BOOT, seed: int = 0, pool_seeds: bool = True) -> pd.DataFrame:
    """The claims ledger of a study folder (columns :data:`COLUMNS`), pooled over its finished
    seed replicates (module docstring; ``pool_seeds=False``: this folder only)."""
    folder = Path(study_dir)
    kind, _ = study_kind(folder)
    folders = replicates_of(folder) if pool_seeds else [folder]
    per_seed = [measure(f) for f in folders]
    claims = {c.id: c for c in CLAIMS[kind]}
    rows = []
    for key in per_seed[0]:
        c = claims[key[0]]
        ms = [p[key] for p in per_seed if key in p]
        stats = pooled(ms, n_boot, seed)
        reason = next((m.missing for m in ms if m.missing), "no estimate (NaN in the tables)")
        if stats["seeds"] == 0:
            result = f"inconclusive: {reason}"
        elif stats["n_units"] > 0 and not np.isfinite(stats["ci_low"]):
            result = f"inconclusive: too few units ({stats['n_units']} {c.unit}s; {MIN_UNITS} needed over the seeds)"
        else:
            result = verdict(stats["ci_low"], stats["ci_high"], c.rule).replace(
                "per-block", f"per-{c.unit.split()[-1]}")
        gone = [m.missing for m in ms if m.missing]
        if gone and stats["seeds"]:  # the estimate stands on the other seeds: say so
            result += f" ({len(gone)} of {len(ms)} seeds: {gone[0]})"
        controls = [m.control for m in ms if np.isfinite(m.control)]
        rows.append({"claim": c.id, "scope": key[1], "section": c.section, "quote": c.quote, **stats,
                     "unit": c.unit, "control": c.control,
                     "control_estimate": float(np.mean(controls)) if controls else np.nan,
                     "rule": c.rule_text, "rule_low": c.rule[0], "rule_high": c.rule[1],
                     "verdict": result, "note": ms[0].note})
    return pd.DataFrame(rows, columns=COLUMNS)
