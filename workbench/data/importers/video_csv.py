"""Any gameplay video with a per-frame CSV of inputs: ``<name>.mp4`` + ``<name>.csv``.

The CSV has a header and one row per video frame. Every column becomes a label, except
index-like columns (``frame``, ``frame_id``, ``frame_index``, ``step``, ``episode``,
``time``, ``timestamp``, ``game``). An empty cell or ``null`` (any case) is the one way to
mark a frame unlabeled; ``NaN``, ``inf`` and numbers too large for a float stop the import
with a ``ValueError`` naming the file, column and row. Without the ``columns`` parameter
the kind is inferred per column:

* ``steer`` or ``direction`` with LEFT/NEUTRAL/RIGHT (any case) -> categorical label ``steer``
* numbers that are all 0/1                                      -> binary
* other numbers                                                  -> continuous
* other text -> categorical only with a class list in ``classes``; otherwise a ``ValueError``
  "unknown action name" naming the file, column, row and value.

``columns={"throttle": "continuous", "jump": "binary", "weapon": "categorical"}`` instead
picks the columns and their kinds (``"steer"`` as a kind means LEFT/NEUTRAL/RIGHT). The
labels depend on the file, so the full schema comes from :func:`label_schema`; ``SCHEMA``
lists the labels every import has (``steer``, unlabeled where the CSV has no direction).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from ...core.errors import ConfigError, DataError
from ..episode import Episode
from ..schema import KINDS, STEER_CLASSES, LabelSchema, LabelSpec
from ..video import read_labeled_video
from ._files import paired_files

FRAME_RATE = 30.0  # nominal; the video's own rate is whatever it was recorded at

STEER_SPEC = LabelSpec("steer", "categorical", STEER_CLASSES, "horizontal direction of the input")
SCHEMA = LabelSchema.from_list([STEER_SPEC])
STEER_COLUMNS = ("steer", "direction")
NOT_LABELS = {"frame", "frame_id", "frame_index", "frames", "step", "episode", "time", "timestamp", "game"}
MISSING = ("", "null", "NULL", "Null")  # the explicit missing-value markers
NAN_TOKEN = r"[+-]?nan"  # what float() reads as NaN, in any case

Classes = Mapping[str, Sequence[str]] | Sequence[str] | None


def label_schema(
    path: str | Path, columns: Mapping[str, str] | None = None, classes: Classes = None, **params
) -> LabelSchema:
    """All labels ``read(path, ...)`` produces: ``steer`` plus one per label column.

    Reads (and validates) the CSV of every recording; the recordings must agree on kinds.
    """
    specs = {"steer": STEER_SPEC}
    for _, csv_path in paired_files(path, ".mp4", ".csv"):
        for column, spec in _plan(_load_csv(csv_path), csv_path, columns, classes).items():
            if specs.setdefault(spec.name, spec) != spec:
                raise DataError(
                    f"{csv_path}: column {column!r} reads as {spec.kind} here but as"
                    f" {specs[spec.name].kind} in an earlier file; set its kind with columns="
                )
    return LabelSchema.from_list(list(specs.values()))


def read(
    path: str | Path,
    game: str | None = None,
    columns: Mapping[str, str] | None = None,
    classes: Classes = None,
    frame_step: int = 1,
    max_frames: int | None = None,
) -> Iterator[Episode]:
    """Yield one episode per recording (``path`` = its .mp4 or .csv, or a folder of them).

    ``game`` defaults to the folder name; ``frame_step``/``max_frames`` subsample each video.
    A CSV whose row count differs from the video's frame count raises ``ValueError``.
    """
    label_schema(path, columns=columns, classes=classes)  # validates every CSV before decoding any video
    for episode, (mp4, csv_path) in enumerate(paired_files(path, ".mp4", ".csv")):
        df = _load_csv(csv_path)
        frames, keep = read_labeled_video(mp4, csv_path, len(df), "rows", frame_step, max_frames)
        labels = {
            spec.name: _encode(df[column], spec, column, csv_path)[keep]
            for column, spec in _plan(df, csv_path, columns, classes).items()
        }
        yield Episode(game or mp4.parent.resolve().name, episode, frames, labels,
                      step=keep.astype(np.int32), source=str(mp4))  # fmt: skip


def _load_csv(csv_path: Path) -> pd.DataFrame:
    """The CSV as stripped strings, so kinds are decided here rather than by pandas' guessing."""
    try:
        df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{csv_path}: cannot parse as CSV with a header: {exc}") from None
    return df.apply(lambda s: s.str.strip())


