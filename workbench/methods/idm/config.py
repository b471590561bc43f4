"""Training configurations: one dataclass, named presets, YAML in and out.

The presets follow seed 000's racing table (Table 1) and its calibration experiments:

=================  ===================================================================
``single``         one game only (the first game of the dataset unless ``games`` is given)
``joint_v1``       all games of the datasets, one set of weights, uniform sampling
``joint_v2``       + balanced sampling: every (main-head class × game) drawn equally often
``joint_v3``       + horizontal flips (p = 0.5) with LEFT/RIGHT (and key_a/key_d) swapped
``finetune_k``     start from a joint model (``init_from``), fine-tune the whole model on
                   ``k_per_class`` (default 50) labeled train frames per class of one game
``finetune_pct``   the same on ``fraction`` (default 20 %) of one game's train labels: the
                   paper's "calibrated ceiling"
=================  ===================================================================

A fine-tune keeps its start model's sampling and augmentation (``balanced``/``hflip`` left at
``None`` inherit them), so a ceiling differs from its start model only in the labels it sees.

For Atari the paper trained on flow-proxy labels: ``targets={"steer": "flow_steer"}``.
A config is plain data, so papermill and the CLI can pass it as YAML (``yaml.safe_load``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from ...core.errors import ConfigError
from ...engine.config import ConfigIO, EngineFields, check_split, is_positive
from ...frames.sources import DataFields

FINETUNE_KEYS = {"game", "k_per_class", "fraction", "seed"}


@dataclass
class TrainConfig(ConfigIO, DataFields, EngineFields):
    """Everything that determines a trained IDM. Units: steps are optimiser steps, fractions in [0, 1].

    Data: ``datasets`` are catalog ids (materialised at ``size``/``data_seed``, None = the
    entry's defaults) or paths of dataset stores; ``games`` restricts to some games (None = all).
    Labels: ``heads`` are label names (None = every categorical label with ≤ 3 classes plus every
    binary key of the schemas); ``targets`` maps a head to the variable it is trained on
    (default itself); ``main_head`` (default the first head) is the one balanced sampling and
    ``finetune_k`` count classes of. Split: contiguous blocks of ``split_block`` frames assigned
    per game to train/val/test in ``split_fractions``, seeded by ``split_seed`` (not ``seed``, so
    every training seed sees the same test set). ``finetune`` is a mapping with ``game``, one
    of ``k_per_class`` (of ``main_head``'s classes) / ``fraction``, and optionally ``seed``
    (the draw of those labels; default ``seed``); it needs ``init_from``. ``balanced`` and
    ``hflip`` left at ``None`` are the ``init_from`` model's (else off).
    ``patience``: stop once the validation loss (``main_head``'s balanced error rate:
    :func:`~workbench.methods.idm.training.validation_loss`) has not improved for that many evaluations
    (every ``eval_every`` steps) and keep the best weights; ``steps`` is then a cap (None: run
    all ``steps``). ``precision``, ``compile``, ``channels_last``: see
    :class:`~workbench.engine.config.EngineFields`.
    """

    name: str = "joint_v1"
    heads: list[str] | None = None
    targets: dict[str, str] = field(default_factory=dict)
    main_head: str | None = None
    balanced: bool | None = None
    hflip: bool | None = None
    flip_pairs: list[list[str]] = field(default_factory=lambda: [["key_a", "key_d"]])
    steps: int = 3000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    input_size: int = 64
    width: int = 64
    embed_dim: int = 256
    chunks_per_batch: int = 8
    eval_pairs: int = 2048
    init_from: str | None = None
    finetune: dict[str, Any] | None = None

    FIELD_HELP: ClassVar[dict[str, str]] = {
        "name": "Preset the config came from (names the model).",
        "heads": "Label heads to train (default: every categorical label with ≤ 3 classes and every binary key).",
        "targets": "YAML mapping of a head to the variable it is trained on, e.g. '{steer: flow_steer}'.",
        "main_head": "Head that balanced sampling and finetune_k count classes of (default: the first).",
        "balanced": "Draw every (main-head class × game) equally often (default: the start model's, else off).",
        "hflip": "Horizontal flips (p = 0.5) swapping LEFT/RIGHT and flip pairs (default: the start model's, else off).",
        "flip_pairs": "YAML list of the label pairs a flip swaps (default: key_a with key_d).",
        "input_size": "Side of the square input frames (pixels).",
        "width": "Channels of the first convolution (the network's width).",
        "embed_dim": "Width of the penultimate layer (the embedding analysed).",
        "eval_pairs": "Validation pairs per evaluation.",
        "init_from": "Model id to start from (finetune_* presets).",
        "finetune": "YAML mapping: game, one of k_per_class / fraction, optional seed (finetune_* presets).",
    }

    def __post_init__(self):
        for name in ("datasets", "games", "heads"):
            value = getattr(self, name)
            if isinstance(value, str):
                setattr(self, name, [value])
        if self.datasets is not None and not self.datasets:
            raise ConfigError("config: datasets is empty")
        if self.datasets is None and not self.init_from:
            raise ConfigError("config: give datasets (catalog ids or store paths), or init_from to reuse a model's")
        positive = ("steps", "batch_size", "input_size", "width", "embed_dim", "split_block", "chunks_per_batch",
                    "eval_every", "eval_pairs", "checkpoint_every", "cache_chunks")
        bad = [n for n in positive if not is_positive(getattr(self, n), whole=True)]
        if self.patience is not None and not is_positive(self.patience, whole=True):
            bad.append("patience")
        if bad:
            raise ConfigError(f"config: {bad} must be positive integers")
        check_split(self.split_fractions)
        self._check_accelerator()
        if self.finetune is not None:
            ft = dict(self.finetune)
            unknown = set(ft) - FINETUNE_KEYS
            if unknown:
                raise ConfigError(f"config: unknown finetune keys {sorted(unknown)}; allowed {sorted(FINETUNE_KEYS)}")
            if not ft.get("game"):
                raise ConfigError("config: finetune needs the game to calibrate on (finetune: {game: ...})")
            if (ft.get("k_per_class") is None) == (ft.get("fraction") is None):
                raise ConfigError("config: finetune needs exactly one of k_per_class and fraction")
            if ft.get("fraction") is not None and not 0 < float(ft["fraction"]) <= 1:
                raise ConfigError(f"config: finetune fraction must be in (0, 1], got {ft['fraction']}")
            if not self.init_from:
                raise ConfigError("config: finetune needs init_from (the model id to start from)")

PRESETS: dict[str, dict[str, Any]] = {
    "single": {"name": "single"},
    "joint_v1": {"name": "joint_v1"},
    "joint_v2": {"name": "joint_v2", "balanced": True},
    "joint_v3": {"name": "joint_v3", "balanced": True, "hflip": True},
    "finetune_k": {"name": "finetune_k", "finetune": {"k_per_class": 50}, "steps": 300, "lr": 3e-4,
                   "eval_every": 100},
    "finetune_pct": {"name": "finetune_pct", "finetune": {"fraction": 0.2}, "steps": 500, "lr": 3e-4,
                     "eval_every": 100},
}


def make_config(preset: str = "joint_v1", **overrides) -> TrainConfig:
    """A preset (see the module docstring) with ``overrides`` applied.

    ``finetune`` overrides are merged into the preset's (``finetune={"game": "Enduro"}`` keeps
    ``k_per_class: 50``). ``single`` without ``games`` takes the first game of the first catalog
    dataset.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; presets: {', '.join(PRESETS)}")
    values = dict(PRESETS[preset])
    if "finetune" in overrides and values.get("finetune") is not None and overrides["finetune"] is not None:
        overrides = {**overrides, "finetune": {**values["finetune"], **overrides["finetune"]}}
    values.update(overrides)
    if preset == "single" and not values.get("games") and values.get("datasets"):
        from ...data.catalog import get_entry

        datasets = values["datasets"]
        values["games"] = [get_entry(datasets if isinstance(datasets, str) else datasets[0]).games[0]]
    return TrainConfig(**values)


def config_from_options(preset: str, fields: dict, finetune_game: str | None = None,
                        from_file: bool = False) -> TrainConfig:
    """The config of ``workbench train``: ``fields`` (what the user gave) over the ``preset``, or
    over a config file's fields when ``from_file`` (the preset is then ignored); ``finetune_game``
    sets the game of the preset's (or file's) ``finetune`` mapping."""
    if finetune_game:
        fields = {**fields, "finetune": {**(fields.get("finetune") or {}), "game": finetune_game}}
    return TrainConfig.from_dict(fields) if from_file else make_config(preset, **fields)
