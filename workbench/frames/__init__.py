"""Frames, pairs and clips from the zarr stores, in one place.

The invariant everything here keeps: **no training pair or clip shares a frame with a validation
or test one.** Pairs and clips are built on one function, :func:`.split.split_transitions`: the
real transitions of each store (:func:`workbench.data.episode.successor_mask`: never across an
episode boundary or a step reset), split by contiguous blocks per game, with a purge gap where
neighbouring blocks went to different splits; a clip also stays inside one block.

* :mod:`.sources`  ``Source`` and ``resolve_source`` (a catalog id or a store path)
* :mod:`.split`    the block split and its purge gap (``SPLITS``, ``PURGED``, ``split_transitions``)
* :mod:`.pairs`    the pair index for IDMs: heads, targets, balanced weights, fine-tune subsets
* :mod:`.clips`    the clip index for world models, with step actions attached
* :mod:`.actions`  real-action spaces and their standardisation (``ActionSpace``)
* :mod:`.stream`   the streaming reader (zarr chunks, LRU cache) and the chunk-first sampler
* :mod:`.memory`   frames held in memory (GPU, pinned or host) and ``open_reader``, which picks a reader
* :mod:`.augment`  horizontal flips with label swaps, on numpy arrays or tensors
"""
