"""Inverse dynamics models across games (seed 000), read top to bottom:

* :mod:`.model`     ``IDMLatentSpatial``: a frame pair -> a latent action and one logit set per head
* :mod:`.config`    ``TrainConfig``, the named presets, YAML in/out
* :mod:`.training`  ``train(config)``: checkpointed, resumable, deterministic on CPU
* :mod:`.inference` running a model over pairs; balanced-accuracy tables
* :mod:`.embed`     ``extract_embeddings``: the embedding dataset the analyses read
* :mod:`.study`     the cross-game study's stages (``run_study``); :mod:`.report` renders it
"""

from .config import PRESETS, TrainConfig, make_config
from .embed import extract_embeddings
from .model import IDMLatentSpatial
from .training import TrainResult, train

__all__ = ["PRESETS", "TrainConfig", "make_config", "extract_embeddings", "IDMLatentSpatial", "TrainResult", "train"]
