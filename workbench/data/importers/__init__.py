"""Importers for public gameplay datasets in their native formats.

Each importer module defines ``SCHEMA`` (its :class:`~workbench.data.schema.LabelSchema`),
``FRAME_RATE`` (Hz) and ``read(path, **params) -> Iterator[Episode]``. Readers validate as they
go and raise ``ValueError``s naming the file and the problem; the store
writer is atomic, so a failure part-way writes nothing.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ...core.errors import ConfigError

FORMATS = {
    "atari_head": "Atari-HEAD trials (<trial>.tar.bz2 of PNGs + <trial>.txt CSV)",
    "vpt": "VPT contractor data (<name>.mp4 + <name>.jsonl)",
    "csgo": "CS:GO deathmatch HDF5 (frame_{i}_x / frame_{i}_y)",
    "minari": "Minari HDF5 datasets (episode_{id} groups)",
    "video_csv": "generic <name>.mp4 + <name>.csv of per-frame inputs",
}


def get_importer(fmt: str) -> ModuleType:
    """The importer module for ``fmt``; a clear error lists the known formats."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown import format {fmt!r}; known formats: {', '.join(FORMATS)}")
    return importlib.import_module(f"{__name__}.{fmt}")
