"""Models and the model library: ``IDMLatentSpatial`` (seed 000 §3) and trained-model folders
under :func:`workbench.paths.models_dir` (see ``models/README.md``)."""

from .idm import IDMLatentSpatial, default_device, pair_tensor
from .library import list_models, load_card, load_model, model_path

__all__ = ["IDMLatentSpatial", "default_device", "pair_tensor", "list_models", "load_card", "load_model",
           "model_path"]
