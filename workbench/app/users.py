"""The dashboard's users file: login names and salted password hashes, never the passwords.

A JSON object ``{"ana": "pbkdf2_sha256$600000$<salt hex>$<hash hex>"}`` written by
``workbench users add NAME --file users.json`` and read by ``workbench serve --basic-auth users.json``.
Hashes are PBKDF2-HMAC-SHA256 (:func:`hashlib.pbkdf2_hmac`) with a 16-byte random salt; checks use
:func:`hmac.compare_digest`. A plain-text password (Panel's own ``{"user": "password"}`` format)
is refused with the command that replaces it by a hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import threading
from pathlib import Path

from ..core.errors import ConfigError, WorkbenchError
from ..core.paths import atomic_write

SCHEME = "pbkdf2_sha256"
#: PBKDF2-HMAC-SHA256 rounds for new hashes (OWASP's 2023 recommendation); fewer than
#: :data:`MIN_ITERATIONS` are refused as too cheap to guess.
ITERATIONS = 600_000
MIN_ITERATIONS = 100_000
#: Shortest password accepted for a user or as the shared password (characters).
MIN_PASSWORD = 8
log = logging.getLogger(__name__)


class UsersFileError(WorkbenchError, ValueError):
    """The users file is missing, unreadable or malformed; the message names the file and the fix."""


def hash_password(password: str, iterations: int = ITERATIONS) -> str:
    """``pbkdf2_sha256$<iterations>$<salt hex>$<hash hex>`` of ``password`` with a fresh salt."""
    check_password(password)
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{SCHEME}${iterations}${salt.hex()}${digest.hex()}"


def check_password(password: str, what: str = "password") -> None:
    """Refuse a password shorter than :data:`MIN_PASSWORD` characters."""
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"{what} must have at least {MIN_PASSWORD} characters")


def _parse(encoded: str) -> tuple[int, bytes, bytes]:
    """(iterations, salt, digest) of a stored hash; ValueError when it is not one."""
    scheme, iterations, salt, digest = encoded.split("$")
    if scheme != SCHEME or not iterations.isdigit() or not salt or len(digest) != 64:
        raise ValueError(encoded)
    return int(iterations), bytes.fromhex(salt), bytes.fromhex(digest)


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` hashes to the stored ``encoded`` hash (constant-time comparison)."""
    iterations, salt, digest = _parse(encoded)
    return hmac.compare_digest(hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations), digest)


def read_users(path: str | os.PathLike) -> dict[str, str]:
    """The users file as it is (values unchecked): a JSON object of strings, or {} when it does not exist."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        users = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UsersFileError(f"cannot read users file {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise UsersFileError(f"users file {path} is not valid JSON ({exc})") from None
    if not isinstance(users, dict) or not all(isinstance(v, str) for v in users.values()):
        raise UsersFileError(f'users file {path} must be a JSON object {{"name": "<hash>"}} of strings')
    return users


def load_users(path: str | os.PathLike) -> dict[str, str]:
    """The users file checked for serving: at least one user, every name non-empty and every value a
    hash of :func:`hash_password` (empty or plain-text passwords refused)."""
    path = Path(path)
    if not path.is_file():
        raise UsersFileError(f"users file {path} does not exist; create it with `workbench users add NAME --file "
                             f"{path}` (--basic-auth takes a file; a shared password comes only from the environment,"
                             " WORKBENCH_PASSWORD)")
    users = read_users(path)
    if not users:
        raise UsersFileError(f"users file {path} has no users; add one with `workbench users add NAME --file {path}`")
    for name, encoded in users.items():
        check_name(name, f"users file {path}: ")
        if not encoded:
            raise UsersFileError(f"users file {path}: user {name!r} has an empty password; set one with "
                                 f"`workbench users add {name} --file {path}`")
        try:
            iterations = _parse(encoded)[0]
        except ValueError:
            raise UsersFileError(f"users file {path}: user {name!r} has a plain-text or malformed password; "
                                 f"replace it by a hash with `workbench users add {name} --file {path}`") from None
        if iterations < MIN_ITERATIONS:
            raise UsersFileError(f"users file {path}: user {name!r} has a hash of {iterations} rounds (at least "
                                 f"{MIN_ITERATIONS}); set the password again with `workbench users add {name}"
                                 f" --file {path}`")
    return users


def check_name(name: str, where: str = "") -> None:
    """Refuse empty names and names with spaces or control characters (they cannot be typed at the login)."""
    if not name or not name.isprintable() or any(c.isspace() for c in name):
        raise UsersFileError(f"{where}user name {name!r} must be non-empty, without spaces or control characters")


def _write(path: Path, users: dict[str, str]) -> None:
    """Write the users file atomically, readable by its owner only."""
    def write(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(users, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o600)

    atomic_write(path, write)


def add_user(path: str | os.PathLike, name: str, password: str, iterations: int = ITERATIONS) -> bool:
    """Store ``name`` with the hash of ``password`` (replacing an older one); True when the name is new.
    Other entries are kept as they are, so a plain-text file can be converted one user at a time."""
    path = Path(path)
    check_name(name)
    users = read_users(path)
    new = name not in users
    users[name] = hash_password(password, iterations)
    _write(path, users)
    return new


def remove_user(path: str | os.PathLike, name: str) -> None:
    """Delete ``name`` from the users file."""
    path = Path(path)
    users = read_users(path)
    if name not in users:
        raise UsersFileError(f"users file {path} has no user {name!r}")
    del users[name]
    _write(path, users)


class UsersFileLogin:
    """Checks a login against a users file, re-read when it changes: users can be added without a
    restart, and a change that breaks the file refuses every login (logged) until it is fixed."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path).resolve()
        self._users = load_users(self.path)
        self._mtime = self.path.stat().st_mtime_ns
        self._dummy = hash_password(secrets.token_hex(8))  # unknown names cost as much as known ones
        self._lock = threading.Lock()

    def _current(self) -> dict[str, str]:
        with self._lock:
            mtime = self.path.stat().st_mtime_ns
            if mtime != self._mtime:
                self._users, self._mtime = load_users(self.path), mtime
            return self._users

    def check(self, name: str, password: str) -> bool:
        try:
            users = self._current()
        except (OSError, UsersFileError) as exc:
            log.error("refusing logins until the users file is fixed: %s", exc)
            return False
        encoded = users.get(name)
        return verify_password(password, encoded or self._dummy) and encoded is not None


class SharedPassword:
    """One password for everybody (from the environment); any non-empty user name, which is shown
    and logged but not checked."""

    def __init__(self, password: str, source: str):
        check_password(password, source)
        self._password = password.encode()

    def check(self, name: str, password: str) -> bool:
        return bool(name) and hmac.compare_digest(password.encode(), self._password)
