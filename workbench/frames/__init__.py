"""Frames, pairs and clips from the zarr stores: sources and the leakage-free block split
(:mod:`.pairs`), chunk-wise readers and the chunk-first sampler (:mod:`.stream`), clip indexes and
action spaces (:mod:`.clips`), and flip augmentation (:mod:`.augment`)."""
