"""One writer at a time: a lock file per dataset variant and per model id, shared by processes.

A lock is a small JSON file (owner pid, host, process start time, since when, command) created
with ``O_CREAT | O_EXCL``, so of two processes exactly one creates it. A second writer stops at
once with a :class:`LockError` naming the holder and the lock file. A lock left by a process that
no longer runs on this host (its pid is gone, or now belongs to a younger process) is stale and
taken over; a lock from another host cannot be checked and stays until it is released or removed.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Iterator

import psutil

from .errors import WorkbenchError
from .provenance import now_utc

#: Name of a dataset variant's lock file, beside its stores.
STORE_LOCK = "write.lock"
#: Seconds after which a lock file without readable content is stale: its creator writes the
#: content right after creating the file, so it died in between.
UNREADABLE_STALE_S = 10.0


class LockError(WorkbenchError, RuntimeError):
    """Another process is writing the same dataset variant or model."""


def _owner() -> dict:
    me = psutil.Process()
    return {"pid": me.pid, "host": socket.gethostname(), "started": me.create_time(), "since": now_utc(),
            "command": " ".join(sys.argv)[:300], "token": uuid.uuid4().hex}


def _create(path: Path, text: str) -> bool:
    """Create ``path`` holding ``text`` unless it exists (atomic test-and-create)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return True


def _read(path: Path) -> tuple[str, dict | None] | None:
    """``(text, owner)`` of a lock file (owner None when unreadable); None when there is none."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        owner = json.loads(text)
        return text, owner if isinstance(owner, dict) and isinstance(owner.get("pid"), int) else None
    except ValueError:
        return text, None


def _alive(owner: dict) -> bool:
    """False only when the owner provably no longer runs: same host, and its pid is gone or now
    belongs to a process started after the lock's owner."""
    if owner.get("host") != socket.gethostname():
        return True
    try:
        started = psutil.Process(owner["pid"]).create_time()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    return not isinstance(owner.get("started"), (int, float)) or abs(started - owner["started"]) < 1.0


def _take_over(path: Path, stale: str) -> None:
    """Remove the stale lock ``path`` if it still holds ``stale``; a fresh lock that another
    process created in the meantime is put back."""
    aside = path.with_name(f"{path.name}.stale-{uuid.uuid4().hex[:10]}")
    try:
        os.replace(path, aside)
    except FileNotFoundError:
        return
    moved = aside.read_text()
    if moved != stale:
        _create(path, moved)
    aside.unlink()


def acquire(path: str | os.PathLike, what: str) -> str:
    """Create the lock file ``path`` for ``what`` (e.g. ``model 'x'``); returns its content.

    Raises :class:`LockError` (one line: holder pid, host, since when, the lock path) when a live
    process holds it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_owner())
    while not _create(path, text):
        found = _read(path)
        if found is None:
            continue  # released between our two calls
        held, owner = found
        if owner is None:
            try:
                young = time.time() - path.stat().st_mtime < UNREADABLE_STALE_S
            except FileNotFoundError:
                continue
            if young:
                raise LockError(f"{what} is being locked by another process (lock file {path})")
        elif _alive(owner):
            raise LockError(f"{what} is in use by pid {owner['pid']} on {owner.get('host')} since"
                            f" {owner.get('since')} (lock file {path}); wait for it to finish, or delete the"
                            " lock file if that process no longer runs")
        _take_over(path, held)
    return text


def release(path: str | os.PathLike, text: str) -> None:
    """Remove the lock file ``path`` if it is still the one :func:`acquire` returned ``text`` for."""
    found = _read(Path(path))
    if found is not None and found[0] == text:
        Path(path).unlink(missing_ok=True)


@contextmanager
def hold(path: str | os.PathLike, what: str) -> Iterator[Path]:
    """Hold the lock file ``path`` for the duration of the block (see :func:`acquire`)."""
    text = acquire(path, what)
    try:
        yield Path(path)
    finally:
        release(path, text)


def store_lock(folder: str | os.PathLike) -> AbstractContextManager[Path]:
    """The lock of one dataset variant folder (its frames store and derived stores)."""
    return hold(Path(folder) / STORE_LOCK, f"dataset folder {folder}")
