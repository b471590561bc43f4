"""Frame selections exported from the dashboard, and how a notebook reads them back.

The dashboard's "Export selection" button writes the selected frames (frame ids, game, episode,
step, the true labels, the projection coordinates and where the frames live) to
``<cache>/exports/<name>.csv``. In a notebook::

    from workbench.app.exports import list_selections, load_selection

    list_selections()                   # names, newest first
    sel = load_selection("left-turns")  # DataFrame, one row per frame
    ds = open_dataset(sel.store[0])     # the frames themselves: ds.frames.isel(frame=sel.frame)

Names are single path components (letters, digits, ``_``, ``-``, ``.``), so an export can never
be written outside the exports folder.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..core.paths import atomic_write, cache_dir, check_id


def exports_dir() -> Path:
    """``<cache>/exports``: where exported selections live (not created)."""
    return cache_dir() / "exports"


def export_path(name: str) -> Path:
    return exports_dir() / f"{check_id(name, 'selection name')}.csv"


def export_selection(table: pd.DataFrame, name: str) -> Path:
    """Write ``table`` (one row per frame) as the selection ``name``, atomically; returns its path.

    An existing selection of that name is replaced.
    """
    return atomic_write(export_path(name), lambda tmp: table.to_csv(tmp, index=False))


def list_selections() -> list[str]:
    """Names of the exported selections, newest first."""
    folder = exports_dir()
    if not folder.is_dir():
        return []
    files = sorted((p for p in folder.glob("*.csv") if not p.name.startswith(".")), key=lambda p: p.stat().st_mtime, reverse=True)
    return [p.stem for p in files]


def load_selection(name: str) -> pd.DataFrame:
    """The selection exported from the dashboard under ``name``, one row per frame.

    Columns: ``study``, ``domain``, ``dataset``, ``store`` (the zarr store of the frames),
    ``projection``, ``x``, ``y``, ``action`` (the label the projection was coloured by),
    ``split``, then from the dataset ``frame`` (index into the store), ``game``, ``episode``,
    ``step`` and every per-frame label (class names for categorical labels).
    """
    path = export_path(name)
    if not path.is_file():
        known = ", ".join(list_selections()) or "none"
        raise FileNotFoundError(f"no exported selection {name!r} in {exports_dir()} (exported: {known})")
    return pd.read_csv(path)
