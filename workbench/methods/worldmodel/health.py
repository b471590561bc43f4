"""A one-row-per-model health table of latent-action world models: is the latent used, how is
it spread, does it leak the future, does it carry the true action?

Columns (NaN where a family has no such thing):

``latent_norm``       mean L2 norm of the inferred latents
``effective_dims``    participation ratio of the latents' covariance eigenvalues, (Σλ)²/Σλ²
                      (1 = one direction used, D = all equally)
``std_spread``        largest / smallest per-dimension standard deviation (over dims with any)
``code_usage``        discrete: fraction of codes used on the clips; ``perplexity``: exp of the
                      entropy of code frequencies (the effective codebook size)
``error_model``       one-step error with the model's own latents; ``error_zero`` with zero
                      latents; ``error_shuffled`` with other clips' latents — a used latent makes
                      the last two clearly worse than the first
``leakage_ratio``     :func:`~workbench.methods.worldmodel.evaluate.future_leakage` ratio
``probe_<head>``      mean over games of the per-game linear-probe balanced accuracy of ``head``
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ...core.errors import ConfigError
from .evaluate import (ModelRef, capacity, cycle_consistency, describe_model, future_leakage, infer_latents,
                       load_clips, one_step_errors, resolve_model)
from .probes import latent_actions, latent_probes


def latent_statistics(z: np.ndarray) -> dict:
    """``latent_norm``, ``effective_dims``, ``std_spread`` of latents ``(n, D)``."""
    z = np.asarray(z, np.float64)
    eig = np.clip(np.linalg.eigvalsh(np.cov(z, rowvar=False)), 0, None)
    std = z.std(axis=0)
    used = std[std > 1e-8 * max(std.max(), 1e-300)]
    return {"latent_norm": float(np.linalg.norm(z, axis=1).mean()),
            "effective_dims": float(eig.sum() ** 2 / (eig ** 2).sum()) if eig.sum() > 0 else 0.0,
            "std_spread": float(used.max() / used.min()) if len(used) else float("nan")}


def code_statistics(codes: np.ndarray, codebook_size: int) -> dict:
    """``code_usage`` and ``perplexity`` of code indices."""
    freq = np.bincount(np.asarray(codes, np.int64), minlength=codebook_size) / max(len(codes), 1)
    nz = freq[freq > 0]
    return {"code_usage": float((freq > 0).mean()), "perplexity": float(np.exp(-(nz * np.log(nz)).sum()))}


def health_summary(models: Sequence[ModelRef], split: str = "test", n_clips: int = 128, dataset: str | None = None,
                   probe_head: str | None = "steer", device: str | torch.device | None = None,
                   leakage: pd.DataFrame | None = None, probes: pd.DataFrame | None = None) -> pd.DataFrame:
    """The health table of the module docstring, one row per model, on ``split`` clips.

    ``leakage`` (:func:`~workbench.methods.worldmodel.evaluate.future_leakage`'s table, pairing
    ``across`` with the default cut, on the same clips) and ``probes``
    (:func:`~workbench.methods.worldmodel.probes.latent_probes`' rows with a ``model_id`` column) that a
    run has computed already are read rather than computed again, for the models they hold."""
    rows = []
    for ref in models:
        model, card = resolve_model(ref, device)
        batch = load_clips(model, card, split, n_clips, dataset)
        row = {**describe_model(card), **{f"error_{k}": float(v.mean())
                                     for k, v in one_step_errors(model, batch.s, batch.actions).items()}}
        if model.family not in ("zero", "action"):
            z = infer_latents(model, batch.s).flatten(0, 1)
            row.update(latent_statistics(z.cpu().numpy()))
            if model.family == "discrete":
                codes = model.regularizer.quantize(z)[1].cpu().numpy()
                row.update(code_statistics(codes, model.regularizer.codebook_size))
            row["leakage_ratio"] = _leakage_ratio(model, card, split, n_clips, dataset, leakage)
            if probe_head:
                row.update(_probe_score(model, card, dataset, probe_head, probes))
        rows.append(row)
    return pd.DataFrame(rows)


def evaluation_table(table: str, models: Sequence[str], n_clips: int = 128) -> pd.DataFrame:
    """One of the evaluation tables of ``models`` on held-out clips by name: ``health``
    (:func:`health_summary`), ``capacity``, ``leakage`` or ``cycle`` (:mod:`.evaluate`)."""
    tables = {"health": health_summary, "capacity": capacity, "leakage": future_leakage, "cycle": cycle_consistency}
    if table not in tables:
        raise ConfigError(f"--table must be one of {sorted(tables)}")
    return tables[table](list(models), n_clips=n_clips)
def _leakage_ratio(model, card, split: str, n_clips: int, dataset: str | None, leakage: pd.DataFrame | None) -> float:
    """The model's leakage ratio: its row of ``leakage`` when there is one, else computed."""
    known = _rows_of(leakage, card.model_id)
    if known is None:
        known = future_leakage([(model, card)], split, n_clips, dataset, pixels=False)
    return float(known["ratio"].iloc[0]) if len(known) else float("nan")


def _probe_score(model, card, dataset: str | None, head: str, probes: pd.DataFrame | None) -> dict:
    """``{probe_<head>: mean over games of the linear probe}`` from ``probes`` or computed; ``{}``
    when the data has no such head."""
    known = _rows_of(probes, card.model_id)
    if known is None:
        ds = latent_actions((model, card), dataset)
        if head not in ds:
            return {}
        known = latent_probes(ds, [head])
    linear = known[(known.probe == "linear") & (known["head"] == head)]
    return {f"probe_{head}": float(linear["balanced_accuracy"].mean())} if len(linear) else {}


def _rows_of(table: pd.DataFrame | None, model_id: str) -> pd.DataFrame | None:
    """``table``'s rows of ``model_id``, or None when the table does not cover that model."""
    if table is None or "model_id" not in table or model_id not in set(table["model_id"]):
        return None
    return table[table["model_id"] == model_id]
