"""The contract every method's training config follows: a dataclass with YAML/dict round trips,
an ``identity`` (the fields that determine the trained weights, hashed into the model id by
:mod:`.ids` and checked by :mod:`.fit` before a checkpoint is resumed) and shared validators."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
import numbers
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import yaml

from ..core.errors import ConfigError
from ..core.paths import atomic_write_text

# Fields that change how a run executes but not what it computes: ignored when deciding whether
# an existing model or checkpoint belongs to a config.
# ``compile`` and ``channels_last`` only change the order of floating-point operations, like the device.
RUNTIME_FIELDS = ("device", "checkpoint_every", "cache_chunks", "memory_gb", "compile", "channels_last")
# Fields added after models were trained: left out of the identity while unset, so the models of
# older configs keep their ids.
UNSET_OPTIONAL_FIELDS = ("patience",)
# Fields added after models were trained that change the weights: left out of the identity while at
# these defaults (older configs keep their ids), part of it otherwise. ``precision: bf16`` computes
# the forward pass and the gradients it back-propagates with 8-bit mantissas: another model.
DEFAULTS_LEFT_OUT = {"precision": "fp32"}
#: ``precision`` values: float32 throughout, or bfloat16 autocast for the training step's forward pass.
PRECISIONS = ("fp32", "bf16")
#: ``compile`` values: off, or ``torch.compile``'s mode (``reduce-overhead`` adds CUDA graphs).
COMPILE_MODES = (False, True, "default", "reduce-overhead", "max-autotune")


def is_positive(value: Any, whole: bool = False) -> bool:
    """A positive number (a whole one when ``whole``); a string, None or a bool is not."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool) and value > 0
            and (not whole or float(value).is_integer()))


def check_split(fractions: Sequence) -> None:
    """Refuse train/val/test fractions that are not three non-negative numbers summing to 1."""
    if (len(fractions) != 3 or not all(isinstance(f, numbers.Real) for f in fractions)
            or abs(sum(fractions) - 1) > 1e-6 or min(fractions) < 0):
        raise ConfigError(f"split_fractions must be three non-negative numbers summing to 1, got {fractions}")


