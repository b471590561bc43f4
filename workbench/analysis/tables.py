"""Long-format views of a study's accuracy tables, one row per (game, method), for per-game bars.

The study writes wide tables (:func:`~workbench.analysis.metrics.accuracy_table` rows per model,
probes per variant, calibration rows per gate/side); comparing methods per game needs them
stacked with readable method names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Readable names of the study's model keys and probe variants.
METHOD_NAMES = {"joint_v3": "joint v3 (zero-shot)", "joint_v2": "joint v2", "joint_v1": "joint v1",
                "single": "single-game model", "ceiling": "20 % labels (ceiling)",
                "probe:joint": "linear probe (all games)", "probe:per_game": "linear probe (per game)",
                "probe:shuffled": "linear probe (shuffled labels)"}
#: Readable names of the zero-label calibration variants (gate, side).
VARIANT_NAMES = {("flow", "model"): "flow gate, IDM side", ("flow", "flow"): "flow gate, flow side",
                 ("model", "model"): "IDM score gate, IDM side"}


def accuracy_by_game(accuracy: pd.DataFrame, probes: pd.DataFrame | None = None,
                     head: str = "steer") -> pd.DataFrame:
    """Balanced accuracy per game of the study's models and linear probes on one head.

    ``accuracy`` is the study's ``accuracy.csv`` (``model`` like ``joint_v3``, ``single:<game>``,
    ``ceiling:<game>``; pairwise and proxy-label models are left out), ``probes`` its ``probes.csv``. Columns:
    ``game``, ``method``, ``balanced_accuracy``, ``chance``; methods in :data:`METHOD_NAMES` order.
    """
    acc = accuracy[(accuracy["head"] == head) & ~accuracy["model"].str.startswith(("pair:", "proxy:"))].copy()
    acc["method"] = acc["model"].str.split(":").str[0]
    parts = [acc[["game", "method", "balanced_accuracy", "chance"]]]
    if probes is not None and len(probes):
        pr = probes[probes["head"] == head].copy()
        pr["method"] = "probe:" + pr["variant"].astype(str)
        parts.append(pr[["game", "method", "balanced_accuracy", "chance"]])
    out = pd.concat(parts, ignore_index=True)
    order = {m: i for i, m in enumerate(METHOD_NAMES)}
    out = out.assign(_order=out["method"].map(order).fillna(len(order))).sort_values(["_order", "game"], kind="stable")
    out["method"] = out["method"].map(lambda m: METHOD_NAMES.get(m, m))
    return out.drop(columns="_order").reset_index(drop=True)


def calibration_by_game(calibration: pd.DataFrame) -> pd.DataFrame:
    """A :func:`~workbench.analysis.calibration.percentile_calibration` table stacked for bars:
    the IDM's zero-shot accuracy and each (gate, side) variant per game. Columns: ``game``,
    ``method``, ``balanced_accuracy``, ``percentile``, ``threshold``."""
    zero = calibration.drop_duplicates("game")[["game", "zero_shot"]].rename(columns={"zero_shot": "balanced_accuracy"})
    zero = zero.assign(method="zero-shot (IDM argmax)", percentile=float("nan"), threshold=float("nan"))
    variants = calibration.assign(method=[VARIANT_NAMES.get((g, s), f"{g} gate, {s} side")
                                          for g, s in zip(calibration["gate"], calibration["side"])])
    cols = ["game", "method", "balanced_accuracy", "percentile", "threshold"]
    return pd.concat([zero[cols], variants[cols]], ignore_index=True)


def proxy_arm(accuracy: pd.DataFrame, head: str = "steer") -> pd.DataFrame:
    """The proxy-label arm beside the true-label arm: per game and model kind (``single``,
    ``joint_v1`` …), balanced accuracy against the TRUE labels of the model trained on true labels
    and of the one trained on the flow proxy (study names ``proxy:<model>``). Long format:
    ``game``, ``model``, ``trained_on`` (``true``/``proxy``), ``balanced_accuracy``, ``chance``;
    kinds without a proxy model are left out."""
    acc = accuracy[(accuracy["head"] == head) & ~accuracy["model"].str.startswith(("pair:", "ceiling:"))].copy()
    acc["trained_on"] = np.where(acc["model"].str.startswith("proxy:"), "proxy", "true")
    acc["model"] = acc["model"].str.removeprefix("proxy:").str.split(":").str[0]
    acc = acc[acc["model"].isin(acc.loc[acc["trained_on"] == "proxy", "model"])]
    return acc[["game", "model", "trained_on", "balanced_accuracy", "chance"]].reset_index(drop=True)
