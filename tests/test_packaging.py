"""The install reproduces the tested environment: every dependency is locked, and installed as locked."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    """Canonical distribution name of a PEP 508 requirement string (``dask[array]>=1`` -> ``dask``)."""
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _lock() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not pinned with =="
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_every_dependency_is_locked_except_torch():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]}
    pins = _lock()
    assert "torch" not in pins, "torch is installed first (CPU wheel or CUDA build), not from the lock"
    assert sorted(wanted - {"torch"} - set(pins)) == []


def test_installed_versions_match_the_lock():
    """`make setup` installs with ``-c requirements.lock``; a stale environment is reported here."""
    mismatched = []
    for name, version in _lock().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "nothing"
        if installed != version:
            mismatched.append(f"{name}: installed {installed}, locked {version}")
    if mismatched:
        pytest.fail("environment differs from requirements.lock (run `make setup`):\n" + "\n".join(mismatched))
