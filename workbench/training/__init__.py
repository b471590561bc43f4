"""Training inverse dynamics models (seed 000 §3) from zarr stores into the model library.

* :mod:`.config`    ``TrainConfig``, the named presets, YAML in/out
* :mod:`.pairs`     the pair index: targets, games, the leakage-free block split, sampling weights
* :mod:`.stream`    chunk-wise frame reading with an LRU cache, the chunk-first batch sampler
* :mod:`.augment`   horizontal flips with LEFT/RIGHT label swaps
* :mod:`.inference` running a model over pairs; balanced-accuracy tables
* :mod:`.trainer`   ``train(config)``: checkpointed, resumable, deterministic on CPU
* :mod:`.embed`     ``extract_embeddings``: the embedding dataset the analyses read
"""

from .config import PRESETS, TrainConfig, make_config
from .embed import extract_embeddings
from .pairs import PairIndex, build_pair_index
from .trainer import TrainResult, train

__all__ = ["PRESETS", "TrainConfig", "make_config", "extract_embeddings", "PairIndex", "build_pair_index",
           "TrainResult", "train"]
