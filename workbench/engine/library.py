"""The model library: one folder per trained model under :func:`workbench.core.paths.models_dir`.

::

    <models_dir>/<model_id>/
        card.yaml        what the model is: config, data, heads, metrics, provenance (committed),
                         read as a typed :class:`~workbench.engine.card.ModelCard`
        curves/          TensorBoard event files of its training curves (:mod:`.curves`)
        weights.pt       the state_dict only, read with torch.load(weights_only=True) (not committed)
        checkpoint.pt    model + optimiser + RNG state while training; removed when training ends

``card.yaml`` is written last, so a folder with a card is a finished model. Every file is
written to a temporary sibling and moved into place with ``os.replace``, so an interrupted
write never leaves a half-written card, weights or checkpoint. The weights are serialised in
memory, so the same tensors always give the same bytes and the card's ``weights_sha256``;
loading checks that digest and the card's fields, and every failure is a one-line
:class:`ModelLibraryError` naming the file. ``<models_dir>/<model_id>.lock`` exists while a
process trains the model (:func:`model_lock`).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import pickle
import shutil
import warnings
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import yaml

from ..core.errors import WorkbenchError
from ..core.locks import hold
from ..core.paths import atomic_write, atomic_write_text, check_id, models_dir
from .card import ModelCard
from .device import default_device

CARD = "card.yaml"
WEIGHTS = "weights.pt"
CHECKPOINT = "checkpoint.pt"
#: A card's ``architecture`` -> ``"module:Class"``, imported on first use (the methods' models live
#: in a higher layer, :mod:`workbench.methods`, that imports this module).
ARCHITECTURES: dict[str, str] = {
    "IDMLatentSpatial": "workbench.methods.idm.model:IDMLatentSpatial",
    "LatentActionWorldModel": "workbench.methods.worldmodel.model:LatentActionWorldModel",
    "FrameAutoencoder": "workbench.methods.worldmodel.autoencoder:FrameAutoencoder",
    "MLPController": "workbench.methods.worldmodel.controller:MLPController",
    "CrossAttentionController": "workbench.methods.worldmodel.controller:CrossAttentionController",
}


#: Fields every card holds and their types, checked on load (the trainers, the library and its
#: listings read them), and the types of those only some architectures' cards hold.
CARD_FIELDS = {"model_id": str, "architecture": str, "model": dict, "config": dict, "training": dict,
               "metrics": dict, "seed": int, "weights_sha256": str}
OPTIONAL_FIELDS = {"heads": dict, "main_head": str, "games": list, "data": list, "history": list}


class ModelLibraryError(WorkbenchError, LookupError):
    """A model is missing from the library, or one of its files is incomplete, altered or unsafe."""


def model_path(model_id: str) -> Path:
    """Folder of one model (not created)."""
    return models_dir() / check_id(model_id, "model id")


def model_lock(model_id: str) -> AbstractContextManager[Path]:
    """Hold ``<models_dir>/<model_id>.lock`` (beside the folder, which ``force`` may delete):
    one process at a time trains or replaces a model."""
    return hold(models_dir() / f"{check_id(model_id, 'model id')}.lock", f"model {model_id!r}")


def list_models() -> list[str]:
    """Ids of the finished models in the library (folders with a card), sorted."""
    root = models_dir()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CARD).is_file())


def check_card(card: Any, path: Path) -> dict:
    """``card`` if it has every :data:`CARD_FIELDS` field, all fields of both tables with their
    types, its folder's id and a known architecture; otherwise a :class:`ModelLibraryError`
    naming ``path``."""
    if not isinstance(card, dict):
        raise ModelLibraryError(f"{path}: not a model card (expected a mapping, got {type(card).__name__})")
    for name, kind in {**CARD_FIELDS, **OPTIONAL_FIELDS}.items():
        if name not in card:
            if name in CARD_FIELDS:
                raise ModelLibraryError(f"{path}: missing field {name!r}")
        elif not isinstance(card[name], kind):
            raise ModelLibraryError(f"{path}: field {name!r} should be a {kind.__name__}, not"
                                    f" {type(card[name]).__name__}")
    if card["model_id"] != path.parent.name:
        raise ModelLibraryError(f"{path}: model_id {card['model_id']!r} is not its folder's name")
    if card["architecture"] not in ARCHITECTURES:
        raise ModelLibraryError(f"{path}: unknown architecture {card['architecture']!r}")
    if not isinstance(card["training"].get("steps"), int):
        raise ModelLibraryError(f"{path}: training.steps should be an int")
    return card


def load_card(model_id: str) -> ModelCard:
    """The checked card of a finished model (see :func:`check_card`)."""
    path = model_path(model_id) / CARD
    if not path.is_file():
        known = ", ".join(list_models()) or "none"
        raise ModelLibraryError(f"no model {model_id!r} in {models_dir()} (finished models: {known})")
    try:
        card = yaml.safe_load(path.read_text())
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ModelLibraryError(f"{path}: not a readable YAML card ({type(exc).__name__})") from None
    return ModelCard.from_dict(check_card(card, path))


def read_library(load: Callable[[str], Mapping] = load_card) -> tuple[dict[str, Mapping], list[str]]:
    """Cards of the finished models whose card loads, by id, and one line per model whose card
    does not (so one broken card does not hide the rest of the library)."""
    cards, broken = {}, []
    for model_id in list_models():
        try:
            cards[model_id] = load(model_id)
        except (ModelLibraryError, ValueError) as exc:
            broken.append(f"skipped model {model_id!r}: {exc}")
    return cards, broken


def build_model(card: Mapping) -> torch.nn.Module:
    """An untrained model of the card's architecture and constructor arguments."""
    arch = card.get("architecture")
    if arch not in ARCHITECTURES:
        raise ModelLibraryError(f"model {card.get('model_id')!r}: unknown architecture {arch!r}")
    cls = ARCHITECTURES[arch]
    module, name = cls.split(":")
    cls = getattr(importlib.import_module(module), name)
    try:
        return cls(**card["model"])
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelLibraryError(f"model {card.get('model_id')!r}: its card's model arguments do not build a"
                                f" {arch} ({exc})") from None


