"""Label schemas: which label variables a dataset carries and how they are encoded.

A dataset's labels are variables on the ``frame`` dimension. Three kinds exist:

* ``categorical`` – int8 class codes into ``classes`` (e.g. LEFT/NEUTRAL/RIGHT), -1 = unlabeled
* ``binary``      – int8 0/1 (a key held or not), -1 = unlabeled
* ``continuous``  – float32 (mouse delta in degrees, player position), NaN = unlabeled
* ``bytes``       – uint8 ``(frame, length)`` (an emulator's RAM), all zero = unrecorded

The label at frame ``t`` describes the transition ``t -> t+1`` (the input the player gave
after seeing frame ``t``), so a frame pair's label is its first frame's label.

A label's ``role`` says what it is: ``input`` (what the player pressed: the only labels an
action head or an action space may use), ``outcome`` (what the step ``t -> t+1`` caused: reward,
death, how the episode ended) or ``state`` (the engine's truth at frame ``t``: position, RAM).
Entries and stores written before roles existed hold inputs only, so ``input`` is the default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np

from ..core.errors import ConfigError, DataError

UNLABELED = -1
STEER_CLASSES = ("LEFT", "NEUTRAL", "RIGHT")
VERTICAL_CLASSES = ("UP", "NEUTRAL", "DOWN")
#: ALE's full action set, in the emulator's enum order (codes 0-17).
ALE_ACTIONS = (
    "NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT", "DOWNRIGHT", "DOWNLEFT",
    "UPFIRE", "RIGHTFIRE", "LEFTFIRE", "DOWNFIRE", "UPRIGHTFIRE", "UPLEFTFIRE", "DOWNRIGHTFIRE",
    "DOWNLEFTFIRE",
)
KINDS = ("categorical", "binary", "continuous", "bytes")
ROLES = ("input", "outcome", "state")
#: ``episode_end`` classes: the step ``t -> t+1`` ended the episode by the game's own termination
#: (death, lap finished), by the length cap (or the engine's time limit), or did not end it.
EPISODE_END_CLASSES = ("running", "terminated", "truncated")


@dataclass(frozen=True)
class LabelSpec:
    """One label variable: its name, kind, classes (categorical only), length (bytes only), role and meaning."""

    name: str
    kind: str
    classes: tuple[str, ...] = ()
    description: str = ""
    units: str = ""
    role: str = "input"
    length: int = 0

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"label {self.name!r}: unknown kind {self.kind!r}; expected one of {KINDS}")
        if self.kind == "categorical" and len(self.classes) < 2:
            raise ConfigError(f"label {self.name!r}: a categorical label needs at least two classes")
        if self.kind != "categorical" and self.classes:
            raise ConfigError(f"label {self.name!r}: only categorical labels have classes")
        if self.role not in ROLES:
            raise ConfigError(f"label {self.name!r}: unknown role {self.role!r}; expected one of {ROLES}")
        if (self.kind == "bytes") != (self.length > 0):
            raise ConfigError(f"label {self.name!r}: a bytes label needs a positive length, and only it has one")
        if self.kind == "bytes" and self.role == "input":
            raise ConfigError(f"label {self.name!r}: a bytes label is engine state or outcome, not an input")

    @classmethod
    def from_dict(cls, d: Mapping) -> "LabelSpec":
        unknown = set(d) - {"name", "kind", "classes", "description", "units", "role", "length"}
        if unknown:
            raise ConfigError(f"label spec {d.get('name')!r}: unknown keys {sorted(unknown)}")
        return cls(
            name=str(d["name"]),
            kind=str(d.get("kind", "categorical")),
            classes=tuple(d.get("classes", ()) or ()),
            description=str(d.get("description", "")),
            units=str(d.get("units", "")),
            role=str(d.get("role", "input")),
            length=int(d.get("length", 0)),
        )

    def to_dict(self) -> dict:
        out = {"name": self.name, "kind": self.kind}
        if self.classes:
            out["classes"] = list(self.classes)
        if self.description:
            out["description"] = self.description
        if self.units:
            out["units"] = self.units
        if self.role != "input":  # inputs stay as before roles existed: old stores' attrs unchanged
            out["role"] = self.role
        if self.length:
            out["length"] = self.length
        return out

    @property
    def dtype(self):
        return {"continuous": np.float32, "bytes": np.uint8}.get(self.kind, np.int8)

    @property
    def dims(self) -> tuple[str, ...]:
        """Store dimensions: ``("frame",)``, or ``("frame", "<name>_byte")`` for a bytes label."""
        return ("frame", f"{self.name}_byte") if self.kind == "bytes" else ("frame",)

    def encode(self, values: Iterable, source: str = "labels") -> np.ndarray:
        """Validate and encode raw values (class names, codes, bools or floats) for storage.

        Raises ``ValueError`` naming ``source`` on unknown class names, out-of-range codes or
        NaNs in a discrete label, so bad input never reaches a store.
        """
        arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values)
        if self.kind == "bytes":
            if arr.ndim != 2 or arr.shape[1] != self.length or arr.dtype != np.uint8:
                raise DataError(f"{source}: label {self.name!r} must be uint8 (frames, {self.length}),"
                                f" got {arr.dtype} {arr.shape}")
            return arr
        if self.kind == "continuous":
            try:
                return arr.astype(np.float32)
            except (TypeError, ValueError) as exc:
                raise DataError(f"{source}: label {self.name!r} must be numeric ({exc})") from None
        if arr.dtype.kind in "USO":
            return self._encode_names(arr, source)
        if arr.dtype.kind == "f":
            if np.isnan(arr).any():
                bad = int(np.flatnonzero(np.isnan(arr))[0])
                raise DataError(
                    f"{source}: label {self.name!r} has NaN at frame {bad}; use -1 for unlabeled frames"
                )
            if not np.all(arr == np.round(arr)):
                raise DataError(f"{source}: label {self.name!r} must hold whole class codes")
        arr = arr.astype(np.int64)
        top = len(self.classes) - 1 if self.kind == "categorical" else 1
        bad = (arr < UNLABELED) | (arr > top)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{source}: label {self.name!r} has code {arr[i]} at frame {i}; valid codes are -1..{top}"
            )
        return arr.astype(np.int8)

    def _encode_names(self, arr: np.ndarray, source: str) -> np.ndarray:
        names = self.classes if self.kind == "categorical" else ("0", "1")
        lookup = {n: i for i, n in enumerate(names)}
        lookup.update({"": UNLABELED, "null": UNLABELED, "None": UNLABELED})
        if self.kind == "binary":
            lookup.update({"False": 0, "True": 1, "false": 0, "true": 1})
        out = np.empty(arr.shape, np.int8)
        for i, v in enumerate(arr.astype(str).tolist()):
            if v not in lookup:
                raise DataError(
                    f"{source}: unknown action name {v!r} for label {self.name!r} at frame {i};"
                    f" known: {list(names)}"
                )
            out[i] = lookup[v]
        return out


@dataclass(frozen=True)
class LabelSchema:
    """The ordered label variables of one dataset."""

    specs: tuple[LabelSpec, ...] = field(default_factory=tuple)

    @classmethod
    def from_list(cls, items: Sequence[Mapping | LabelSpec]) -> "LabelSchema":
        specs = tuple(s if isinstance(s, LabelSpec) else LabelSpec.from_dict(s) for s in items)
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ConfigError(f"duplicate label names in schema: {names}")
        return cls(specs)

    def __iter__(self):
        return iter(self.specs)

    def __contains__(self, name: str) -> bool:
        return any(s.name == name for s in self.specs)

    def __getitem__(self, name: str) -> LabelSpec:
        for s in self.specs:
            if s.name == name:
                return s
        raise KeyError(f"no label {name!r} in schema; have {self.names}")

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    def to_list(self) -> list[dict]:
        return [s.to_dict() for s in self.specs]

    def with_role(self, role: str) -> list[str]:
        """Names of the labels of one role (``input``: the only ones actions may be read from)."""
        return [s.name for s in self.specs if s.role == role]

    def missing(self, n: int) -> dict[str, np.ndarray]:
        """All-unlabeled arrays for ``n`` frames (for sources that lack some labels)."""
        return {s.name: _unlabeled(s, n) for s in self.specs}


def _unlabeled(spec: LabelSpec, n: int) -> np.ndarray:
    if spec.kind == "bytes":
        return np.zeros((n, spec.length), np.uint8)
    return np.full(n, np.nan if spec.kind == "continuous" else UNLABELED, spec.dtype)


def steer_from_sign(values: np.ndarray, dead_zone: float = 0.0) -> np.ndarray:
    """Map a signed horizontal input (negative = left) to LEFT/NEUTRAL/RIGHT codes (0/1/2)."""
    v = np.asarray(values, dtype=np.float64)
    out = np.full(v.shape, 1, np.int8)
    out[v < -dead_zone] = 0
    out[v > dead_zone] = 2
    out[np.isnan(v)] = UNLABELED
    return out


def is_input(spec: Mapping) -> bool:
    """True when a stored label spec (a ``label_schema`` item or a variable's attrs) is a player input."""
    return spec.get("role", "input") == "input"
