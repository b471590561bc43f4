"""``LatentActionWorldModel`` (seed 002 §3–4 at CPU scale): a frozen frame encoder, an inverse
dynamics model (IDM) inferring latent actions, a regulariser on them, and a frame-causal
forward model conditioned on them with AdaLN-zero.

Shapes (``B`` clips of ``T`` frames; ``C, G`` = the encoder's ``rep_channels`` and grid 8;
``D`` = ``latent_dim``, default 128; ``A`` = ``action_dim``):

* representations ``s (B, T, C, G, G)`` from the frozen :class:`FrameAutoencoder` (its weights
  are part of this model's state dict, so one library entry holds everything)
* IDM ``g(s_t, s_{t+1})``: ``(N, 2C, G, G)`` -> 3×3 conv -> 4×4 stride-2 conv -> MLP -> the
  regulariser's input (``2D`` for noisy: mean and log-variance) -> ``z (N, D)``
* forward model ``p(s_{0:t}, z_t)``: each frame is cut into ``(G/patch)²`` patch tokens of
  width ``d_model`` (+ learned space and time embeddings); ``depth`` transformer blocks with a
  frame-causal mask (frame t attends to frames ≤ t) whose LayerNorms are scaled, shifted and
  gated per frame by ``z_t`` (AdaLN-zero, frame-wise as in the paper); a linear head gives the
  change ``s_{t+1} - s_t`` (zero at initialisation, so an untrained model copies the last frame).
  One pass predicts every ``s_{t+1}`` of a clip (teacher forcing).

``family`` picks how ``z_t`` is made (:data:`CONDITIONINGS`): a regularised IDM (``sparse``,
``noisy``, ``discrete``, ``free``), nothing (``zero``: the deterministic world model, z ≡ 0,
no IDM) or the true actions (``action``: an MLP embeds standardised actions ``(A,)`` into
``(D,)``; the action-conditioned baseline of the planning experiments).
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...core.errors import ConfigError
from .autoencoder import GRID, FrameAutoencoder, frames_to_tensor, tensor_to_frames
from .regularizers import FAMILIES, make_regularizer

CONDITIONINGS = (*FAMILIES, "zero", "action")


def patchify(s: torch.Tensor, patch: int) -> torch.Tensor:
    """``(N, C, G, G)`` -> ``(N, (G/p)², C·p²)`` tokens, row-major over patches."""
    n, c, g, _ = s.shape
    x = s.reshape(n, c, g // patch, patch, g // patch, patch)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(n, (g // patch) ** 2, c * patch * patch)


def unpatchify(x: torch.Tensor, channels: int, patch: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``(N, P, C·p²)`` -> ``(N, C, G, G)``."""
    n, p, _ = x.shape
    side = int(round(p ** 0.5))
    x = x.reshape(n, side, side, channels, patch, patch).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(n, channels, side * patch, side * patch)


