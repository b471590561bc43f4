"""One id rule for every model of the library: ``<kind>-<tags…>-s<seed>-<hash>``.

The 6-hex hash covers the config's identity (the fields that determine the weights) and
:data:`ENGINE_VERSION`, so a changed setting (steps, lr …) names a new model instead of clashing
with the old one, the same config finds its model again, and weights trained under other training
semantics are never mistaken for new ones. Folders named by earlier rules keep their ids and load.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Sequence

from ..core.paths import check_id

#: Bump when the training semantics change (loop, RNG order, schedule, the block split …): every
#: id changes with it. 2: a small game's val and test splits get ≥ 1 block (:mod:`workbench.frames.split`);
#: 3: IDM early stopping watched the main head's class-balanced cross-entropy; 4: its balanced error.
ENGINE_VERSION = 4


def identity_hash(identity: Mapping[str, Any], n: int = 6) -> str:
    """``n`` hex digits of the sha1 of the identity and :data:`ENGINE_VERSION` (order-free JSON)."""
    blob = json.dumps({"identity": identity, "engine": ENGINE_VERSION}, sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:n]


def tag_of(names: Sequence[str] | None) -> str:
    """One id tag for a list of names: ``all`` for none, the name for one, else a hash of the sorted names."""
    if not names:
        return "all"
    return names[0] if len(names) == 1 else "g" + hashlib.sha1(",".join(sorted(names)).encode()).hexdigest()[:8]


def make_model_id(kind: str, tags: Sequence[Any], seed: int, identity: Mapping[str, Any]) -> str:
    """``<kind>-<tags…>-s<seed>-<hash>``, or ``<kind>-<hash of that>-s<seed>-<hash>`` when that is
    not a safe id of at most 100 characters."""
    digest = identity_hash(identity)
    model_id = "-".join([kind, *map(str, tags)]) + f"-s{seed}-{digest}"
    try:
        return check_id(model_id, "model id")
    except ValueError:
        return check_id(f"{kind}-{hashlib.sha1(model_id.encode()).hexdigest()[:12]}-s{seed}-{digest}", "model id")
