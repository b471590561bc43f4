"""Code version and library versions recorded with every dataset, flow store and model card."""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata

from .paths import REPO_ROOT


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus the git commit (``+dirty`` when the tree has changes), if in a checkout."""
    from .. import __version__

    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        return f"{__version__}+g{commit}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return __version__


def versions(*packages: str) -> dict[str, str]:
    """Installed versions of ``packages`` (missing ones are reported as ``"absent"``)."""
    out = {}
    for name in ("numpy", "xarray", "zarr", *packages):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
