"""Optical flow between consecutive frames: per-pair statistics, flow-proxy steering labels
(seed 000 §3 and §5) and their agreement with recorded input.

* :mod:`.compute`  – flow of in-memory frames and its reduction to per-pair statistics
* :mod:`.labels`   – ``flow_steer`` proxy labels and :func:`agreement` with true labels
* :mod:`.parallel` – :func:`compute_flow` over a whole store (serial, dask processes or a
  dask.distributed cluster), written as the derived store ``flow-<method>.zarr``

Typical use::

    path = compute_flow(frames_store, method="farneback", workers=2)
    ds = open_dataset(frames_store)                  # frames, labels and flow_* together
    ds["flow_steer"] = proxy_steer(ds, threshold="p67")   # seed 000's two-thirds-neutral rule
    agreement(ds)                                    # per-game accuracy, balanced accuracy, kappa
"""

from ..data.episode import successor_mask
from .compute import METHODS, flow_pairs, flow_statistics, sequence_flow
from .labels import DEFAULT_THRESHOLD, agreement, proxy_steer
from .parallel import compute_flow

__all__ = [
    "METHODS",
    "DEFAULT_THRESHOLD",
    "agreement",
    "compute_flow",
    "flow_pairs",
    "flow_statistics",
    "proxy_steer",
    "sequence_flow",
    "successor_mask",
]
