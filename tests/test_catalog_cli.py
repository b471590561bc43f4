"""The catalog (YAML entries, materialising, safety) and the command line around it."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data.catalog import CatalogError, get_entry, load_catalog, materialise, open_catalog_dataset
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
])
def test_bad_entries_are_refused(workbench_dirs, patch, message):
    (workbench_dirs["catalog"] / "bad.yaml").write_text(yaml.safe_dump({**TINY, "id": "bad", **patch}))
    with pytest.raises((CatalogError, ValueError), match=message):
        load_catalog()


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
