"""Zarr stores of recorded/imported gameplay, written atomically and read lazily.

Layout of one dataset store (an ``xarray.Dataset`` in zarr format 2, consolidated)::

    frames   uint8   (frame, y, x, rgb)   chunked along ``frame``
    <label>  int8 / float32 (frame)       one variable per label of the schema
                                          (a ``bytes`` label, e.g. RAM: uint8 (frame, <label>_byte))
    game     str     (frame)  coordinate  which game/world the frame comes from
    episode  int32   (frame)  coordinate  episode index within its game
    step     int32   (frame)  coordinate  step within its episode

Writers stream into ``<path>.tmp-<random>`` and rename to ``<path>`` only after the last
byte and the metadata are on disk, so a crashed or interrupted write never leaves something
that looks like a finished store. Derived results (optical flow) live in sibling stores that
``open_dataset`` merges on the ``frame`` dimension.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import xarray as xr
import zarr

from ..core.errors import DataError, WorkbenchError
from ..core.paths import cache_dir, check_id
from ..core.provenance import code_version, now_utc
from .schema import LabelSchema

FRAME_CHUNK = 64  # frames per zarr chunk: ~1.7 MB at 96x96 RGB, a good streaming unit
COORD_CHUNK = 8192
FORMAT_VERSION = 1


class StoreError(WorkbenchError, RuntimeError):
    """A store is missing, incomplete or not a workbench store."""


def dataset_dir(dataset_id: str, variant: str) -> Path:
    """Folder of one materialised dataset variant (e.g. ``racing`` / ``demo-seed0``)."""
    return cache_dir() / "datasets" / check_id(dataset_id, "dataset id") / check_id(variant, "variant")


def frames_path(dataset_id: str, variant: str) -> Path:
    return dataset_dir(dataset_id, variant) / "frames.zarr"


def is_complete(path: Path) -> bool:
    """True when ``path`` is a finished store (renamed into place, metadata consolidated)."""
    path = Path(path)
    if not (path / ".zmetadata").is_file():
        return False
    try:
        meta = json.loads((path / ".zmetadata").read_text())
        return bool(meta["metadata"][".zattrs"].get("workbench_complete"))
    except (OSError, ValueError, KeyError):
        return False


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex[:10]}")


def _replace_dir(tmp: Path, final: Path) -> None:
    """Move a finished ``tmp`` store onto ``final``, keeping the old one until the move is done."""
    old = None
    if final.exists():
        old = final.with_name(f"{final.name}.old-{uuid.uuid4().hex[:10]}")
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def clean_stale_tmp(folder: Path) -> list[Path]:
    """Remove leftovers of interrupted writes (``*.tmp-*`` / ``*.old-*``) under ``folder``."""
    removed = []
    for p in Path(folder).glob("*.zarr.*-*"):
        if ".tmp-" in p.name or ".old-" in p.name:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def finish_store(tmp: Path, final: Path, attrs: Mapping) -> Path:
    """Stamp provenance attrs, consolidate metadata and atomically rename ``tmp`` to ``final``."""
    group = zarr.open_group(str(tmp), mode="r+", zarr_format=2)
    group.attrs.update({**attrs, "workbench_complete": True, "format_version": FORMAT_VERSION})
    zarr.consolidate_metadata(str(tmp), zarr_format=2)
    final.parent.mkdir(parents=True, exist_ok=True)
    _replace_dir(tmp, final)
    return final


def write_dataset_atomic(ds: xr.Dataset, final: Path, attrs: Mapping, encoding: Mapping | None = None) -> Path:
    """Write a small, already-computed dataset (e.g. flow statistics) atomically."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(final)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            ds.to_zarr(str(tmp), mode="w-", zarr_format=2, consolidated=False, encoding=encoding or {})
        return finish_store(tmp, final, attrs)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


