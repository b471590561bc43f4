"""Every file the workbench writes goes through the one atomic writer (``core.paths.atomic_write``)."""

from __future__ import annotations

import pytest

import workbench.core.paths as paths
from workbench.core.paths import atomic_write_text
from workbench.methods.idm.config import make_config


def _fail_replace(monkeypatch):
    def replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(paths.os, "replace", replace)


def test_atomic_write_text_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = atomic_write_text(tmp_path / "a" / "note.md", "old ü\n")
    assert path.read_text(encoding="utf-8") == "old ü\n"
    _fail_replace(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new")
    assert path.read_text(encoding="utf-8") == "old ü\n" and [p.name for p in path.parent.iterdir()] == ["note.md"]


def test_a_saved_config_is_written_atomically(tmp_path, monkeypatch):
    """Before: ``ConfigIO.save`` wrote in place, so a failed save left a half-written config."""
    path = make_config("joint_v1", datasets=["racing"]).save(tmp_path / "configs" / "train.yaml")
    before = path.read_text()
    _fail_replace(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        make_config("joint_v1", datasets=["racing"], steps=7).save(path)
    assert path.read_text() == before and [p.name for p in path.parent.iterdir()] == ["train.yaml"]
