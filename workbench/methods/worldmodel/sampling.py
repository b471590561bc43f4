"""Sampling latent actions without a video (seed 002 appendix B), to compare with inferred ones.

* noisy (and free): the prior ``N(0, I)``
* discrete: codebook entries, uniformly — over the codes the inferred latents use, when given
* sparse: Stochastic Gradient Langevin Dynamics on the energy ``E(z)`` (Eq. 4):
  ``z_0 ~ N(0, I)``, ``z_{k+1} = z_k - α/2 ∇E(z_k) + ε``, ``ε ~ N(0, α)``

:func:`sample_projection` embeds inferred and sampled latents together in 2-D
(:func:`workbench.analysis.geometry.project`) — the paper's Figure S1: the more the two clouds
overlap, the better the sampler matches the latents the IDM actually produces.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ...core.errors import ConfigError
from ...analysis.geometry import project
from .evaluate import ModelRef, resolve_model
from .regularizers import vector_quantize


def sample_latents(model: ModelRef, n: int, seed: int = 0, inferred: np.ndarray | None = None, sgld_steps: int = 200,
                   step_size: float = 0.01, device: str | torch.device | None = None) -> np.ndarray:
    """``n`` sampled latent actions, float32 ``(n, D)`` (see the module docstring).

    ``inferred`` (float ``(m, D)``, e.g. :func:`~workbench.methods.worldmodel.probes.latent_actions`'
    ``embedding``) restricts a discrete model's samples to the codes those latents use.
    ``sgld_steps`` and ``step_size`` (α) drive the sparse sampler.
    """
    net, card = resolve_model(model, device)
    generator = torch.Generator().manual_seed(int(seed))
    d = net.latent_dim
    if net.family in ("noisy", "free"):
        return torch.randn(n, d, generator=generator).numpy()
    if net.family == "discrete":
        codebook = net.regularizer.codebook.detach().cpu()
        allowed = torch.arange(len(codebook))
        if inferred is not None:
            allowed = torch.unique(vector_quantize(torch.as_tensor(inferred, dtype=codebook.dtype), codebook)[1])
        pick = allowed[torch.randint(len(allowed), (n,), generator=generator)]
        return codebook[pick].numpy()
    if net.family == "sparse":
        energy = net.regularizer.energy  # parameter-free: runs on CPU tensors
        z = torch.randn(n, d, generator=generator)
        for _ in range(int(sgld_steps)):
            z.requires_grad_(True)
            grad, = torch.autograd.grad(energy(z).sum(), z)
            z = (z.detach() - 0.5 * step_size * grad + np.sqrt(step_size) * torch.randn(n, d, generator=generator))
        return z.detach().numpy()
    raise ConfigError(f"{card['model_id']} has no latent actions to sample (family {net.family!r})")


def sample_projection(inferred: np.ndarray, sampled: np.ndarray, method: str = "umap", seed: int = 0,
                      **kw) -> pd.DataFrame:
    """Joint 2-D projection of inferred and sampled latents: columns x, y, kind
    (``inferred``/``sampled``); ``kw`` goes to :func:`workbench.analysis.geometry.project`."""
    inferred, sampled = np.asarray(inferred, np.float32), np.asarray(sampled, np.float32)
    xy = project(np.concatenate([inferred, sampled]), method=method, seed=seed, **kw)
    kind = np.repeat(["inferred", "sampled"], [len(inferred), len(sampled)])
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "kind": kind})
