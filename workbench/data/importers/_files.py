"""Finding an importer's input files: one file, or every matching file in a folder.

While :func:`confined_to` is in force (the catalog imports under it), every file found or
opened here must lie inside the import root once symlinks are followed, so a link inside an
allowed folder cannot read a file outside it.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

from ...core.errors import ConfigError, DataError
from ...core.paths import resolve_under

_ROOT: ContextVar[Path | None] = ContextVar("import_root", default=None)


@contextmanager
def confined_to(root: Path) -> Iterator[None]:
    """Within the block, :func:`checked` refuses files that resolve outside ``root``."""
    token = _ROOT.set(Path(root).resolve())
    try:
        yield
    finally:
        _ROOT.reset(token)


def checked(path: Path) -> Path:
    """``path`` unchanged, after checking that it (symlinks followed) stays inside the import root."""
    root = _ROOT.get()
    if root is not None:
        try:
            resolve_under(root, path)
        except ValueError:
            raise ConfigError(
                f"{path}: resolves to {Path(path).resolve()}, outside the import root {root}"
                " (a symlink may not lead out of it)"
            ) from None
    return path


def natural_key(path: Path) -> list:
    """Sort key that orders ``x_2`` before ``x_10`` (datasets number their files)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")


def data_files(path: str | Path, suffixes: tuple[str, ...]) -> list[Path]:
    """``path`` itself, or the files in folder ``path`` ending in one of ``suffixes``, sorted."""
    path = Path(path)
    _check_exists(path)
    if path.is_file():
        if not path.name.endswith(suffixes):
            raise DataError(f"{path}: expected a file ending in {' or '.join(suffixes)}")
        return [checked(path)]
    files = sorted((p for p in path.iterdir() if p.is_file() and p.name.endswith(suffixes)), key=natural_key)
    if not files:
        raise DataError(f"{path}: no {' or '.join('*' + s for s in suffixes)} files in this folder")
    return [checked(p) for p in files]


def paired_files(path: str | Path, main: str, partner: str) -> list[tuple[Path, Path]]:
    """``(<name><main>, <name><partner>)`` pairs, e.g. a video and its per-frame actions.

    ``path`` is either file of one pair or a folder, in which every ``*<main>`` file must have
    its partner; a missing partner is a ``ValueError`` naming it.
    """
    path = Path(path)
    _check_exists(path)
    if path.is_file():
        for suffix in (main, partner):
            if path.name.endswith(suffix):
                base = path.with_name(path.name[: -len(suffix)])
                break
        else:
            raise DataError(f"{path}: expected a {main} or {partner} file")
        bases = [base]
    else:
        bases = [p.with_name(p.name[: -len(main)]) for p in data_files(path, (main,))]
    pairs = []
    for base in bases:
        a, b = base.with_name(base.name + main), base.with_name(base.name + partner)
        for f in (a, b):
            if not f.is_file():
                raise DataError(f"{f}: file missing (every {main} needs its {partner} next to it)")
            checked(f)
        pairs.append((a, b))
    return pairs
