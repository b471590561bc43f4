"""Controllers: real actions (and the current representation) -> latent actions (seed 002 §7,
appendix A), trained with an L2 loss onto the latents a frozen world model's IDM infers.

* :class:`MLPController` — actions alone: a 3-layer MLP ``(N, A) -> (N, D)``. The paper finds it
  tends to a latent that "does nothing" when the effect of an action depends on the scene.
* :class:`CrossAttentionController` — actions + the representation ``s_t`` the action is applied
  to: 2 self-attention blocks over ``s_t``'s patch tokens, the action embedded by a 3-layer MLP
  into one query token that cross-attends to them, a linear projection to ``D``. (The paper
  calls ``s_t`` the "previous" frame: the last one before the action.)

Both take standardised actions ``(N, A)`` (see :class:`workbench.frames.actions.ActionSpace`)
and ``s (N, C, G, G)`` (ignored by the MLP), and return ``(N, D)``.
"""

from __future__ import annotations

import torch
from torch import nn

from .model import patchify


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                         nn.Linear(hidden, d_out))


class MLPController(nn.Module):
    """Actions -> latent action, ignoring the scene."""

    def __init__(self, action_dim: int, latent_dim: int = 128, hidden: int = 256):
        super().__init__()
        self.action_dim, self.latent_dim, self.hidden = int(action_dim), int(latent_dim), int(hidden)
        self.net = _mlp(action_dim, hidden, latent_dim)

    @property
    def config(self) -> dict:
        return {"action_dim": self.action_dim, "latent_dim": self.latent_dim, "hidden": self.hidden}

    def forward(self, actions: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(actions)


class CrossAttentionController(nn.Module):
    """Actions cross-attending to the current representation -> latent action."""

    def __init__(self, action_dim: int, latent_dim: int = 128, rep_channels: int = 16, grid: int = 8, patch: int = 2,
                 d_model: int = 64, n_heads: int = 4):
        super().__init__()
        self.action_dim, self.latent_dim, self.rep_channels = int(action_dim), int(latent_dim), int(rep_channels)
        self.grid, self.patch, self.d_model, self.n_heads = int(grid), int(patch), int(d_model), int(n_heads)
        self.embed = nn.Linear(rep_channels * patch * patch, d_model)
        self.pos = nn.Parameter(torch.randn((grid // patch) ** 2, d_model) * 0.02)
        layer = nn.TransformerEncoderLayer(d_model, n_heads, 4 * d_model, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.scene = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.action = _mlp(action_dim, d_model, d_model)
        self.norm_q, self.norm_kv = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.cross = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
        self.mlp = nn.Sequential(nn.LayerNorm(d_model), nn.Linear(d_model, 4 * d_model), nn.GELU(),
                                 nn.Linear(4 * d_model, d_model))
        self.out = nn.Linear(d_model, latent_dim)

    @property
    def config(self) -> dict:
        return {"action_dim": self.action_dim, "latent_dim": self.latent_dim, "rep_channels": self.rep_channels,
                "grid": self.grid, "patch": self.patch, "d_model": self.d_model, "n_heads": self.n_heads}

    def forward(self, actions: torch.Tensor, s: torch.Tensor | None = None) -> torch.Tensor:
        if s is None:
            raise ValueError("the cross-attention controller needs the representation s_t of each action")
        scene = self.norm_kv(self.scene(self.embed(patchify(s, self.patch)) + self.pos))
        query = self.action(actions)[:, None]
        x = query + self.cross(self.norm_q(query), scene, scene, need_weights=False)[0]
        return self.out(x + self.mlp(x))[:, 0]


CONTROLLERS = {"mlp": MLPController, "xattn": CrossAttentionController}