def _classes_for(column: str, classes: Classes) -> tuple[str, ...] | None:
    if classes is None:
        return None
    if isinstance(classes, Mapping):
        return tuple(classes[column]) if column in classes else None
    return tuple(classes)


def _plan(
    df: pd.DataFrame, csv_path: Path, columns: Mapping[str, str] | None, classes: Classes
) -> dict[str, LabelSpec]:
    """Column -> label spec, from ``columns`` or inferred; every column's values are validated."""
    if columns is not None:
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise DataError(f"{csv_path}: columns {missing} not in the CSV header {list(df.columns)}")
        chosen = dict(columns)
    else:
        chosen = {c: _infer_kind(df[c], c, classes, csv_path) for c in df.columns if c.lower() not in NOT_LABELS}
    plan = {}
    for column, kind in chosen.items():
        if kind == "steer":
            spec = STEER_SPEC
        elif kind == "categorical":
            names = _classes_for(column, classes)
            if names is None:
                raise ConfigError(f"{csv_path}: column {column!r} is categorical but classes= has no list for it")
            spec = LabelSpec(column, "categorical", names, f"CSV column {column!r}")
        elif kind in KINDS:
            spec = LabelSpec(column, kind, description=f"CSV column {column!r}")
        else:
            raise ConfigError(f"{csv_path}: column {column!r}: unknown kind {kind!r}; expected {[*KINDS, 'steer']}")
        _encode(df[column], spec, column, csv_path)  # validate now: errors name the file, column and row
        plan[column] = spec
    return plan


def _bad_cell(values: pd.Series, bad: np.ndarray, column: str, csv_path: Path, problem: str, hint: str = ""):
    """A ``ValueError`` naming the first ``bad`` cell: file, value, column, row (= frame) and CSV line."""
    i = int(np.flatnonzero(bad)[0])
    return ValueError(f"{csv_path}: {problem} {values.iloc[i]!r} in column {column!r} at row {i} (line {i + 2}){hint}")


def _check_finite(values: pd.Series, column: str, csv_path: Path) -> None:
    """Refuse NaN and ±inf cells: an unlabeled frame is an explicit empty cell or ``null``."""
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = values.str.fullmatch(NAN_TOKEN, case=False).to_numpy(dtype=bool) | np.isinf(numbers)
    if bad.any():
        raise _bad_cell(values, bad, column, csv_path, "non-finite value", " (NaN and inf are not labels;"
                        " leave the cell empty or write null for an unlabeled frame)")


def _infer_kind(values: pd.Series, column: str, classes: Classes, csv_path: Path) -> str:
    if column.lower() in STEER_COLUMNS:
        return "steer"
    _check_finite(values, column, csv_path)
    missing = values.isin(MISSING).to_numpy()
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if not (text := np.isnan(numbers) & ~missing).any():
        return "binary" if np.isin(numbers[~missing], (0, 1)).all() else "continuous"
    if _classes_for(column, classes) is None:
        raise _bad_cell(values, text, column, csv_path, "unknown action name",
                        ": text columns other than steer/direction (LEFT/NEUTRAL/RIGHT) need"
                        f" their class list, e.g. classes={{{column!r}: [...]}}")  # fmt: skip
    return "categorical"


def _encode(values: pd.Series, spec: LabelSpec, column: str, csv_path: Path) -> np.ndarray:
    """One column as label codes (int8, -1 unlabeled) or floats (NaN unlabeled)."""
    missing = values.isin(MISSING).to_numpy()

    def fail(bad: np.ndarray, problem: str, hint: str = ""):
        raise _bad_cell(values, bad, column, csv_path, problem, hint)

    if spec.kind == "categorical":
        text = values.str.upper() if spec == STEER_SPEC else values  # steer names in any case
        codes = text.map({c: k for k, c in enumerate(spec.classes)}).to_numpy(dtype=np.float64, na_value=np.nan)
        if (bad := np.isnan(codes) & ~missing).any():
            fail(bad, "unknown action name", f"; known: {list(spec.classes)}")
        return np.where(missing, -1, np.nan_to_num(codes, nan=-1)).astype(np.int8)
    _check_finite(values, column, csv_path)
    numbers = pd.to_numeric(values.mask(missing), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if (bad := np.isnan(numbers) & ~missing).any():
        fail(bad, "non-numeric value", f" of a {spec.kind} label")
    if spec.kind == "binary":
        if (bad := ~np.isin(numbers, (0, 1)) & ~missing).any():
            fail(bad, "value", " is not 0 or 1 (binary label)")
        return np.where(missing, -1, numbers).astype(np.int8)
    return numbers.astype(np.float32)
