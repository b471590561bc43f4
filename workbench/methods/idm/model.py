"""``IDMLatentSpatial``: the inverse dynamics model of seed 000 §3.

A frame pair goes through a 4-layer CNN with InstanceNorm2d that ends on a 16×16 spatial feature
grid, then a penultimate embedding (the representation the cross-game analyses study), then one
linear head per label group. The model never sees which game a pair comes from, so any
alignment across games has to come from what the frames look like.

Shapes (``S`` = ``input_size``, default 64):

* input ``(B, 6, S, S)`` float in [0, 1]: frame ``t`` RGB then frame ``t+1`` RGB on channels
  (:func:`pair_tensor` builds it from uint8 frames)
* 4 conv layers: ``log2(S/16)`` stride-2 layers bring ``S`` down to 16 (64 -> 32 -> 16), the
  rest run at 16×16; each is conv -> InstanceNorm2d(affine) -> ReLU
* a 1×1 convolution reduces the grid to ``GRID_CHANNELS`` channels and the grid is flattened, so
  the embedding keeps *where* things move (road edges, sprites), not only *how much*
* embedding ``(B, embed_dim)`` after ReLU; logits ``{head: (B, n_classes)}``
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
from torch import nn

from ...core.errors import ConfigError

GRID = 16  # spatial size of the last feature grid (seed 000 §3)
GRID_CHANNELS = 16  # channels kept per grid cell before flattening: 16*16*16 = 4096 features
N_CONV = 4


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    kernel = 4 if stride == 2 else 3  # 4x4 stride-2 halves exactly, 3x3 stride-1 keeps the size
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=1),
        nn.InstanceNorm2d(c_out, affine=True),
        nn.ReLU(inplace=True),
    )


class IDMLatentSpatial(nn.Module):
    """Frame pair -> 16×16 CNN features -> embedding -> one logit vector per head.

    ``heads`` maps head names to class counts (binary keys have 2). ``input_size`` must be 16
    times a power of two between 1 and 8 (32, 64, 128 …); ``width`` is the channel count of the
    16×16 layers (the first stride-2 layer has half of it).
    """

    def __init__(self, heads: Mapping[str, int], input_size: int = 64, width: int = 64, embed_dim: int = 256):
        super().__init__()
        if not heads:
            raise ConfigError("IDMLatentSpatial needs at least one head")
        bad = {k: v for k, v in heads.items() if int(v) < 2}
        if bad:
            raise ConfigError(f"every head needs at least 2 classes, got {bad}")
        n_down = math.log2(input_size / GRID) if input_size >= GRID else -1
        if n_down != int(n_down) or not 1 <= n_down <= N_CONV - 1:
            raise ConfigError(f"input_size must be 32, 64 or 128 (16 x 2^k, 1 <= k <= 3), got {input_size}")
        self.heads = {str(k): int(v) for k, v in heads.items()}
        self.input_size, self.width, self.embed_dim = int(input_size), int(width), int(embed_dim)
        layers, c_in = [], 6
        for i in range(N_CONV):
            down = i < n_down
            c_out = max(width // 2, 8) if (down and i == 0) else width
            layers.append(_block(c_in, c_out, 2 if down else 1))
            c_in = c_out
        self.conv = nn.Sequential(*layers)
        self.reduce = nn.Conv2d(c_in, GRID_CHANNELS, 1)
        self.project = nn.Sequential(nn.Flatten(), nn.Linear(GRID_CHANNELS * GRID * GRID, embed_dim), nn.ReLU(inplace=True))
        self.head_layers = nn.ModuleDict({name: nn.Linear(embed_dim, n) for name, n in self.heads.items()})

    @property
    def config(self) -> dict:
        """Constructor arguments, as written to a model card so the library can rebuild it."""
        return {"heads": dict(self.heads), "input_size": self.input_size, "width": self.width,
                "embed_dim": self.embed_dim}

    def grid(self, x: torch.Tensor) -> torch.Tensor:
        """The last conv layer's feature grid ``(B, width, 16, 16)``."""
        if x.ndim != 4 or x.shape[1] != 6 or x.shape[2] != self.input_size or x.shape[3] != self.input_size:
            raise ValueError(
                f"expected a frame-pair batch (B, 6, {self.input_size}, {self.input_size}), got {tuple(x.shape)}"
            )
        return self.conv(x)

    def embed_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One pass: penultimate embedding ``(B, embed_dim)`` and ``{head: logits (B, n)}``."""
        z = self.embed(x)
        return z, {name: layer(z) for name, layer in self.head_layers.items()}

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations ``(B, embed_dim)`` (after ReLU)."""
        return self.project(self.reduce(self.grid(x)))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.embed_and_logits(x)[1]