@dataclass(kw_only=True)
class EngineFields:
    """The fields the training engine reads that every method's config shares, with the same
    defaults: ``seed``; validation every ``eval_every`` steps and a checkpoint every
    ``checkpoint_every``; ``cache_chunks`` chunks cached per reader; frames held in memory up to
    ``memory_gb`` (None: half the free memory; 0: stream); ``model_id`` (None: named by
    :mod:`.ids`); ``device`` (None: chosen by :mod:`.device`); ``patience``: early stopping on the
    validation loss (:mod:`.stopping`; None: run every step); how the run uses its device
    (:mod:`.device`): ``precision`` (``fp32``, or ``bf16`` autocast: part of the identity, another
    model), ``compile`` (``torch.compile`` of the model's forward: False, True or a mode) and
    ``channels_last`` (NHWC weights for the conv models), both runtime fields, checked by
    :meth:`_check_accelerator` from the config's ``__post_init__``. A method's config mixes it in beside
    :class:`ConfigIO` and declares ``steps``, ``batch_size``, ``lr``, ``weight_decay`` (its own defaults);
    keyword-only, so a method's own fields may come without defaults."""

    seed: int = 0
    eval_every: int = 500
    checkpoint_every: int = 250
    cache_chunks: int = 256
    memory_gb: float | None = None
    model_id: str | None = None
    device: str | None = None
    patience: int | None = None
    precision: str = "fp32"
    compile: bool | str = False
    channels_last: bool = False

    def _check_accelerator(self) -> None:
        """Refuse a ``precision``, ``compile`` or ``channels_last`` value the engine does not know."""
        if self.precision not in PRECISIONS:
            raise ConfigError(f"{type(self).__name__}: precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not any(self.compile is m or (isinstance(m, str) and self.compile == m) for m in COMPILE_MODES):
            raise ConfigError(f"{type(self).__name__}: compile must be one of {COMPILE_MODES}, got {self.compile!r}")
        if not isinstance(self.channels_last, bool):
            raise ConfigError(f"{type(self).__name__}: channels_last must be true or false, got {self.channels_last!r}")


class ConfigIO:
    """YAML/dict round trips and identity for the config dataclasses (every method's training configs).

    ``FIELD_HELP`` (one line per field, merged over a config's bases) is the help of the field's
    command-line option (:mod:`workbench.cli_options`); these are the fields the engine reads."""

    FIELD_HELP: ClassVar[dict[str, str]] = {
        "datasets": "Catalog id(s) or dataset store path(s) to train on.",
        "size": "Catalog size of the data (e.g. tiny, demo, full); default: the entry's.",
        "data_seed": "Recording seed of the catalog data; default: the entry's.",
        "games": "Train on these games only (default: every game of the data).",
        "split_fractions": "Train, validation and test fractions of the block split (three numbers summing to 1).",
        "split_block": "Frames per block of the train/val/test split (a purged transition at each boundary).",
        "split_seed": "Seed of the blocks' assignment to train/val/test (not --seed: every seed sees one test set).",
        "steps": "Optimiser steps.",
        "batch_size": "Examples per optimiser step.",
        "lr": "Peak learning rate.",
        "weight_decay": "AdamW weight decay.",
        "warmup": "Fraction of the steps spent warming the learning rate up linearly (then cosine decay).",
        "seed": "Training seed: initialisation and batches.",
        "chunks_per_batch": "Stored chunks a batch is drawn from (fewer: faster reads, more correlated batches).",
        "eval_every": "Evaluate on the validation split every this many steps.",
        "checkpoint_every": "Write a resumable checkpoint every this many steps.",
        "cache_chunks": "Decoded chunks kept in memory by the streaming reader.",
        "memory_gb": "Hold frames in memory up to this many GB (default: half the free memory; 0: stream).",
        "model_id": "Id of the model in the library (default: made from the config by the id rule).",
        "device": "cpu, cuda, cuda:1 … (default: cuda when available).",
        "patience": "Stop once this many evaluations bring no better validation loss; keep the best weights.",
        "precision": "fp32, or bf16 autocast (another model: part of its id).",
        "compile": "torch.compile the model's forward: false, true or a mode (reduce-overhead, max-autotune …).",
        "channels_last": "Channels-last (NHWC) memory format for the convolutional models.",
    }

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
        return cls(**dict(d))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str):
        data = yaml.safe_load(text)
        if not isinstance(data, Mapping):
            raise ConfigError(f"{cls.__name__} YAML must hold a mapping of config fields")
        return cls.from_dict(data)

    def save(self, path: str | Path) -> Path:
        return atomic_write_text(path, self.to_yaml())

    @classmethod
    def load(cls, path: str | Path):
        """The config a YAML file holds; a malformed file is a one-line ``ConfigError`` naming it."""
        try:
            return cls.from_yaml(Path(path).read_text())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise ConfigError(f"{path}: not valid YAML{f' at line {mark.line + 1}' if mark else ''}"
                              f" ({getattr(exc, 'problem', None) or type(exc).__name__})") from None
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def identity(self) -> dict:
        """The fields that determine the trained weights (everything but :data:`RUNTIME_FIELDS`)."""
        return {k: v for k, v in self.to_dict().items()
                if k not in RUNTIME_FIELDS and not (k in UNSET_OPTIONAL_FIELDS and v is None)
                and not (k in DEFAULTS_LEFT_OUT and v == DEFAULTS_LEFT_OUT[k])}

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def _check_positive(self, names: Sequence[str]) -> None:
        bad = [n for n in names if not is_positive(getattr(self, n))]
        if bad:
            raise ConfigError(f"{type(self).__name__}: {bad} must be positive")
