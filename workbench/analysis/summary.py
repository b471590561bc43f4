"""Per-game summary of a dataset: size, label balance, and flow-proxy agreement with true input,
with a warning for a game whose proxy does not agree (a wrong ``flow_sign`` shows up here)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..flow.labels import agreement

#: Balanced accuracy of guessing among LEFT/NEUTRAL/RIGHT.
CHANCE = 1 / 3
#: How far above chance a proxy must agree, and how much better its LEFT/RIGHT-swapped version
#: must do before the sign is called inverted (balanced-accuracy points).
AGREEMENT_MARGIN = 0.05


def label_balance(ds: xr.Dataset) -> pd.DataFrame:
    """Share of each class (categorical labels) or of 1s (binary labels) per game.

    Columns are ``<label>_<CLASS>`` / ``<label>`` fractions of that game's labeled frames, the
    flow proxy's ``flow_steer_<CLASS>`` included; continuous labels are left out. Reads only the
    label variables, never the frames.
    """
    game = np.asarray(ds["game"].values).astype(str)
    rows = {}
    for name, var in ds.data_vars.items():
        kind = var.attrs.get("kind")
        if kind not in ("categorical", "binary") or var.dims != ("frame",):
            continue
        codes = np.asarray(var.values).astype(np.int64)
        for g in np.unique(game):
            c = codes[(game == g) & (codes >= 0)]
            row = rows.setdefault(g, {})
            if kind == "binary":
                row[name] = c.mean() if len(c) else np.nan
            elif len(var.attrs.get("classes", [])) <= 3:  # small schemas only: 18 ALE actions would swamp the table
                for i, cls in enumerate(var.attrs["classes"]):
                    row[f"{name}_{cls}"] = (c == i).mean() if len(c) else np.nan
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("game")


def dataset_summary(ds: xr.Dataset, true: str = "steer") -> pd.DataFrame:
    """One row per game: frames, episodes, label balance and, if flow was computed, the proxy's
    class balance (``flow_steer_*``), its neutral threshold (``flow_threshold_px``) and how well it
    agrees with the true ``true`` label (``flow_accuracy``, ``flow_balanced_accuracy``,
    ``flow_kappa``, ``flow_balanced_accuracy_flipped``: see :func:`proxy_warnings`)."""
    game = np.asarray(ds["game"].values).astype(str)
    episode = np.asarray(ds["episode"].values)
    games = list(dict.fromkeys(game))  # recording order
    base = pd.DataFrame(
        {"frames": [int((game == g).sum()) for g in games],
         "episodes": [len(np.unique(episode[game == g])) for g in games]},
        index=pd.Index(games, name="game"),
    )
    out = base.join(label_balance(ds))
    if "flow_steer" in ds:
        out["flow_threshold_px"] = pd.Series(ds["flow_steer"].attrs.get("threshold_px", {}), dtype=float)
    if "flow_steer" in ds and true in ds:
        agree = agreement(ds, true=true, proxy="flow_steer")
        cols = ["accuracy", "balanced_accuracy", "kappa", "balanced_accuracy_flipped"]
        out = out.join(agree[cols].add_prefix("flow_"))
    return out


def proxy_warnings(summary: pd.DataFrame) -> list[str]:
    """One line per game of a :func:`dataset_summary` whose flow proxy does not agree with the
    true labels: "flow_sign looks inverted" when swapping the proxy's LEFT and RIGHT raises its
    balanced accuracy by more than :data:`AGREEMENT_MARGIN`, else "no better than chance" when
    it is below chance + :data:`AGREEMENT_MARGIN`. Empty when every game agrees (or no flow)."""
    if "flow_balanced_accuracy" not in summary:
        return []
    lines = []
    for game, row in summary.iterrows():
        ba, flipped = row["flow_balanced_accuracy"], row["flow_balanced_accuracy_flipped"]
        if not np.isfinite(ba):
            continue
        if flipped > ba + AGREEMENT_MARGIN:
            lines.append(f"flow_sign looks inverted for {game}: the flow proxy's balanced accuracy is {ba:.2f},"
                         f" {flipped:.2f} with LEFT and RIGHT swapped; check flow_sign in its catalog entry")
        elif ba < CHANCE + AGREEMENT_MARGIN:
            lines.append(f"flow proxy agrees no better than chance for {game}: balanced accuracy {ba:.2f}"
                         f" (chance {CHANCE:.2f}); its labels are not a steering signal")
    return lines


def summary_report(path, out=None) -> tuple[str, list[str]]:
    """The per-game summary of the dataset store at ``path`` (:func:`dataset_summary`) as text,
    and its :func:`proxy_warnings`; the table is also written to the CSV file ``out`` when given."""
    from ..core.paths import atomic_write
    from ..data.store import open_dataset

    table = dataset_summary(open_dataset(path))
    if out is not None:
        atomic_write(out, table.to_csv)
    with pd.option_context("display.width", 200, "display.max_columns", 40, "display.float_format", "{:.3f}".format):
        return table.to_string(), proxy_warnings(table)
