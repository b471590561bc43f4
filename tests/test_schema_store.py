"""Label encoding and the atomic zarr store: bad input is refused and nothing partial remains."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.data.schema import LabelSchema, LabelSpec, steer_from_sign
from workbench.data.store import StoreError, StoreWriter, is_complete, open_dataset, open_store
from workbench.core.paths import check_id, resolve_under

SCHEMA = LabelSchema.from_list([
    {"name": "steer", "kind": "categorical", "classes": ["LEFT", "NEUTRAL", "RIGHT"]},
    {"name": "accel", "kind": "binary"},
    {"name": "mouse_dx", "kind": "continuous"},
])


def _frames(n, size=(8, 8)):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, (n, *size, 3), dtype=np.uint8)


def test_encode_names_codes_and_unlabeled():
    spec = SCHEMA["steer"]
    assert spec.encode(["LEFT", "RIGHT", "null", "NEUTRAL"]).tolist() == [0, 2, -1, 1]
    assert spec.encode(np.array([0, 1, 2, -1])).tolist() == [0, 1, 2, -1]
    assert SCHEMA["accel"].encode([True, False]).tolist() == [1, 0]
    assert np.isnan(SCHEMA["mouse_dx"].encode([1.5, np.nan])[1])


@pytest.mark.parametrize("values, message", [
    (["LEFT", "JUMP"], "unknown action name 'JUMP'"),
    (np.array([0.0, np.nan]), "NaN at frame 1"),
    (np.array([0, 3]), "code 3 at frame 1"),
])
def test_encode_rejects_bad_labels(values, message):
    with pytest.raises(ValueError, match=message):
        SCHEMA["steer"].encode(values, source="trial.csv")


def test_spec_validation():
    with pytest.raises(ValueError, match="unknown kind"):
        LabelSpec("x", "ordinal")
    with pytest.raises(ValueError, match="duplicate"):
        LabelSchema.from_list([{"name": "a", "kind": "binary"}, {"name": "a", "kind": "binary"}])


def test_steer_from_sign_dead_zone():
    assert steer_from_sign(np.array([-2.0, -0.1, 0.0, 0.3, np.nan]), dead_zone=0.2).tolist() == [0, 1, 1, 2, -1]


def test_writer_roundtrip(tmp_path):
    path = tmp_path / "d" / "frames.zarr"
    frames = _frames(10)
    with StoreWriter(path, SCHEMA, ["Enduro", "CarRacing"], (8, 8), {"seed": 3}, flush_frames=4) as w:
        w.append(frames[:6], "Enduro", 0, np.arange(6), {"steer": ["LEFT"] * 6})
        w.append(frames[6:], "CarRacing", 1, np.arange(4), {"accel": [1, 0, 1, 0]})
    assert is_complete(path)
    ds = open_dataset(path)
    np.testing.assert_array_equal(ds.frames.values, frames)
    assert ds.game.values.tolist() == ["Enduro"] * 6 + ["CarRacing"] * 4
    assert ds.steer.values.tolist() == [0] * 6 + [-1] * 4
    assert ds.accel.values.tolist() == [-1] * 6 + [1, 0, 1, 0]
    assert np.isnan(ds.mouse_dx.values).all()
    assert ds.attrs["seed"] == 3 and ds.attrs["n_frames"] == 10
    assert ds.steer.attrs["classes"] == ["LEFT", "NEUTRAL", "RIGHT"]
    assert ds.frames.chunks[0][0] <= 64  # chunked along frame, streamed lazily


@pytest.mark.parametrize("bad, message", [
    (dict(labels={"steer": ["LEFT"] * 5}), "6 frames but 5 values"),
    (dict(labels={"jump": [1] * 6}), "not in the schema"),
    (dict(game="Pong"), "unknown game 'Pong'"),
])
def test_writer_errors_leave_nothing(tmp_path, bad, message):
    path = tmp_path / "d" / "frames.zarr"
    args = dict(frames=_frames(6), game="Enduro", episode=0, step=np.arange(6), labels={})
    args.update(bad)
    with pytest.raises(ValueError, match=message):
        with StoreWriter(path, SCHEMA, ["Enduro"], (8, 8), flush_frames=2) as w:
            w.append(_frames(6), "Enduro", 0, np.arange(6))  # a good first part is flushed …
            w.append(**args)  # … then bad input arrives
    assert not path.exists()
    assert list(path.parent.iterdir()) == []  # no temp store left behind


def test_interrupted_write_keeps_old_store(tmp_path):
    path = tmp_path / "frames.zarr"
    with StoreWriter(path, SCHEMA, ["Enduro"], (8, 8)) as w:
        w.append(_frames(3), "Enduro", 0, np.arange(3))
    with pytest.raises(KeyboardInterrupt):
        with StoreWriter(path, SCHEMA, ["Enduro"], (8, 8), flush_frames=1) as w:
            w.append(_frames(5), "Enduro", 0, np.arange(5))
            raise KeyboardInterrupt
    assert open_store(path).sizes["frame"] == 3


def test_half_written_store_is_refused(tmp_path):
    path = tmp_path / "frames.zarr"
    with StoreWriter(path, SCHEMA, ["Enduro"], (8, 8)) as w:
        w.append(_frames(3), "Enduro", 0, np.arange(3))
    (path / ".zmetadata").unlink()  # e.g. a copy that stopped half-way
    with pytest.raises(StoreError, match="not a complete workbench store"):
        open_store(path)
    with pytest.raises(StoreError, match="no store"):
        open_store(tmp_path / "missing.zarr")


def test_paths_cannot_escape(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    assert resolve_under(root, "a") == (root / "a").resolve()
    for bad in ("../etc", "/etc/passwd", "a/../../x"):
        with pytest.raises(ValueError, match="escapes its root"):
            resolve_under(root, bad)
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="escapes its root"):
        resolve_under(root, "link/secret")
    for bad in ("../x", "a/b", ".hidden", ""):
        with pytest.raises(ValueError, match="invalid"):
            check_id(bad)
