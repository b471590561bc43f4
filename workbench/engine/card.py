"""The typed model card: what a trained model of the library is.

:class:`ModelCard` names the fields every method's card has — architecture and constructor
arguments, config, data, split, metrics, training record, provenance, seed, weights digest — and
keeps what only some methods write (``heads``, ``main_head``, ``games``, ``family``, ``knob``,
``encoder``, ``action_space``, ``world_model``, ``kind`` …) in ``extras``. On disk the YAML keeps
the flat form every card has had (provenance fields at the top level), so cards written before
this class load unchanged; it also reads as that flat mapping (``card["config"]``) for code not
yet moved to attributes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from ..core.provenance import code_version, now_utc, versions

#: Provenance fields, stored at the card's top level.
PROVENANCE = ("code_version", "versions", "created")
#: Config fields of the block split (a controller's split is its world model's: none of its own).
SPLIT_FIELDS = ("split_block", "split_fractions", "split_seed")


def provenance(*packages: str) -> dict:
    """The provenance fields of a card written now: code version, ``packages``' versions, time."""
    return {"code_version": code_version(), "versions": versions(*packages), "created": now_utc()}


@dataclass(eq=False)
class ModelCard(Mapping):
    """One model's card (see the module docstring); equal to any mapping of the same flat form."""

    model_id: str
    architecture: str
    model: dict
    config: dict
    training: dict
    metrics: dict
    seed: int
    weights_sha256: str
    data: list | None = None
    history: list | None = None
    provenance: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, card: Mapping) -> ModelCard:
        """The card of a checked flat mapping (:func:`workbench.engine.library.check_card`)."""
        named = {"model_id", "architecture", "model", "config", "training", "metrics", "seed", "weights_sha256",
                 "data", "history"}
        return cls(**{k: card[k] for k in named if k in card},
                   provenance={k: card[k] for k in PROVENANCE if k in card},
                   extras={k: v for k, v in card.items() if k not in named and k not in PROVENANCE})

    @classmethod
    def of(cls, card: Mapping) -> ModelCard:
        """``card`` itself when it is a :class:`ModelCard`, else the card of its flat form."""
        return card if isinstance(card, cls) else cls.from_dict(card)

    def to_dict(self) -> dict:
        """The flat form written to ``card.yaml``."""
        out = {"model_id": self.model_id, "architecture": self.architecture, "model": self.model, "seed": self.seed,
               **self.extras}
        out.update({k: v for k, v in (("data", self.data), ("history", self.history)) if v is not None})
        out.update(metrics=self.metrics, training=self.training, config=self.config, **self.provenance,
                   weights_sha256=self.weights_sha256)
        return out

    @property
    def split(self) -> dict:
        """The block split the model was trained under (empty for a controller: its world model's)."""
        return {k: self.config[k] for k in SPLIT_FIELDS if k in self.config}

    @property
    def steps(self) -> int:
        """Training steps taken."""
        return int(self.training["steps"])

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())
