"""Configurations of the three trained pieces — frame autoencoder, latent-action world model,
controller — as dataclasses with YAML in and out (the :class:`workbench.methods.idm.TrainConfig`
pattern: plain data, ``yaml.safe_load``, unknown keys rejected), and capacity sweeps.

Defaults are sized for CPU: 64×64 frames, an 8×8×16 representation (an autoencoder of width 32),
a 3-block forward model of width 96 on 2×2 patches, clips of 6 frames, batches of 16 clips. The
regulariser coefficients are the paper's (see :mod:`workbench.methods.worldmodel.regularizers`); its
optimiser recipe is kept in shape (AdamW, weight decay 0.04, linear warm-up over 10 % of the
steps, then cosine decay) with a learning rate for our batch size (1e-3 instead of 6.25e-4 at
batch 1024).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

from ...core.errors import ConfigError
from ...engine.config import ConfigIO, EngineFields, check_split
from ...frames.actions import ACTION_SPACES
from ...frames.sources import DataFields
from .controller import CONTROLLERS
from .model import CONDITIONINGS
from .regularizers import CAPACITY_RISES, KNOBS, PAPER_SWEEPS


def _as_list(value):
    return [value] if isinstance(value, str) else value


@dataclass
class AutoencoderConfig(ConfigIO, DataFields, EngineFields):
    """Stage one: the frame autoencoder (pixel L1 on training frames)."""

    input_size: int = 64
    width: int = 32
    rep_channels: int = 16
    steps: int = 1500
    batch_size: int = 32
    lr: float = 2e-3
    warmup: float = 0.05
    weight_decay: float = 1e-4
    chunks_per_batch: int = 4
    eval_frames: int = 256

    FIELD_HELP: ClassVar[dict[str, str]] = {
        "input_size": "Side of the square input frames (pixels).",
        "width": "Width of the autoencoder.",
        "rep_channels": "Channels of the frame representation.",
        "eval_frames": "Validation frames per evaluation.",
    }

    def __post_init__(self):
        self.datasets, self.games = _as_list(self.datasets), _as_list(self.games)
        if not self.datasets:
            raise ConfigError("AutoencoderConfig: give datasets (catalog ids or store paths)")
        self._check_positive(("input_size", "width", "rep_channels", "steps", "batch_size", "lr", "split_block",
                              "chunks_per_batch", "eval_every", "eval_frames", "checkpoint_every", "cache_chunks"))
        check_split(self.split_fractions)
        self._check_accelerator()


@dataclass
class WorldModelConfig(ConfigIO, DataFields, EngineFields):
    """Stage two: a latent-action world model on the frozen representations of an autoencoder.

    ``family`` is one of :data:`~workbench.methods.worldmodel.model.CONDITIONINGS`: ``sparse``,
    ``noisy``, ``discrete``, ``free`` (regularised IDM latents), ``zero`` (deterministic
    baseline) or ``action`` (true actions of ``action_space``). The capacity knobs are ``l1``
    (sparse), ``beta`` (noisy), ``codebook_size`` (discrete). ``encoder`` is the autoencoder's
    model id; None trains (or reuses) the one of :meth:`autoencoder_config`, so every world
    model of the same data, input size and seed shares one representation space.
    """

    name: str = "lawm"
    family: str = "noisy"
    l1: float = 0.01
    l2: float = 1.0
    var: float = 0.1
    cov: float = 0.001
    mean: float = 0.1
    beta: float = 5e-5
    codebook_size: int = 16
    commitment: float = 0.25
    reset_every: int = 20_000
    latent_dim: int = 128
    action_space: str = "inputs"
    clip_length: int = 6
    input_size: int = 64
    encoder: str | None = None
    encoder_steps: int = 1500
    encoder_width: int = 32
    rep_channels: int = 16
    patch: int = 2
    d_model: int = 96
    depth: int = 3
    n_heads: int = 4
    idm_width: int = 64
    steps: int = 3000
    batch_size: int = 16
    lr: float = 1e-3
    warmup: float = 0.1
    weight_decay: float = 0.04
    chunks_per_batch: int = 4
    eval_clips: int = 128

    FIELD_HELP: ClassVar[dict[str, str]] = {
        "name": "Name the model id starts with.",
        "family": "Latent-action family: sparse | noisy | discrete | free | zero | action.",
        "l1": "Sparse family: L1 weight on the latent actions (its capacity knob).",
        "l2": "Sparse family: L2 weight on the latent actions.",
        "var": "Sparse family: variance-floor weight.",
        "cov": "Sparse family: covariance weight.",
        "mean": "Sparse family: mean weight.",
        "beta": "Noisy family: KL weight (its capacity knob).",
        "codebook_size": "Discrete family: codebook entries (its capacity knob).",
        "commitment": "Discrete family: commitment loss weight.",
        "reset_every": "Discrete family: re-seed unused codes every this many steps.",
        "latent_dim": "Width of a latent action.",
        "action_space": "Actions of the action family and the controllers: inputs | motion.",
        "clip_length": "Frames per training clip (at least 2).",
        "input_size": "Side of the square input frames (pixels).",
        "encoder": "Frame autoencoder id (default: train or reuse the one of this data, size and seed).",
        "encoder_steps": "Steps of the frame autoencoder trained when no --encoder is given.",
        "encoder_width": "Width of that autoencoder.",
        "rep_channels": "Channels of the autoencoder's frame representation.",
        "patch": "Side of the patches the forward model reads (representation cells).",
        "d_model": "Width of the forward model.",
        "depth": "Blocks of the forward model.",
        "n_heads": "Attention heads (divides the width).",
        "idm_width": "Width of the inverse model that infers latent actions.",
        "eval_clips": "Validation clips per evaluation.",
    }

    def __post_init__(self):
        self.datasets, self.games = _as_list(self.datasets), _as_list(self.games)
        if not self.datasets:
            raise ConfigError("WorldModelConfig: give datasets (catalog ids or store paths)")
        if self.family not in CONDITIONINGS:
            raise ConfigError(f"WorldModelConfig: family must be one of {CONDITIONINGS}, got {self.family!r}")
        if self.action_space not in ACTION_SPACES:
            raise ConfigError(f"WorldModelConfig: action_space must be one of {ACTION_SPACES},"
                              f" got {self.action_space!r}")
        if self.clip_length < 2:
            raise ConfigError("WorldModelConfig: clip_length must be at least 2 (one transition)")
        if self.d_model % self.n_heads:
            raise ConfigError(f"WorldModelConfig: d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        self._check_positive(("latent_dim", "input_size", "rep_channels", "patch", "d_model", "depth", "n_heads",
                              "idm_width", "steps", "batch_size", "lr", "split_block", "chunks_per_batch",
                              "eval_every", "eval_clips", "checkpoint_every", "cache_chunks", "codebook_size",
                              "reset_every", "encoder_steps", "encoder_width"))
        check_split(self.split_fractions)
        self._check_accelerator()

    @property
    def knob(self) -> tuple[str, Any] | None:
        """``(field, value)`` of the family's capacity knob, None for families without one."""
        name = KNOBS.get(self.family)
        return (name, getattr(self, name)) if name else None

    def regularizer_params(self) -> dict:
        """The coefficients the family's regulariser is built with."""
        names = {"sparse": ("l1", "l2", "var", "cov", "mean"), "noisy": ("beta",),
                 "discrete": ("codebook_size", "commitment", "reset_every")}.get(self.family, ())
        return {n: getattr(self, n) for n in names}

    def autoencoder_config(self) -> AutoencoderConfig:
        """The autoencoder this config trains (or reuses) when ``encoder`` is None."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(DataFields)}
        return AutoencoderConfig(**data, input_size=self.input_size, width=self.encoder_width,
                                 rep_channels=self.rep_channels, steps=self.encoder_steps, seed=self.seed,
                                 cache_chunks=self.cache_chunks, memory_gb=self.memory_gb, device=self.device,
                                 patience=self.patience, precision=self.precision, compile=self.compile,
                                 channels_last=self.channels_last)


@dataclass
class ControllerConfig(ConfigIO, EngineFields):
    """A controller from real actions (``action_space``) to a world model's latent actions.

    ``kind``: ``mlp`` (actions alone) or ``xattn`` (actions cross-attending to ``s_t``). Data and
    split default to the world model's (a controller must not train on its test clips);
    ``games`` picks games of that data, e.g. ones the world model never saw (the paper trains
    controllers on the target domain's labelled actions).
    """

    world_model: str = ""
    kind: str = "xattn"
    action_space: str = "inputs"
    datasets: list[str] | None = None
    size: str | None = None
    data_seed: int | None = None
    games: list[str] | None = None
    hidden: int = 256
    d_model: int = 64
    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    warmup: float = 0.1
    weight_decay: float = 0.04
    chunks_per_batch: int = 4
    eval_clips: int = 256

    FIELD_HELP: ClassVar[dict[str, str]] = {
        "world_model": "World model id whose latent actions the controller predicts.",
        "kind": "xattn (actions cross-attending to the state) or mlp (actions alone).",
        "action_space": "Real actions the controller reads: inputs | motion.",
        "datasets": "Catalog id(s) or store path(s) (default: the world model's).",
        "games": "Train on these games of that data only (default: the world model's).",
        "hidden": "Hidden width of the mlp controller.",
        "d_model": "Width of the xattn controller.",
        "eval_clips": "Validation clips per evaluation.",
    }

    def __post_init__(self):
        self.datasets, self.games = _as_list(self.datasets), _as_list(self.games)
        if not self.world_model:
            raise ConfigError("ControllerConfig: world_model (a world model id) is required")
        if self.kind not in CONTROLLERS:
            raise ConfigError(f"ControllerConfig: kind must be one of {list(CONTROLLERS)}, got {self.kind!r}")
        if self.action_space not in ACTION_SPACES:
            raise ConfigError(f"ControllerConfig: action_space must be one of {ACTION_SPACES},"
                              f" got {self.action_space!r}")
        self._check_positive(("hidden", "d_model", "steps", "batch_size", "lr", "chunks_per_batch", "eval_every",
                              "eval_clips", "checkpoint_every", "cache_chunks"))
        self._check_accelerator()


def knob_fields(family: str, knob: float | None) -> dict:
    """``{field: value}`` setting ``family``'s capacity knob to ``knob`` (``{}`` for None), e.g.
    ``{"codebook_size": 16}``; a family without a knob is a ``ConfigError``."""
    if knob is None:
        return {}
    if family not in KNOBS:
        raise ConfigError(f"family {family!r} has no capacity knob")
    return {KNOBS[family]: int(knob) if family == "discrete" else knob}


def sweep_configs(family: str, values: Sequence | None = None, base: WorldModelConfig | Mapping | None = None,
                  **overrides) -> list[WorldModelConfig]:
    """One config per value of ``family``'s capacity knob (default: the paper's sweep, appendix
    A), each otherwise ``base`` (a config or a mapping of fields) with ``overrides``; model ids
    are left to the trainer, which names each after its knob value."""
    if family not in KNOBS:
        raise ConfigError(f"family {family!r} has no capacity knob; sweepable: {list(KNOBS)}")
    fields = base.to_dict() if isinstance(base, WorldModelConfig) else dict(base or {})
    fields.update(overrides, family=family, model_id=None)
    values = PAPER_SWEEPS[family] if values is None else values
    return [WorldModelConfig(**{**fields, KNOBS[family]: v}) for v in values]


def by_capacity(family: str, values: Sequence) -> list:
    """``values`` of ``family``'s knob ordered from the lowest capacity to the highest (sparse λ
    and noisy β fall as capacity rises, the codebook size |C| grows)."""
    if family not in KNOBS:
        raise ConfigError(f"family {family!r} has no capacity knob; sweepable: {list(KNOBS)}")
    return sorted(dict.fromkeys(values), reverse=not CAPACITY_RISES[family])


def capacity_levels(family: str, values: Sequence) -> dict:
    """The paper's capacity rows (Tables 1, 2, S1, S2) for a sweep: ``{value: "Low" | "Mid" |
    "High" | ""}``. The lowest-capacity value is Low, the highest High and, with three or more,
    the middle one (the lower middle of an even count) Mid; one value alone is Mid; the others
    stay unlabelled (they still appear in the sweep's figure)."""
    ordered = by_capacity(family, values)
    levels = dict.fromkeys(ordered, "")
    if len(ordered) == 1:
        return {ordered[0]: "Mid"}
    levels[ordered[0]], levels[ordered[-1]] = "Low", "High"
    if len(ordered) >= 3:
        levels[ordered[(len(ordered) - 1) // 2]] = "Mid"
    return levels

