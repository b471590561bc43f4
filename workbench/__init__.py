"""Latent Action Workbench: record or import gameplay, train inverse dynamics and latent-action
models, and measure whether learned actions mean the same thing across games."""

__version__ = "0.1.0"