class LatentIDM(nn.Module):
    """``(s_t, s_{t+1})`` ``(N, C, G, G)`` each -> ``(N, out_features)``."""

    def __init__(self, rep_channels: int, grid: int, out_features: int, width: int = 64, hidden: int = 256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(2 * rep_channels, width, 3, padding=1), nn.GELU(),
            nn.Conv2d(width, width, 4, stride=2, padding=1), nn.GELU(), nn.Flatten(),
            nn.Linear(width * (grid // 2) ** 2, hidden), nn.GELU(), nn.Linear(hidden, out_features),
        )

    def forward(self, s: torch.Tensor, s_next: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([s, s_next], dim=1))


class AdaLNBlock(nn.Module):
    """Pre-norm transformer block whose norms are modulated per frame by a condition (AdaLN-zero):
    ``x += gate · attn(norm(x)·(1+scale)+shift)``, same for the MLP; the modulation starts at zero."""

    def __init__(self, d_model: int, n_heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.n_heads = n_heads
        self.norm1 = nn.LayerNorm(d_model, elementwise_affine=False)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model, elementwise_affine=False)
        hidden = mlp_ratio * d_model
        self.mlp = nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model))
        self.modulation = nn.Linear(d_model, 6 * d_model)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``x (B, L, d)``, ``cond (B, L, d)`` (each token its frame's condition), ``mask (L, L)`` bool."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.modulation(F.silu(cond)).chunk(6, dim=-1)
        b, n, d = x.shape
        h = self.norm1(x) * (1 + scale1) + shift1
        q, k, v = self.qkv(h).reshape(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        h = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(b, n, d)
        x = x + gate1 * self.proj(h)
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)


class CausalPredictor(nn.Module):
    """Forward model ``(s (B, T, C, G, G), z (B, T, D))`` -> predicted ``s_{t+1}`` for every t."""

    def __init__(self, rep_channels: int, grid: int, latent_dim: int, patch: int = 2, d_model: int = 96,
                 depth: int = 3, n_heads: int = 4, context: int = 8):
        super().__init__()
        if grid % patch:
            raise ConfigError(f"patch {patch} does not divide the grid {grid}")
        self.channels, self.patch, self.context = rep_channels, patch, context
        self.tokens = (grid // patch) ** 2
        self.embed = nn.Linear(rep_channels * patch * patch, d_model)
        self.pos_space = nn.Parameter(torch.randn(self.tokens, d_model) * 0.02)
        self.pos_time = nn.Parameter(torch.randn(context, d_model) * 0.02)
        self.cond = nn.Sequential(nn.Linear(latent_dim, d_model), nn.SiLU(), nn.Linear(d_model, d_model))
        self.blocks = nn.ModuleList(AdaLNBlock(d_model, n_heads) for _ in range(depth))
        self.norm = nn.LayerNorm(d_model, elementwise_affine=False)
        self.final_modulation = nn.Linear(d_model, 2 * d_model)
        self.head = nn.Linear(d_model, rep_channels * patch * patch)
        for layer in (self.final_modulation, self.head):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, s: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        b, t = s.shape[:2]
        if t > self.context:
            raise ConfigError(f"a clip of {t} frames exceeds the model's context of {self.context}")
        x = self.embed(patchify(s.flatten(0, 1), self.patch)).reshape(b, t, self.tokens, -1)
        x = (x + self.pos_space + self.pos_time[:t, None]).flatten(1, 2)
        cond = self.cond(z).repeat_interleave(self.tokens, dim=1)
        frame = torch.arange(t, device=s.device).repeat_interleave(self.tokens)
        mask = frame[None, :] <= frame[:, None]
        for block in self.blocks:
            x = block(x, cond, mask)
        shift, scale = self.final_modulation(F.silu(cond)).chunk(2, dim=-1)
        delta = self.head(self.norm(x) * (1 + scale) + shift).reshape(b * t, self.tokens, -1)
        return s + unpatchify(delta, self.channels, self.patch).reshape(s.shape)


class LatentActionWorldModel(nn.Module):
    """Encoder + IDM + regulariser + forward model + decoder (see the module docstring).

    ``encoder`` holds the :class:`FrameAutoencoder` constructor arguments; ``regularizer`` the
    family's coefficients (e.g. ``{"l1": 0.01}``). The encoder is frozen: its parameters do not
    require gradients and it stays in eval mode whatever :meth:`train` is called with.
    """

    def __init__(self, encoder: Mapping, family: str = "noisy", regularizer: Mapping | None = None,
                 latent_dim: int = 128, action_dim: int = 0, context: int = 8, patch: int = 2, d_model: int = 96,
                 depth: int = 3, n_heads: int = 4, idm_width: int = 64):
        super().__init__()
        if family not in CONDITIONINGS:
            raise ConfigError(f"unknown family {family!r}; expected one of {CONDITIONINGS}")
        if family == "action" and action_dim < 1:
            raise ConfigError("an action-conditioned world model needs action_dim >= 1")
        self.family, self.latent_dim, self.action_dim = family, int(latent_dim), int(action_dim)
        self.encoder = FrameAutoencoder(**encoder)
        self.encoder.requires_grad_(False)
        c, g = self.encoder.rep_channels, GRID
        self.rep_shape = (c, g, g)
        self.regularizer = (make_regularizer(family, latent_dim, **dict(regularizer or {})) if family in FAMILIES
                            else None)
        self.idm = LatentIDM(c, g, self.regularizer.in_features, idm_width) if self.regularizer is not None else None
        self.action_embed = (nn.Sequential(nn.Linear(action_dim, latent_dim), nn.SiLU(),
                                           nn.Linear(latent_dim, latent_dim)) if family == "action" else None)
        self.predictor = CausalPredictor(c, g, latent_dim, patch, d_model, depth, n_heads, context)
        self._config = {"encoder": dict(self.encoder.config), "family": family, "regularizer": dict(regularizer or {}),
                        "latent_dim": self.latent_dim, "action_dim": self.action_dim, "context": int(context),
                        "patch": int(patch), "d_model": int(d_model), "depth": int(depth), "n_heads": int(n_heads),
                        "idm_width": int(idm_width)}

    @property
    def config(self) -> dict:
        """Constructor arguments, as written to a model card."""
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self._config.items()}

    @property
    def context(self) -> int:
        return self.predictor.context

    @property
    def input_size(self) -> int:
        return self.encoder.input_size

    def train(self, mode: bool = True) -> "LatentActionWorldModel":
        super().train(mode)
        self.encoder.eval()
        return self

    @torch.no_grad()
    def encode(self, frames) -> torch.Tensor:
        """uint8 frames ``(B, T, S, S, 3)`` -> representations ``(B, T, C, G, G)`` (on the model's device)."""
        device = next(self.parameters()).device
        lead = tuple(frames.shape[:-3])
        return self.encoder.encode(frames_to_tensor(frames, device)).reshape(*lead, *self.rep_shape)

    @torch.no_grad()
    def decode(self, s: torch.Tensor) -> np.ndarray:
        """Representations ``(..., C, G, G)`` -> uint8 frames ``(..., S, S, 3)``."""
        frames = tensor_to_frames(self.encoder.decode(s.reshape(-1, *self.rep_shape)))
        return frames.reshape(*s.shape[:-3], *frames.shape[1:])

    def latents(self, s: torch.Tensor, actions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Latent actions ``z (B, T-1, D)`` of the transitions of ``s (B, T, ...)``, the
        regulariser's loss and statistics. ``zero``: z ≡ 0; ``action``: embedded ``actions
        (B, T-1, A)`` (standardised). In eval mode the result is deterministic (noisy: the mean)."""
        b, t = s.shape[:2]
        if self.family == "zero":
            return s.new_zeros(b, t - 1, self.latent_dim), s.new_zeros(()), {}
        if self.family == "action":
            if actions is None:
                raise ValueError("an action-conditioned world model needs the actions of the clip")
            return self.action_embed(actions), s.new_zeros(()), {}
        h = self.idm(s[:, :-1].flatten(0, 1), s[:, 1:].flatten(0, 1))
        z, loss, stats = self.regularizer(h)
        return z.reshape(b, t - 1, -1), loss, stats

    def snap(self, z: torch.Tensor) -> torch.Tensor:
        """Latents as the forward model saw them in training: nearest codes for ``discrete``
        (e.g. a controller's output), unchanged otherwise."""
        if self.family != "discrete":
            return z
        return self.regularizer.quantize(z.reshape(-1, z.shape[-1]))[0].reshape(z.shape)

    def predict(self, s: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Teacher-forced predictions of ``s_{t+1}`` from ``s (B, T', ...)`` and ``z (B, T', D)``."""
        return self.predictor(s, z)

    def rollout(self, s0: torch.Tensor, z: torch.Tensor | Callable[[int, torch.Tensor], torch.Tensor],
                steps: int | None = None, window: int | None = None) -> torch.Tensor:
        """Autoregressive prediction from one real state ``s0 (B, C, G, G)``, feeding predictions
        back; each step sees the last ``window`` states (default the model's context; 1 is the
        paper's planning unroll ``ŝ_{i+1} = p(ŝ_i, z_i)``, Eq. 2 of appendix A). ``z`` is the
        latents ``(B, H, D)`` or a function ``(h, s_h) -> z_h (B, D)`` called before each of
        ``steps`` steps (a controller acting on the predicted state). Returns
        ``(B, H, C, G, G)``, the states after each latent action."""
        steps = z.shape[1] if isinstance(z, torch.Tensor) else int(steps)
        keep = min(window or self.context, self.context)
        states, latents = [s0], []
        for h in range(steps):
            latents.append(z[:, h] if isinstance(z, torch.Tensor) else z(h, states[-1]))
            history = torch.stack(states[-keep:], dim=1)
            cond = torch.stack(latents[-history.shape[1]:], dim=1)
            states.append(self.predictor(history, cond)[:, -1])
        return torch.stack(states[1:], dim=1)

    def loss(self, s: torch.Tensor, actions: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """Training loss of clips ``s (B, T, ...)``: mean L1 of teacher-forced predictions + ``L_z``; its
        terms as 0-d tensors (brought to the host by the training engine at its next evaluation)."""
        z, reg, stats = self.latents(s, actions)
        error = (self.predict(s[:, :-1], z) - s[:, 1:]).abs().mean()
        return error + reg, {"prediction": error.detach(), "regularizer": reg.detach(), **stats}