class StoreWriter:
    """Stream frames and labels into a new store; atomic on success, nothing left on failure.

    Use as a context manager::

        with StoreWriter(path, schema, games=["Enduro"], frame_shape=(96, 96), attrs={...}) as w:
            w.append(frames, game="Enduro", episode=0, step=np.arange(n), labels={"steer": codes})

    ``frames`` are uint8 ``(n, y, x, 3)``; every label array has length ``n``. Labels missing
    from ``labels`` are stored as unlabeled.
    """

    def __init__(
        self,
        path: Path,
        schema: LabelSchema,
        games: Sequence[str],
        frame_shape: tuple[int, int],
        attrs: Mapping | None = None,
        flush_frames: int = FRAME_CHUNK * 4,
    ):
        self.path = Path(path)
        self.schema = schema
        self.games = list(games)
        if not self.games:
            raise DataError("a store needs at least one game name")
        self.frame_shape = tuple(int(v) for v in frame_shape)
        self.attrs = dict(attrs or {})
        self.flush_frames = flush_frames
        self._tmp: Path | None = None
        self._buf: list[xr.Dataset] = []
        self._buffered = 0
        self.n_frames = 0
        self._game_dtype = f"<U{max(len(g) for g in self.games)}"

    def __enter__(self) -> "StoreWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = _tmp_sibling(self.path)
        return self

    def append(
        self,
        frames: np.ndarray,
        game: str,
        episode: int | np.ndarray,
        step: np.ndarray,
        labels: Mapping[str, np.ndarray] | None = None,
        source: str = "input",
    ) -> None:
        """Buffer ``n`` frames with their coordinates and labels; validates everything first."""
        if self._tmp is None:
            raise RuntimeError("use StoreWriter as a context manager")
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[1:] != (*self.frame_shape, 3):
            raise DataError(
                f"{source}: frames have shape {frames.shape}; expected (n, {self.frame_shape[0]},"
                f" {self.frame_shape[1]}, 3)"
            )
        if frames.dtype != np.uint8:
            raise DataError(f"{source}: frames must be uint8, got {frames.dtype}")
        n = len(frames)
        if game not in self.games:
            raise DataError(f"{source}: unknown game {game!r}; this store holds {self.games}")
        step = np.asarray(step)
        if step.shape != (n,):
            raise DataError(f"{source}: {n} frames but {step.shape[0] if step.ndim else 1} step values")
        labels = dict(labels or {})
        unknown = set(labels) - set(self.schema.names)
        if unknown:
            raise DataError(f"{source}: labels {sorted(unknown)} are not in the schema {self.schema.names}")
        data = self.schema.missing(n)
        for name, values in labels.items():
            values = np.asarray(values)
            if len(values) != n:
                raise DataError(
                    f"{source}: {n} frames but {len(values)} values for label {name!r}:"
                    " frames and labels must have the same length"
                )
            data[name] = self.schema[name].encode(values, source)
        variables = {"frames": (("frame", "y", "x", "rgb"), frames)}
        for spec in self.schema:
            variables[spec.name] = (spec.dims, data[spec.name], spec.to_dict())
        ds = xr.Dataset(
            variables,
            coords={
                "game": ("frame", np.full(n, game, dtype=self._game_dtype)),
                "episode": ("frame", np.broadcast_to(np.asarray(episode, np.int32), (n,)).copy()),
                "step": ("frame", step.astype(np.int32)),
            },
        )
        self._buf.append(ds)
        self._buffered += n
        if self._buffered >= self.flush_frames:
            self._flush()

    def _flush(self) -> None:
        if not self._buf:
            return
        ds = xr.concat(self._buf, dim="frame") if len(self._buf) > 1 else self._buf[0]
        self._buf, self._buffered = [], 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            if self.n_frames == 0:
                enc = {"frames": {"chunks": (FRAME_CHUNK, *self.frame_shape, 3)}}
                for name in [*self.schema.names, "game", "episode", "step"]:
                    enc[name] = {"chunks": (COORD_CHUNK,) + ds[name].shape[1:]}
                ds.to_zarr(str(self._tmp), mode="w-", zarr_format=2, consolidated=False, encoding=enc)
            else:
                ds.to_zarr(str(self._tmp), append_dim="frame", zarr_format=2, consolidated=False)
        self.n_frames += ds.sizes["frame"]

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self._flush()
                if self.n_frames == 0:
                    raise DataError(f"no frames were written to {self.path}")
                attrs = {
                    **self.attrs,
                    "games": self.games,
                    "label_schema": self.schema.to_list(),
                    "n_frames": self.n_frames,
                    "frame_shape": list(self.frame_shape),
                    "code_version": code_version(),
                    "created": now_utc(),
                }
                finish_store(self._tmp, self.path, json.loads(json.dumps(attrs)))
        finally:
            if self._tmp is not None and self._tmp.exists():
                shutil.rmtree(self._tmp, ignore_errors=True)


def open_store(path: Path) -> xr.Dataset:
    """Open one finished store lazily (dask arrays); refuse incomplete or foreign folders."""
    path = Path(path)
    if not path.exists():
        raise StoreError(f"no store at {path}")
    if not is_complete(path):
        raise StoreError(
            f"{path} is not a complete workbench store (an interrupted write?); delete it and"
            " materialise the dataset again"
        )
    return xr.open_zarr(str(path), consolidated=True, zarr_format=2)


def derived_path(frames_store: Path, kind: str) -> Path:
    """Sibling store for a derived result of ``frames_store`` (e.g. ``flow-farneback``)."""
    return Path(frames_store).parent / f"{check_id(kind, 'derived store name')}.zarr"


def open_dataset(frames_store: Path, derived: Sequence[str] | str | None = "all") -> xr.Dataset:
    """Open a dataset store merged with its derived sibling stores (flow statistics …).

    ``derived="all"`` merges every complete sibling, ``flow-farneback`` (the paper's method)
    first; a list names them in order of preference; ``None`` merges none. A variable present
    in more than one derived store (e.g. ``flow_dx`` from Farneback and DIS) comes from the
    first; ``ds.attrs["derived"]`` lists the stores merged.
    """
    ds = open_store(frames_store)
    folder = Path(frames_store).parent
    if derived == "all":
        names = sorted((p.stem for p in folder.glob("*.zarr") if p != Path(frames_store) and is_complete(p)),
                       key=lambda name: (name != "flow-farneback", name))
    elif derived is None:
        names = []
    else:
        names = [derived] if isinstance(derived, str) else list(derived)
    merged = []
    for name in names:
        extra = open_store(derived_path(frames_store, name))
        if extra.sizes.get("frame") != ds.sizes["frame"]:
            raise StoreError(f"derived store {name} has {extra.sizes.get('frame')} frames, dataset has {ds.sizes['frame']}")
        sub = extra[[v for v in extra.data_vars if v not in ds.variables]]
        sub = sub.drop_vars([c for c in sub.coords if c in ds.coords])  # game/episode/step: the dataset's own
        ds = ds.merge(sub, combine_attrs="drop_conflicts")
        merged.append(name)
    ds.attrs["derived"] = merged
    return ds
