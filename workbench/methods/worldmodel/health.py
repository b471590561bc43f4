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
                   probe_head: str | None = "steer", device: str | torch.device | None = None) -> pd.DataFrame:
    """The health table of the module docstring, one row per model, on ``split`` clips."""
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
            leakage = future_leakage([(model, card)], split, n_clips, dataset, pixels=False)
            row["leakage_ratio"] = float(leakage["ratio"][0])
            if probe_head:
                ds = latent_actions((model, card), dataset)
                if probe_head in ds:
                    probes = latent_probes(ds, [probe_head])
                    row[f"probe_{probe_head}"] = float(probes.loc[probes.probe == "linear", "balanced_accuracy"].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def evaluation_table(table: str, models: Sequence[str], n_clips: int = 128) -> pd.DataFrame:
    """One of the evaluation tables of ``models`` on held-out clips by name: ``health``
    (:func:`health_summary`), ``capacity``, ``leakage`` or ``cycle`` (:mod:`.evaluate`)."""
    tables = {"health": health_summary, "capacity": capacity, "leakage": future_leakage, "cycle": cycle_consistency}
    if table not in tables:
        raise ConfigError(f"--table must be one of {sorted(tables)}")
    return tables[table](list(models), n_clips=n_clips)
