"""Where the workbench keeps things: the built-in catalog, the data cache, the model library.

Every location can be moved with an environment variable so a team can point a shared
install at a shared disk:

* ``WORKBENCH_CACHE``   materialised datasets (zarr stores); default ``~/.cache/workbench``
* ``WORKBENCH_CATALOG`` extra catalog entries (imports you add); default ``<cache>/catalog``
* ``WORKBENCH_IMPORT_ROOT`` the folder importer paths in catalog entries are resolved
  against, and may not escape; default the current directory
* ``WORKBENCH_MODELS``  the model library; default ``models/`` of the source checkout
* ``WORKBENCH_STUDIES`` study folders (records, tables, reports); default ``<cache>/studies``
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

from .errors import ConfigError

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # workbench/
REPO_ROOT = PACKAGE_ROOT.parent
BUILTIN_CATALOG = REPO_ROOT / "data_catalog"

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def cache_dir() -> Path:
    """Root of materialised data (created on first use)."""
    return Path(os.environ.get("WORKBENCH_CACHE", Path.home() / ".cache" / "workbench")).expanduser()


def user_catalog_dir() -> Path:
    """Folder of user-added catalog entries (e.g. written by ``workbench import``)."""
    env = os.environ.get("WORKBENCH_CATALOG")
    return Path(env).expanduser() if env else cache_dir() / "catalog"


def import_root() -> Path:
    """Folder that importer paths are resolved against; they may not escape it."""
    return Path(os.environ.get("WORKBENCH_IMPORT_ROOT", Path.cwd())).expanduser().resolve()


def models_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_MODELS", REPO_ROOT / "models")).expanduser()


def studies_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_STUDIES", cache_dir() / "studies")).expanduser()


def check_id(value: str, what: str = "id") -> str:
    """Reject ids that could not be used safely as one path component."""
    if not isinstance(value, str) or not _SAFE_ID.match(value) or value in {".", ".."}:
        raise ConfigError(
            f"invalid {what} {value!r}: use letters, digits, '_', '-', '.' (not starting with '.'),"
            " at most 100 characters"
        )
    return value


def resolve_under(root: Path, relative: str | os.PathLike) -> Path:
    """Resolve ``relative`` inside ``root``; raise if the result would escape ``root``.

    Absolute paths are accepted only if they already lie inside ``root``; ``..`` and symlinks
    are resolved before the check, so neither can be used to reach outside.
    """
    root = Path(root).resolve()
    candidate = (root / Path(relative)).resolve()
    if candidate != root and root not in candidate.parents:
        raise ConfigError(f"path {str(relative)!r} escapes its root {root}")
    return candidate


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp)`` on a temporary sibling of ``path``, then move it onto ``path``
    (``os.replace``): readers never see a half-written file; a failure removes the temporary."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # ends in the final name, so a crash's leftover is still covered by ignore rules such as *.pt;
    # created like any new file (0666 less the umask), not mkstemp's 0600, so a shared disk can read it
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:10]}-{path.name}")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` with :func:`atomic_write`."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
