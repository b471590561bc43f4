"""``FrameAutoencoder``: the frame encoder whose representations ``s_t`` the world model predicts,
and the decoder that turns representations back into pictures.

Why a small autoencoder and not the IDM's features: seed 002 works in the space of a *frozen*
encoder (V-JEPA 2) so that every latent-action model — sparse, noisy, discrete, the
deterministic and action-conditioned baselines — predicts the same targets and their errors
compare. The workbench has no pretrained video encoder, and the seed 000 IDM's features are
trained to discard everything but the action (a forward model could not predict the next frame
from them). So stage one trains this conv autoencoder on the training frames (pixel L1), and
stage two freezes it; the world models of one dataset share it (see
:func:`workbench.methods.worldmodel.training.train_autoencoder`). Its decoder is the picture decoder.

Shapes (``S`` = ``input_size``, 32/64/128; ``C`` = ``rep_channels``; ``G`` = :data:`GRID`):

* frames uint8 ``(..., S, S, 3)`` -> :func:`frames_to_tensor` float ``(N, 3, S, S)`` in [0, 1]
* :meth:`encode` -> ``s (N, C, G, G)``: ``log2(S/G)`` stride-2 4×4 convs, a 1×1 conv to ``C``
  channels, then BatchNorm without affine parameters, so in eval mode every channel of ``s`` is
  standardised over the training frames (prediction errors are in units of that spread)
* :meth:`decode` -> float ``(N, 3, S, S)`` in [0, 1] (transposed convs, sigmoid)
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ...core.errors import ConfigError

GRID = 8  # spatial size of a representation: 8×8 cells


def frames_to_tensor(frames: np.ndarray | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 frames ``(..., S, S, 3)`` -> float ``(N, 3, S, S)`` in [0, 1] (leading dims flattened)."""
    x = torch.as_tensor(np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames).to(device)
    x = x.reshape(-1, *x.shape[-3:])
    return x.permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def tensor_to_frames(x: torch.Tensor) -> np.ndarray:
    """float ``(..., 3, S, S)`` in [0, 1] -> uint8 ``(..., S, S, 3)`` numpy frames."""
    x = x.detach().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()
    return x.movedim(-3, -1).numpy()


class FrameAutoencoder(nn.Module):
    """Frame -> ``(C, 8, 8)`` standardised representation -> frame (see the module docstring)."""

    def __init__(self, input_size: int = 64, width: int = 32, rep_channels: int = 16):
        super().__init__()
        n_down = math.log2(input_size / GRID) if input_size >= GRID else 0
        if n_down != int(n_down) or not 2 <= n_down <= 4:
            raise ConfigError(f"input_size must be 32, 64 or 128 (8 x 2^k, 2 <= k <= 4), got {input_size}")
        self.input_size, self.width, self.rep_channels = int(input_size), int(width), int(rep_channels)
        widths = [min(width * 2 ** i, 4 * width) for i in range(int(n_down))]
        layers, c_in = [], 3
        for c_out in widths:
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.GELU()]
            c_in = c_out
        layers += [nn.Conv2d(c_in, rep_channels, 1), nn.BatchNorm2d(rep_channels, affine=False)]
        self.encoder = nn.Sequential(*layers)
        layers = [nn.Conv2d(rep_channels, widths[-1], 3, padding=1), nn.GELU()]
        for c_in, c_out in zip(widths[::-1], widths[::-1][1:] + [width // 2]):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.GELU()]
        layers += [nn.Conv2d(width // 2, 3, 3, padding=1), nn.Sigmoid()]
        self.decoder = nn.Sequential(*layers)

    @property
    def config(self) -> dict:
        """Constructor arguments, as written to a model card."""
        return {"input_size": self.input_size, "width": self.width, "rep_channels": self.rep_channels}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 3, S, S)`` in [0, 1] -> ``(N, C, 8, 8)``."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (3, self.input_size, self.input_size):
            raise ValueError(f"expected frames (N, 3, {self.input_size}, {self.input_size}), got {tuple(x.shape)}")
        return self.encoder(x)

    def decode(self, s: torch.Tensor) -> torch.Tensor:
        """``(N, C, 8, 8)`` -> ``(N, 3, S, S)`` in [0, 1]."""
        return self.decoder(s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))
