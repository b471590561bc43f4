"""The catalog (YAML entries, materialising, safety) and the command line around it."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data.catalog import (
    CatalogError,
    CatalogWarning,
    get_entry,
    import_dataset,
    load_catalog,
    materialise,
    open_catalog_dataset,
)
from workbench.data.store import open_dataset

runner = CliRunner()

TINY = {
    "id": "tiny_race",
    "title": "two tiny games",
    "source": {"type": "record", "games": [
        {"game": "Enduro", "engine": "ale", "buttons": {"accel": "FIRE", "brake": "DOWN"}},
        {"game": "doom", "engine": "vizdoom", "wad": "freedoom1", "map": "E1M1", "flow_sign": -1},
    ]},
    "frame_size": [32, 32],
    "labels": [{"name": "steer", "kind": "categorical", "classes": ["LEFT", "NEUTRAL", "RIGHT"]},
               {"name": "accel", "kind": "binary"}, {"name": "key_w", "kind": "binary"}],
    "sizes": {"tiny": {"episodes": 2, "frames_per_episode": 20}},
    "seed": 11,
}


def _write_entry(folder, data):
    path = folder / f"{data['id']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_builtin_catalog_has_the_three_domains():
    catalog = load_catalog()
    assert {"racing", "atari", "first_person"} <= set(catalog)
    assert catalog["atari"].games == ["SpaceInvaders", "Asterix", "Frostbite", "Hero", "Seaquest", "Centipede", "MsPacman"]
    assert set(catalog["racing"].games) == {"Enduro", "CarRacing"}
    for entry in catalog.values():
        assert {"tiny", "demo", "full"} <= set(entry.sizes)
        assert "steer" in entry.schema


def test_materialise_is_reproducible_and_cached(workbench_dirs, monkeypatch, tmp_path):
    _write_entry(workbench_dirs["catalog"], TINY)
    entry = get_entry("tiny_race")
    path = materialise(entry, progress=False)
    ds = open_dataset(path)
    assert ds.sizes["frame"] == 80 and ds.frames.shape[1:] == (32, 32, 3)
    assert ds.attrs["seed"] == 11 and ds.attrs["dataset_id"] == "tiny_race"
    assert ds.attrs["flow_sign"] == {"Enduro": 1, "doom": -1}
    assert "ale-py" in ds.attrs["versions"] and ds.attrs["code_version"]
    assert (ds.key_w.values[ds.game.values == "Enduro"] == -1).all()  # label not produced -> unlabeled
    assert entry.materialised() == ["tiny-seed11"]
    mtime = path.stat().st_mtime_ns
    assert materialise(entry, progress=False) == path and path.stat().st_mtime_ns == mtime  # cached
    # a second cache, same entry and seed: the same label bytes
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "other"))
    again = open_dataset(materialise(entry, progress=False))
    for name in ("steer", "accel", "key_w"):
        assert ds[name].values.tobytes() == again[name].values.tobytes()
    other_seed = open_dataset(materialise(entry, seed=12, progress=False))
    assert other_seed.steer.values.tobytes() != ds.steer.values.tobytes()


@pytest.mark.parametrize("patch, message", [
    ({"source": {"type": "stream"}}, "source.type must be"),
    ({"extra": 1}, "unknown keys"),
    ({"id": "../escape"}, "invalid dataset id"),
    ({"sizes": {}}, "needs sizes"),
    ({"source": {"type": "record", "games": [{"game": "x", "engine": "mame"}]}}, "unknown recorder engine"),
    ({"source": {"type": "import", "format": "youtube", "path": "x"}}, "unknown import format"),
    # wrong types: each named with the entry file, none a traceback
    ({"frame_size": ["a", "b"]}, r"frame_size must be \[height, width\]"),
    ({"frame_size": [0, 96]}, r"frame_size 0x96 is out of range: each side must be 8..1024"),
    ({"frame_size": 96}, "frame_size must be"),
    ({"seed": "abc"}, "seed must be a whole number"),
    ({"seed": True}, "seed must be a whole number"),
    ({"sizes": [{"episodes": 1, "frames_per_episode": 2}]}, "needs sizes, a mapping"),
    ({"sizes": {"tiny": {"episodes": "two", "frames_per_episode": 2}}}, "episodes must be a positive whole number"),
    ({"sizes": {"../x": {"episodes": 1, "frames_per_episode": 2}}}, "invalid size name"),
    ({"default_size": "huge"}, "default_size 'huge' is not one of the sizes"),
    ({"labels": "steer"}, "labels must be a non-empty list"),
    ({"labels": ["steer"]}, "every label needs a mapping with a name"),
    ({"labels": [{"name": "steer", "kind": "categorical", "classes": "LR"}]}, "classes must be a list"),
    ({"labels": [{"name": "steer", "kind": "wobbly"}]}, "unknown kind 'wobbly'"),
    ({"source": "record"}, "source must be a mapping"),
    ({"source": {"type": "record", "games": ["Enduro"]}}, "every game needs 'game' and 'engine'"),
    ({"source": {"type": "import", "format": "csgo", "path": 3}}, r"source.path \(text\)"),
    ({"source": {"type": "import", "format": "csgo", "path": "x", "params": [1]}}, "source.params must be a mapping"),
    ({"title": {"a": 1}}, "title must be text"),
])
def test_bad_entries_are_refused_naming_the_file(workbench_dirs, patch, message):
    bad = workbench_dirs["catalog"] / "bad.yaml"
    bad.write_text(yaml.safe_dump({**TINY, "id": "bad", **patch}))
    with pytest.raises(CatalogError, match=message) as caught:
        get_entry("bad")
    assert str(bad) in str(caught.value) and "\n" not in str(caught.value)
    # the listing skips the broken file with a warning naming it and keeps every good entry
    with pytest.warns(CatalogWarning, match=f"{bad}.*skipped"):
        catalog = load_catalog()
    assert "bad" not in catalog and {"racing", "atari", "first_person"} <= set(catalog)


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\xff\xfe binary", b"[1, 2", b"- just\n- a list\n"])
def test_unreadable_entry_files_are_named(workbench_dirs, content):
    bad = workbench_dirs["catalog"] / "bad.yaml"
    bad.write_bytes(content)
    with pytest.raises(CatalogError, match=f"catalog entry {bad}"):
        get_entry("bad")
    result = runner.invoke(app, ["catalog", "list"])
    assert result.exit_code == 0 and "first_person" in result.output
    assert f"warning: catalog entry {bad}" in result.output
    result = runner.invoke(app, ["catalog", "show", "racing"])
    assert result.exit_code == 0 and "CarRacing" in result.output
    result = runner.invoke(app, ["catalog", "show", "bad"])
    assert result.exit_code == 2 and f"error: catalog entry {bad}" in result.output


def test_import_path_cannot_escape_root(workbench_dirs):
    entry = {"id": "sneaky", "source": {"type": "import", "format": "video_csv", "path": "../../etc"},
             "labels": [{"name": "steer", "kind": "categorical", "classes": ["LEFT", "NEUTRAL", "RIGHT"]}]}
    _write_entry(workbench_dirs["catalog"], entry)
    with pytest.raises(ValueError, match="escapes its root"):
        materialise(get_entry("sneaky"), progress=False)


def test_unknown_and_unmaterialised_datasets():
    with pytest.raises(CatalogError, match="unknown dataset 'nope'"):
        get_entry("nope")
    with pytest.raises(CatalogError, match="not materialised; run `workbench record atari`"):
        open_catalog_dataset("atari", size="tiny")


def test_cli_help_and_catalog():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "record" in result.output and "flow" in result.output
    result = runner.invoke(app, ["catalog", "list"])
    assert result.exit_code == 0
    assert "first_person" in result.output and "record:ale,carracing" in result.output
    result = runner.invoke(app, ["catalog", "show", "atari"])
    assert result.exit_code == 0 and "MsPacman" in result.output


def test_cli_errors_are_one_line():
    result = runner.invoke(app, ["record", "nope"])
    assert result.exit_code == 2 and "unknown dataset 'nope'" in result.output
    result = runner.invoke(app, ["flow", "atari", "--size", "huge"])
    assert result.exit_code == 2 and "has no size 'huge'" in result.output
    result = runner.invoke(app, ["import", "youtube", "x", "--id", "y"])
    assert result.exit_code == 2 and "unknown import format" in result.output


def test_cli_record_flow_summary(workbench_dirs, tmp_path):
    _write_entry(workbench_dirs["catalog"], TINY)
    result = runner.invoke(app, ["record", "tiny_race"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["flow", "tiny_race", "--workers", "1", "--method", "dis"])
    assert result.exit_code == 0, result.output
    assert "flow_balanced_accuracy" in result.output and "Enduro" in result.output
    csv = tmp_path / "s.csv"
    result = runner.invoke(app, ["summary", "tiny_race", "--csv", str(csv)])
    assert result.exit_code == 0 and csv.read_text().startswith("game,frames,episodes")
    ds = open_catalog_dataset("tiny_race")
    assert "flow_steer" in ds and np.isnan(ds.flow_dx.values[19])  # last frame of an episode has no pair


@pytest.mark.slow
def test_builtin_catalog_end_to_end(recorded_cache):
    """Every built-in dataset, recorded from the real emulators at `tiny` size, with flow."""
    from workbench.analysis.summary import dataset_summary

    _, paths = recorded_cache
    for dataset_id, path in paths.items():
        ds = open_dataset(path)
        table = dataset_summary(ds)
        entry = load_catalog()[dataset_id]
        assert list(table.index) == entry.games
        assert (table.frames > 0).all()
        assert table[["steer_LEFT", "steer_NEUTRAL", "steer_RIGHT"]].sum(axis=1).round(6).eq(1).all()
        assert table.flow_accuracy.between(0, 1).all()
        assert np.isfinite(ds.flow_mag.values).sum() >= ds.sizes["frame"] - 2 * len(entry.games)


def test_cli_import_creates_catalog_entry(workbench_dirs):
    from fixtures_formats import atari_head_trial, csgo_file

    atari_head_trial(workbench_dirs["imports"] / "ms_pacman")
    result = runner.invoke(app, ["import", "atari_head", "ms_pacman", "--id", "head_pacman",
                                 "--game", "MsPacman", "--frame-size", "48x48"])
    assert result.exit_code == 0, result.output
    assert "MsPacman" in result.output  # the per-game summary
    listing = runner.invoke(app, ["catalog", "list"]).output
    assert "head_pacman" in listing and "atari_head" in listing and "import" in listing
    ds = open_catalog_dataset("head_pacman")
    assert ds.frames.shape[1:] == (48, 48, 3) and ds.attrs["import_format"] == "atari_head"

    csgo_file(workbench_dirs["imports"] / "dm" / "hdf5_dm_july2021_1.hdf5")
    result = runner.invoke(app, ["import", "csgo", "dm", "--id", "dm"])
    assert result.exit_code == 0, result.output
    assert open_catalog_dataset("dm").frames.shape[1:] == (150, 280, 3)
    # a path outside the import root is refused before anything is written
    result = runner.invoke(app, ["import", "csgo", "../../etc", "--id", "evil"])
    assert result.exit_code == 2 and "escapes its root" in result.output
    assert "evil" not in runner.invoke(app, ["catalog", "list"]).output


# --- hostile imports: nothing half-written, nothing silently wrong ----------------------------------


def _written(dirs) -> list[str]:
    """Everything under the cache and the user catalog (a refused import must leave this empty)."""
    return sorted(str(p) for name in ("cache", "catalog") for p in dirs[name].rglob("*"))


def _import(*args):
    return runner.invoke(app, ["import", *args])


def test_reimport_of_other_files_under_an_id_needs_force(workbench_dirs):
    from fixtures_formats import csgo_file, csgo_vector

    imports = workbench_dirs["imports"]
    csgo_file(imports / "a" / "hdf5_dm_1.hdf5")
    csgo_file(imports / "b" / "hdf5_dm_1.hdf5", vectors=[csgo_vector(keys=("w",))] * 3)
    assert _import("csgo", "a", "--id", "dm", "--frame-size", "24x24").exit_code == 0
    store = get_entry("dm").store_path()
    stamp = store.stat().st_mtime_ns
    for args in (["b", "--frame-size", "24x24"], ["a", "--frame-size", "32x32"], ["a", "-p", "dead_zone=5"]):
        result = _import("csgo", *args, "--id", "dm")
        assert result.exit_code == 2 and "already holds an import of 'a'" in result.output, result.output
        assert "--force" in result.output
        # the entry and the store still describe the first import
        assert get_entry("dm").source["path"] == "a" and get_entry("dm").frame_size == (24, 24)
        assert store.stat().st_mtime_ns == stamp and open_dataset(store).sizes["frame"] == 6
    # the same files and settings again: a no-op reuse
    assert _import("csgo", "./a", "--id", "dm", "--frame-size", "24x24").exit_code == 0
    assert store.stat().st_mtime_ns == stamp
    # --force replaces the store and then the entry; derived stores of the old frames go
    (store.parent / "flow-dis.zarr").mkdir()
    result = _import("csgo", "b", "--id", "dm", "--frame-size", "24x24", "--force")
    assert result.exit_code == 0, result.output
    ds = open_catalog_dataset("dm")
    assert get_entry("dm").source["path"] == "b" and ds.attrs["import_path"].endswith("/b")
    assert ds.sizes["frame"] == 3 and (ds.key_w.values == 1).all()
    assert not (store.parent / "flow-dis.zarr").exists()
    assert sorted(p.name for p in store.parent.iterdir()) == ["frames.zarr"]


def test_an_orphan_store_is_not_adopted_by_other_files(workbench_dirs):
    from fixtures_formats import csgo_file

    csgo_file(workbench_dirs["imports"] / "a" / "hdf5_dm_1.hdf5")
    csgo_file(workbench_dirs["imports"] / "b" / "hdf5_dm_1.hdf5")
    assert _import("csgo", "a", "--id", "dm", "--frame-size", "24x24").exit_code == 0
    (workbench_dirs["catalog"] / "dm.yaml").unlink()  # the store stays, its entry is gone
    result = _import("csgo", "b", "--id", "dm", "--frame-size", "24x24")
    assert result.exit_code == 2 and "holds other data than this import" in result.output
    assert "dm" not in load_catalog()
    # the files it was made from adopt it again, without writing the store
    assert _import("csgo", "a", "--id", "dm", "--frame-size", "24x24").exit_code == 0
    assert get_entry("dm").source["path"] == "a"


def _stray_store(path):
    """A complete store where no variant of the dataset belongs (as an older version left them)."""
    from workbench.data.schema import LabelSchema
    from workbench.data.store import StoreWriter

    schema = LabelSchema.from_list([{"name": "steer", "kind": "categorical", "classes": ["LEFT", "NEUTRAL", "RIGHT"]}])
    with StoreWriter(path, schema, ["x"], (8, 8)) as writer:
        writer.append(np.zeros((2, 8, 8, 3), np.uint8), "x", 0, np.arange(2))


def test_import_under_a_builtin_id_writes_nothing(workbench_dirs):
    from fixtures_formats import csgo_file

    csgo_file(workbench_dirs["imports"] / "dm" / "hdf5_dm_1.hdf5")
    for extra in ([], ["--force"]):
        result = _import("csgo", "dm", "--id", "racing", *extra)
        assert result.exit_code == 2 and "'racing' is already used by" in result.output
        assert "racing.yaml" in result.output and _written(workbench_dirs) == []
    for args, message in ((["--id", "../up"], "invalid dataset id"),
                          (["--id", "dm", "-p", "bogus=1"], "bad csgo import parameters")):
        result = _import("csgo", "dm", *args)
        assert result.exit_code == 2 and message in result.output and _written(workbench_dirs) == []
    assert runner.invoke(app, ["catalog", "show", "racing"]).exit_code == 0


def test_stray_variants_and_broken_entries_never_break_listings(workbench_dirs):
    from workbench.app.catalog import _variant, catalog_page

    datasets = workbench_dirs["cache"] / "datasets"
    strays = [datasets / "racing" / "import" / "frames.zarr", datasets / "racing" / "huge-seed0" / "frames.zarr"]
    for store in strays:
        _stray_store(store)
    broken = workbench_dirs["catalog"] / "broken.yaml"
    broken.write_text("id: broken\nsource: {type: record}\nlabels: steer\n")
    result = runner.invoke(app, ["catalog", "show", "racing"])
    assert result.exit_code == 0, result.output
    for store in strays:
        assert f"warning: {store}: not a variant of dataset 'racing'" in result.output
    assert "materialised:" not in result.output
    # a complete-looking store of a real variant whose data are damaged: named, the rest still shown
    real_variant = get_entry("racing").variant("tiny", 0)  # carries the entry's crop tag
    damaged = datasets / "racing" / real_variant / "frames.zarr"
    _stray_store(damaged)
    for chunk in damaged.glob("steer/[0-9]*"):
        chunk.write_bytes(b"not a compressed chunk")
    result = runner.invoke(app, ["catalog", "show", "racing"])
    assert result.exit_code == 0 and f"warning: {damaged}: cannot summarise" in result.output, result.output
    catalog_page()
    assert f"Cannot show `{damaged}`" in _variant("racing", real_variant).object
    result = runner.invoke(app, ["catalog", "list"])
    assert result.exit_code == 0 and "first_person" in result.output
    assert f"warning: catalog entry {broken}" in result.output and f"warning: {strays[0]}" in result.output
    page = catalog_page()  # the dashboard's catalog page: builds, and names what it skipped
    skipped = page.objects[0].object
    assert str(broken) in skipped and str(strays[0]) in skipped


@pytest.mark.parametrize("size", ["0x96", "99999x99999", "4x96", "-8x96"])
def test_absurd_frame_sizes_are_refused_before_any_write(workbench_dirs, size):
    from fixtures_formats import csgo_file

    csgo_file(workbench_dirs["imports"] / "dm" / "hdf5_dm_1.hdf5")
    result = _import("csgo", "dm", "--id", "dm", "--frame-size", size)
    assert result.exit_code == 2 and "is out of range: each side must be 8..1024 pixels" in result.output
    assert _written(workbench_dirs) == []
    with pytest.raises(CatalogError, match="out of range"):
        import_dataset("csgo", "dm", "dm", frame_size=tuple(int(v) for v in size.split("x")), progress=False)
    assert _written(workbench_dirs) == []


def test_a_native_frame_size_out_of_range_needs_frame_size(workbench_dirs):
    from fixtures_formats import minari_episode, minari_file

    tiny = np.zeros((4, 4, 4, 3), np.uint8)
    minari_file(workbench_dirs["imports"] / "m" / "main_data.hdf5", [minari_episode(3, np.array([0, 1, 0]), obs=tiny)])
    result = _import("minari", "m", "--id", "m")
    assert result.exit_code == 2 and "4x4 is out of range" in result.output and "--frame-size" in result.output
    assert _written(workbench_dirs) == []
    assert _import("minari", "m", "--id", "m", "--frame-size", "8x8").exit_code == 0


def test_a_failed_import_leaves_nothing_behind(workbench_dirs):
    from fixtures_formats import csgo_file, truncate

    csgo_file(workbench_dirs["imports"] / "dm" / "hdf5_dm_1.hdf5")
    bad, _ = csgo_file(workbench_dirs["imports"] / "dm" / "hdf5_dm_2.hdf5")
    truncate(bad)  # the first file is written to the store before the second fails
    result = _import("csgo", "dm", "--id", "dm", "--frame-size", "24x24")
    assert result.exit_code == 2 and "hdf5_dm_2.hdf5" in result.output
    assert _written(workbench_dirs) == []


LINKED = {"csgo": "hdf5_dm_1.hdf5", "video_csv": "run1.csv", "atari_head": "100_RZ_3592991_Aug-24-11-44-38.txt"}


@pytest.mark.parametrize("fmt", LINKED)
def test_symlinked_files_may_not_lead_out_of_the_import_root(workbench_dirs, tmp_path, fmt):
    import shutil

    from fixtures_formats import atari_head_trial, csgo_file, video_csv_recording

    imports = workbench_dirs["imports"]
    for target, escapes in ((tmp_path / "outside", True), (imports / "shared", False)):
        folder = imports / ("out" if escapes else "in")  # an allowed folder ...
        if fmt == "csgo":
            csgo_file(folder / LINKED[fmt])
        elif fmt == "video_csv":
            video_csv_recording(folder, "steer\nLEFT\nRIGHT\n")
        else:
            atari_head_trial(folder)
        target.mkdir()
        link, real = folder / LINKED[fmt], target / LINKED[fmt]
        shutil.move(link, real)
        link.symlink_to(real)  # ... holding a link to a file elsewhere
        result = _import(fmt, folder.name, "--id", folder.name, "--frame-size", "24x24")
        if escapes:
            assert result.exit_code == 2, result.output
            assert f"{link}: resolves to {real}, outside the import root {imports}" in result.output
            assert _written(workbench_dirs) == []
        else:
            assert result.exit_code == 0, result.output
