"""The three information regularisers of seed 002 §3 on latent actions, plus the unregularised
("free") case, as small modules with one capacity knob each.

Every regulariser turns the IDM's raw output ``h (N, in_features)`` into latent actions
``z (N, D)`` and a scalar loss (the paper's ``L_z``), and reports a few statistics:

==========  =========================================  ==================  ======================
family      latent                                     loss                capacity knob
==========  =========================================  ==================  ======================
sparse      ``z = h``                                  VCM(Z) + mean E(z)  ``l1`` (λ_l1; lower =
                                                                           more capacity)
noisy       ``z ~ N(mu, sigma²)`` (mean at eval)       β KL(q ‖ N(0, 1))   ``beta`` (lower = more)
discrete    nearest code of a codebook                 VQ + commitment     ``codebook_size``
                                                                           (higher = more)
free        ``z = h``                                  0                   —
==========  =========================================  ==================  ======================

Default coefficients are the paper's (§3 and appendix A): λ_l2 = 1, λ_V = 0.1, λ_C = 0.001,
λ_M = 0.1, λ_l1 = 0.01 (its §8 default); β = 5e-5 (§8); commitment 0.25 with a reset of unused
codes (UniVLA); |C| = 16 (UniVLA's codebook size, the smallest of the paper's sweep).

One reading of the paper is ours: it prints the mean term as ``λ_M/(ND) Σ_ij Z_ij``, without a
norm, which is unbounded below. We use the magnitude of each dimension's batch mean,
``λ_M/D Σ_d |1/N Σ_i Z_id|`` (it keeps latents centred, which is what a "mean" term is for).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ...core.errors import ConfigError

FAMILIES = ("sparse", "noisy", "discrete", "free")
#: The capacity knob of each family: the config field a capacity sweep varies.
KNOBS = {"sparse": "l1", "noisy": "beta", "discrete": "codebook_size"}
#: Whether capacity grows with the knob's value (a bigger codebook) or falls (a stronger penalty).
CAPACITY_RISES = {"sparse": False, "noisy": False, "discrete": True}
#: The paper's sweep of each knob (appendix A), highest capacity last.
PAPER_SWEEPS = {
    "sparse": [0.4, 0.1, 0.08, 0.06, 0.05, 0.04, 0.02, 0.01],
    "noisy": [5e-3, 1e-3, 5e-4, 1e-4, 5e-5, 1e-5, 5e-6, 1e-6],
    "discrete": [16, 1024, 4096, 32768],
}
LOGVAR_RANGE = (-10.0, 6.0)  # keeps exp(logvar) finite early in training


def vcm_loss(z: torch.Tensor, var: float = 0.1, cov: float = 0.001, mean: float = 0.1) -> torch.Tensor:
    """Variance-covariance-mean regularisation of a batch ``z (N, D)`` (VICReg-like, §3).

    ``var/D Σ_d max(1 - std_d, 0) + cov/(D(D-1)) Σ_{i≠j} Cov_ij² + mean/D Σ_d |mean_d|``, with the
    unbiased batch covariance (N ≥ 2) and ``std_d = sqrt(Var_d + 1e-4)`` (VICReg's epsilon, so the
    gradient is finite at zero variance).
    """
    n, d = z.shape
    centred = z - z.mean(dim=0)
    covariance = centred.T @ centred / (n - 1)
    std = torch.sqrt(torch.diagonal(covariance) + 1e-4)
    off_diagonal = covariance - torch.diag(torch.diagonal(covariance))
    return (var * F.relu(1 - std).mean() + cov * off_diagonal.pow(2).sum() / (d * (d - 1))
            + mean * z.mean(dim=0).abs().mean())


def sparse_energy(z: torch.Tensor, l1: float = 0.01, l2: float = 1.0) -> torch.Tensor:
    """Per-latent energy ``E(z) = l2 max(√D - ‖z‖², 0) + l1 ‖z‖₁`` of ``z (N, D)``: ``(N,)``.

    The L1 term makes latents sparse; the hinge keeps their squared norm at least √D so the L1
    term cannot be met by shrinking every coordinate.
    """
    d = z.shape[-1]
    return l2 * F.relu(math.sqrt(d) - z.pow(2).sum(-1)) + l1 * z.abs().sum(-1)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) ‖ N(0, 1))`` summed over the last dimension: ``(N,)`` nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)


def vector_quantize(z: torch.Tensor, codebook: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest code (squared Euclidean) of each row of ``z (N, D)`` in ``codebook (K, D)``:
    ``(codes (N, D), indices (N,) int64)``; ties go to the lowest index."""
    distance = (z.pow(2).sum(-1, keepdim=True) - 2 * z @ codebook.T + codebook.pow(2).sum(-1))
    index = distance.argmin(-1)
    return codebook[index], index


