"""The model library: one folder per trained model under :func:`workbench.paths.models_dir`.

::

    <models_dir>/<model_id>/
        card.yaml        what the model is: config, data, heads, metrics, provenance (committed)
        weights.pt       the state_dict only, read with torch.load(weights_only=True) (not committed)
        checkpoint.pt    model + optimiser + RNG state while training; removed when training ends

``card.yaml`` is written last, so a folder with a card is a finished model. Every file is
written to a temporary sibling and moved into place with ``os.replace``, so an interrupted
write never leaves a half-written card, weights or checkpoint.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
from pathlib import Path
from typing import Any, Mapping

import torch
import yaml

from ..paths import atomic_write, check_id, models_dir
from .idm import IDMLatentSpatial, default_device

CARD = "card.yaml"
WEIGHTS = "weights.pt"
CHECKPOINT = "checkpoint.pt"
#: A card's ``architecture`` -> its class, or ``"module:Class"`` imported on first use (the world
#: model's classes live in a higher layer, :mod:`workbench.worldmodel`, that imports this module).
ARCHITECTURES: dict[str, type | str] = {
    "IDMLatentSpatial": IDMLatentSpatial,
    "LatentActionWorldModel": "workbench.worldmodel.model:LatentActionWorldModel",
    "FrameAutoencoder": "workbench.worldmodel.autoencoder:FrameAutoencoder",
    "MLPController": "workbench.worldmodel.controller:MLPController",
    "CrossAttentionController": "workbench.worldmodel.controller:CrossAttentionController",
}


class ModelLibraryError(LookupError):
    """A model is missing from the library or its folder is incomplete."""


def model_path(model_id: str) -> Path:
    """Folder of one model (not created)."""
    return models_dir() / check_id(model_id, "model id")


def list_models() -> list[str]:
    """Ids of the finished models in the library (folders with a card), sorted."""
    root = models_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CARD).is_file())


def load_card(model_id: str) -> dict:
    """The card of a finished model, as plain YAML data."""
    path = model_path(model_id) / CARD
    if not path.is_file():
        known = ", ".join(list_models()) or "none"
        raise ModelLibraryError(f"no model {model_id!r} in {models_dir()} (finished models: {known})")
    return yaml.safe_load(path.read_text())


def build_model(card: Mapping) -> torch.nn.Module:
    """An untrained model of the card's architecture and constructor arguments."""
    arch = card.get("architecture")
    if arch not in ARCHITECTURES:
        raise ModelLibraryError(f"model {card.get('model_id')!r}: unknown architecture {arch!r}")
    cls = ARCHITECTURES[arch]
    if isinstance(cls, str):
        module, name = cls.split(":")
        cls = getattr(importlib.import_module(module), name)
    return cls(**card["model"])


def load_model(model_id: str, device: str | torch.device | None = None) -> torch.nn.Module:
    """The trained model, in eval mode on ``device`` (default: CUDA when available, else CPU)."""
    card = load_card(model_id)
    path = model_path(model_id) / WEIGHTS
    if not path.is_file():
        raise ModelLibraryError(f"model {model_id!r} has a card but no {WEIGHTS} (weights are not committed;"
                                " train it again or copy the weights into its folder)")
    model = build_model(card)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(default_device(device)).eval()


def plain(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays and tuples turned into YAML-safe python values."""
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def atomic_torch_save(obj: Any, path: Path) -> Path:
    """``torch.save`` to a temporary sibling, then ``os.replace`` onto ``path``."""
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(model_id: str, model: torch.nn.Module, card: Mapping) -> Path:
    """Write ``weights.pt`` then ``card.yaml`` (with the weights' sha256) into the model's folder."""
    folder = model_path(model_id)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    weights = atomic_torch_save(state, folder / WEIGHTS)
    card = {**plain(card), "model_id": model_id, "weights_sha256": file_sha256(weights)}
    atomic_write_text(folder / CARD, yaml.safe_dump(card, sort_keys=False))
    return folder


def delete_model(model_id: str) -> None:
    """Remove a model's folder (card, weights and any checkpoint)."""
    shutil.rmtree(model_path(model_id), ignore_errors=True)
