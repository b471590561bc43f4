"""Per-game summary of a dataset: size, label balance, and flow-proxy agreement with true input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..flow.labels import agreement


def label_balance(ds: xr.Dataset) -> pd.DataFrame:
    """Share of each class (categorical labels) or of 1s (binary labels) per game.

    Columns are ``<label>_<CLASS>`` / ``<label>`` fractions of that game's labeled frames;
    continuous labels are left out. Reads only the label variables, never the frames.
    """
    game = np.asarray(ds["game"].values).astype(str)
    rows = {}
    for name, var in ds.data_vars.items():
        kind = var.attrs.get("kind")
        if kind not in ("categorical", "binary") or var.dims != ("frame",) or name == "flow_steer":
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
    """One row per game: frames, episodes, label balance and (if flow was computed) how well
    the flow-proxy label agrees with the true ``true`` label (accuracy, balanced accuracy, κ)."""
    game = np.asarray(ds["game"].values).astype(str)
    episode = np.asarray(ds["episode"].values)
    games = list(dict.fromkeys(game))  # recording order
    base = pd.DataFrame(
        {"frames": [int((game == g).sum()) for g in games],
         "episodes": [len(np.unique(episode[game == g])) for g in games]},
        index=pd.Index(games, name="game"),
    )
    out = base.join(label_balance(ds))
    if "flow_steer" in ds and true in ds:
        agree = agreement(ds, true=true, proxy="flow_steer")
        out = out.join(agree[["accuracy", "balanced_accuracy", "kappa"]].add_prefix("flow_"))
    return out