class SparseLatent(nn.Module):
    """Sparse latent actions: ``z = h``, loss ``VCM(Z) + mean_i E(z_i)`` (§3)."""

    family = "sparse"

    def __init__(self, latent_dim: int, l1: float = 0.01, l2: float = 1.0, var: float = 0.1, cov: float = 0.001,
                 mean: float = 0.1):
        super().__init__()
        self.latent_dim, self.in_features = int(latent_dim), int(latent_dim)
        self.l1, self.l2, self.var, self.cov, self.mean = float(l1), float(l2), float(var), float(cov), float(mean)

    def energy(self, z: torch.Tensor) -> torch.Tensor:
        """``E(z)`` per latent ``(N,)``, the function SGLD samples from."""
        return sparse_energy(z, self.l1, self.l2)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        energy = self.energy(h)
        loss = energy.mean() + (vcm_loss(h, self.var, self.cov, self.mean) if len(h) > 1 else 0.0)
        return h, loss, {"energy": energy.mean().detach(), "l1_norm": h.abs().sum(-1).mean().detach()}


class NoisyLatent(nn.Module):
    """Noisy (VAE-like) latent actions: the IDM outputs ``(mu, logvar)``; training samples
    ``z = mu + sigma · eps``, evaluation uses ``z = mu``; loss ``β · mean_i KL_i`` (§3)."""

    family = "noisy"

    def __init__(self, latent_dim: int, beta: float = 5e-5):
        super().__init__()
        self.latent_dim, self.in_features = int(latent_dim), 2 * int(latent_dim)
        self.beta = float(beta)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        mu, logvar = h.chunk(2, dim=-1)
        logvar = logvar.clamp(*LOGVAR_RANGE)
        kl = gaussian_kl(mu, logvar).mean()
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        return z, self.beta * kl, {"kl": kl.detach()}


class DiscreteLatent(nn.Module):
    """Vector-quantised latent actions (VQ-VAE with a straight-through gradient, UniVLA's scheme).

    Loss ``‖sg[h] - e‖² + commitment · ‖h - sg[e]‖²`` (per-dimension means). While training, code
    usage is counted; once ``reset_every`` latents have been produced, every code unused since
    the last reset is moved onto a random latent of the current batch (codebook reset). The
    counters are buffers, so a checkpoint resumes them.
    """

    family = "discrete"

    def __init__(self, latent_dim: int, codebook_size: int = 16, commitment: float = 0.25, reset_every: int = 20_000):
        super().__init__()
        self.latent_dim, self.in_features = int(latent_dim), int(latent_dim)
        self.codebook_size, self.commitment, self.reset_every = int(codebook_size), float(commitment), int(reset_every)
        self.codebook = nn.Parameter(torch.randn(self.codebook_size, self.latent_dim))
        self.register_buffer("usage", torch.zeros(self.codebook_size, dtype=torch.long))
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))

    def quantize(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest codes ``(N, D)`` and their indices ``(N,)`` (no gradient bookkeeping)."""
        return vector_quantize(h, self.codebook)

    @torch.no_grad()
    def reset_unused(self, h: torch.Tensor) -> int:
        """Move every code unused since the last reset onto a random row of ``h``; returns how many."""
        dead = torch.nonzero(self.usage == 0).flatten()
        if len(dead):
            pick = torch.randint(len(h), (len(dead),), device=h.device)
            self.codebook[dead] = h[pick].to(self.codebook.dtype)
        self.usage.zero_()
        self.seen.zero_()
        return int(len(dead))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        code, index = self.quantize(h)
        loss = F.mse_loss(code, h.detach()) + self.commitment * F.mse_loss(h, code.detach())
        stats = {"codes_used": int(torch.unique(index).numel())}
        if self.training:
            self.usage += torch.bincount(index, minlength=self.codebook_size)
            self.seen += len(h)
            if int(self.seen) >= self.reset_every:
                stats["codes_reset"] = self.reset_unused(h.detach())
        return h + (code - h).detach(), loss, stats


class FreeLatent(nn.Module):
    """Unregularised continuous latent actions (the paper's "unconstrained" end of Figure 4)."""

    family = "free"

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim, self.in_features = int(latent_dim), int(latent_dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        return h, h.new_zeros(()), {}


def make_regularizer(family: str, latent_dim: int, **params) -> nn.Module:
    """The regulariser of ``family`` (see :data:`FAMILIES`) with its coefficients ``params``."""
    classes = {"sparse": SparseLatent, "noisy": NoisyLatent, "discrete": DiscreteLatent, "free": FreeLatent}
    if family not in classes:
        raise ConfigError(f"unknown latent family {family!r}; regularised families: {FAMILIES}")
    return classes[family](latent_dim, **params)
