"""Dataset stores as the frames package sees them: a :class:`Source` names one store, its frame
count and zarr chunk length; :func:`resolve_source` turns a catalog id or a store path into one;
:class:`DataFields` are the fields of a training config that name its data and split."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import xarray as xr
import zarr

from ..data.store import StoreError, is_complete, open_dataset, open_store


@dataclass(frozen=True)
class Source:
    """One dataset store: where it is, what it is called, and its frame/chunk counts."""

    dataset_id: str
    variant: str
    path: Path
    n_frames: int
    chunk: int  # frames per zarr chunk of ``frames``

    def open(self) -> xr.Dataset:
        """The lazy dataset, merged with its derived (flow) stores."""
        return open_dataset(self.path)


@dataclass
class DataFields:
    """The data a model trains on: catalog ids (at ``size``/``data_seed``) or store paths, an
    optional subset of games, and the leakage-free block split (see :mod:`.split`)."""

    datasets: list[str] | None = None
    size: str | None = None
    data_seed: int | None = None
    games: list[str] | None = None
    split_fractions: list[float] = field(default_factory=lambda: [0.7, 0.1, 0.2])
    split_block: int = 64
    split_seed: int = 0


def resolve_source(ref: str | Path, size: str | None = None, seed: int | None = None) -> Source:
    """A catalog id (materialised at ``size``/``seed``) or the path of a dataset store."""
    path = Path(ref)
    if not (path.suffix == ".zarr" and path.exists()):
        from ..data.catalog import get_entry

        entry = get_entry(str(ref))
        path = entry.store_path(size, seed)
        if not is_complete(path):
            raise StoreError(f"dataset {ref!r} ({entry.variant(size, seed)}) is not materialised; run"
                             f" `workbench record {ref}` or workbench.data.catalog.materialise first")
    attrs = open_store(path).attrs
    frames = zarr.open_group(str(path), mode="r", zarr_format=2)["frames"]
    return Source(dataset_id=str(attrs.get("dataset_id", path.parent.name)), variant=str(attrs.get("variant", "store")),
                  path=path.resolve(), n_frames=int(frames.shape[0]), chunk=int(frames.chunks[0]))