def load_tensors(path: Path, sha256: str | None = None) -> Any:
    """The tensors (and plain containers) saved at ``path``, read with ``weights_only=True``.

    ``sha256`` (hex) must match the file when given. Any failure — a changed file, a truncated
    one, pickled objects other than tensors — is a one-line :class:`ModelLibraryError`.
    """
    data = Path(path).read_bytes()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ModelLibraryError(f"{path}: its sha256 is not the weights_sha256 of the card: the file was changed"
                                " or belongs to another model; train the model again or restore its weights")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch's note on unusual pickle protocols
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if str(exc).startswith("Weights only load failed"):
            raise ModelLibraryError(f"{path}: refused: it holds pickled objects other than tensors, and loading"
                                    " those could run arbitrary code; only plain tensor files are read") from None
        raise ModelLibraryError(f"{path}: not a torch tensor file (truncated or corrupt)") from None
    except (RuntimeError, EOFError, ValueError, OSError):
        raise ModelLibraryError(f"{path}: not a torch tensor file (truncated or corrupt)") from None


def load_model(model_id: str, device: str | torch.device | None = None) -> torch.nn.Module:
    """The trained model, in eval mode on ``device`` (default: CUDA when available, else CPU)."""
    card = load_card(model_id)
    path = model_path(model_id) / WEIGHTS
    if not path.is_file():
        raise ModelLibraryError(f"model {model_id!r} has a card but no {WEIGHTS} (weights are not committed;"
                                " train it again or copy the weights into its folder)")
    state = load_tensors(path, card.weights_sha256)
    model = build_model(card)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError):
        raise ModelLibraryError(f"{path}: these weights do not fit the {card.architecture} its card"
                                " describes") from None
    return model.to(default_device(device)).eval()


def plain(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays and tuples turned into YAML-safe python values."""
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))


def tensor_bytes(obj: Any) -> bytes:
    """``torch.save`` of ``obj`` into memory: the same tensors give the same bytes (a file name
    would be recorded inside the zip archive)."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def atomic_torch_save(obj: Any, path: Path) -> str:
    """Save ``obj`` to ``path`` atomically (:func:`workbench.core.paths.atomic_write`); its sha256."""
    data = tensor_bytes(obj)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return hashlib.sha256(data).hexdigest()


def save_model(model_id: str, model: torch.nn.Module, card: Mapping) -> Path:
    """Write ``weights.pt`` then ``card.yaml`` (with the weights' sha256) into the model's folder."""
    folder = model_path(model_id)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    card = {**plain(dict(card)), "model_id": model_id, "weights_sha256": atomic_torch_save(state, folder / WEIGHTS)}
    atomic_write_text(folder / CARD, yaml.safe_dump(card, sort_keys=False))
    return folder


def delete_model(model_id: str) -> None:
    """Remove a model's folder (card, weights and any checkpoint)."""
    shutil.rmtree(model_path(model_id), ignore_errors=True)
