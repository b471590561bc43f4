"""The leak audit and HUD removal: a planted HUD strip is flagged, motion-only labels pass, the
crop removes the HUD (before resizing, under a new variant name), and on real CarRacing frames
the indicator bar is flagged until the entry crops it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from workbench.analysis.leaks import LeakError, audit_summary, audit_verdict, cached_audit, leak_audit, refuse_leaks, regions
from fixtures_formats import csgo_file
from workbench.data.catalog import BUILTIN_CATALOG, CatalogEntry, CatalogError, get_entry, import_dataset, materialise
from workbench.data.episode import resize_frames
from workbench.data.mask import FrameMask, prepare_frames
from workbench.data.recorders import get_engine
from workbench.data.store import open_dataset

SIZE = 32
HUD_ROWS = 4


def moving_square(n_episodes: int = 3, n: int = 200, hud: bool = False, seed: int = 0) -> xr.Dataset:
    """A white square on black moving 2 px left / not / right per step; ``steer`` (drawn
    independently every step, so no single frame predicts it) is the move from ``t`` to ``t+1``.
    ``hud`` draws, in the bottom rows of frame ``t+1``, a bar at the third of the width that
    names that move — an indicator like CarRacing's."""
    rng = np.random.default_rng(seed)
    frames, steer, episode, step = [], [], [], []
    for ep in range(n_episodes):
        labels = rng.integers(0, 3, n)
        x = (int(rng.integers(0, SIZE)) + np.concatenate([[0], np.cumsum(2 * (labels[:-1] - 1))])) % SIZE
        y = rng.integers(4, SIZE - HUD_ROWS - 8)
        for t in range(n):
            f = np.zeros((SIZE, SIZE, 3), np.uint8)
            f[y:y + 4, x[t]:x[t] + 4] = 255
            if hud and t > 0:
                third = SIZE // 3
                f[-HUD_ROWS:, labels[t - 1] * third:(labels[t - 1] + 1) * third] = 200
            frames.append(f)
        steer.append(labels)
        episode.append(np.full(n, ep))
        step.append(np.arange(n))
    return xr.Dataset(
        {"frames": (("frame", "y", "x", "rgb"), np.stack(frames)),
         "steer": ("frame", np.concatenate(steer).astype(np.int8), {"kind": "categorical", "classes": ["L", "N", "R"]})},
        coords={"game": ("frame", np.full(n_episodes * n, "Squares")), "episode": ("frame", np.concatenate(episode)),
                "step": ("frame", np.concatenate(step))})


AUDIT = {"block": 16, "n_splits": 3, "grid": 4, "band": 2}


def test_regions_cover_grid_and_edges():
    named = regions(16, 20, grid=4, band=2)
    assert len(named) == 20
    image = np.zeros((16, 20))
    for name, (ry, rx) in named.items():
        if name[0] == "r" and name[1].isdigit():
            image[ry, rx] += 1
    assert (image == 1).all()  # the grid tiles the image exactly once
    assert named["bottom"][0] == slice(14, 16) and named["right"][1] == slice(18, 20)


def test_planted_hud_strip_is_flagged():
    table = leak_audit(moving_square(hud=True), **AUDIT)
    verdict = audit_verdict(table).set_index("game").loc["Squares"]
    bottom = table.set_index(["region", "feature"]).loc[("bottom", "frame_t1")]
    assert bottom.balanced_accuracy > 0.95 and bottom.leak
    assert verdict.leak and "bottom (frame_t1)" in verdict.flagged
    # the strip shows the move into frame t+1, so frame t alone (the previous move) shows nothing
    assert table.set_index(["region", "feature"]).loc[("bottom", "frame_t"), "balanced_accuracy"] < 0.5
    assert not table[table.feature == "frame_t"].leak.any()
    with pytest.raises(LeakError, match=r"Squares · steer: .*bottom \(frame_t1\) 1\.00 vs motion 0\.\d\d.*--allow-leaks"):
        refuse_leaks(table, "domain squares")  # what the study raises unless allowed to go on
    assert audit_summary(table).endswith("0 with an accepted cue, 1 leak (Squares · steer)")  # the run's log line
    # the entry may accept flagged regions as part of the game world: then only the others leak
    accepted = leak_audit(moving_square(hud=True), accepted={"Squares": {"bottom": "a planted bar"}}, **AUDIT)
    verdict = audit_verdict(accepted).iloc[0]
    assert "bottom: a planted bar" in verdict.accepted and verdict.leak  # the grid cells under the bar still leak
    anywhere = leak_audit(moving_square(hud=True), accepted={"Squares": {"*": "a moving sprite"}}, **AUDIT)
    refuse_leaks(anywhere, "domain squares")  # "*" accepts every region of that game
    assert audit_summary(anywhere).endswith("1 with an accepted cue, 0 leaks")
    assert set(anywhere[anywhere.flagged].accepted) == {"a moving sprite"}


def test_motion_only_labels_pass():
    table = leak_audit(moving_square(hud=False), **AUDIT)
    verdict = audit_verdict(table).iloc[0]
    assert verdict.motion > 0.8  # the whole-frame difference reads the move ...
    assert verdict.single_frame < 0.5 and verdict.best_region_accuracy < 0.5  # ... a single frame cannot
    assert not verdict.leak and not table.leak.any()
    refuse_leaks(table, "domain squares")  # no error: the study goes on
    assert audit_summary(table) == f"leak audit: {len(audit_verdict(table))} game · head checks, 0 with an accepted cue, 0 leaks"


def test_crop_removes_the_hud_and_the_audit_then_passes():
    ds = moving_square(hud=True)
    cropped = FrameMask.from_config({"crop": {"bottom": HUD_ROWS}}, "test").apply(ds["frames"].values)
    assert cropped.shape[1:] == (SIZE - HUD_ROWS, SIZE, 3)
    clean = moving_square(hud=False)["frames"].values[:, :SIZE - HUD_ROWS]
    np.testing.assert_array_equal(cropped, clean)
    masked = ds.drop_vars("frames").assign(frames=(("frame", "y", "x", "rgb"), cropped))
    assert not audit_verdict(leak_audit(masked, **AUDIT)).leak.any()


def test_mask_regions_fill_and_prepare_frames_masks_before_resizing():
    frames = np.full((2, 8, 8, 3), 50, np.uint8)
    frames[:, -2:] = 255  # a bright HUD in the native frame's bottom two rows
    mask = FrameMask.from_config({"mask": [{"y0": -2, "fill": [0, 0, 0]}]}, "test")
    out = mask.apply(frames)
    assert (out[:, -2:] == 0).all() and (out[:, :-2] == 50).all() and (frames[:, -2:] == 255).all()
    # resizing first would smear the HUD into the rows above; cropping first leaves none of it
    resized = prepare_frames(frames, FrameMask.from_config({"crop": {"bottom": 2}}, "test"), (4, 4))
    assert resized.shape == (2, 4, 4, 3) and (resized == 50).all()
    assert mask.to_dict() == {"mask": [{"y0": -2, "fill": [0, 0, 0]}]}


@pytest.mark.parametrize("cfg, message", [
    ({"crop": {"bottom": -1}}, ">= 0"), ({"crop": {"middle": 3}}, "edges"), ({"crop": {"top": 1.5}}, "whole number"),
    ({"mask": [{"y0": 0, "fill": 300}]}, "fill"), ({"mask": [{"z0": 1}]}, "mask region"),
])
def test_bad_mask_settings_are_one_line_errors(cfg, message):
    with pytest.raises(ValueError, match=message):
        FrameMask.from_config(cfg, "racing.yaml CarRacing")


def test_crop_that_leaves_nothing_is_refused():
    with pytest.raises(ValueError, match="leaves nothing"):
        FrameMask.from_config({"crop": {"top": 4, "bottom": 4}}, "test").apply(np.zeros((1, 8, 8, 3), np.uint8))


def _racing(crop: dict | None, frames: int = 40) -> CatalogEntry:
    """The built-in racing entry's CarRacing game with ``crop`` (None: the HUD kept)."""
    d = yaml.safe_load((BUILTIN_CATALOG / "racing.yaml").read_text())
    game = next(g for g in d["source"]["games"] if g["game"] == "CarRacing")
    for key in ("crop", "mask", "sizes"):  # the audit size replaces the entry's sizes and their overrides
        game.pop(key, None)
    if crop:
        game["crop"] = crop
    d["source"]["games"] = [game]
    d["sizes"] = {"audit": {"episodes": 1, "frames_per_episode": frames}}
    d["default_size"] = "audit"
    return CatalogEntry.from_dict(d)


def test_mask_settings_change_the_variant_and_provenance():
    builtin = yaml.safe_load((BUILTIN_CATALOG / "racing.yaml").read_text())
    assert any("crop" in g or "mask" in g for g in builtin["source"]["games"] if g["game"] == "CarRacing")
    plain, cropped = _racing(None), _racing({"bottom": 12})
    assert plain.variant() == "audit-seed0"
    assert cropped.variant().startswith("audit-seed0-mask") and cropped.variant() != _racing({"bottom": 11}).variant()
    assert cropped.split_variant(cropped.variant()) == ("audit", 0)
    assert cropped.split_variant("audit-seed0") is None  # an unmasked store is stale, never listed
    assert cropped.frame_mask("CarRacing").crop == (0, 12, 0, 0)
    with pytest.raises(CatalogError, match="crop"):
        _racing({"bottom": "all"})
    assert _racing(None).accepted_cues()["CarRacing"].keys() == {"r3c1", "r3c2"}  # the car sprite's cells
    with pytest.raises(CatalogError, match="accept_cues"):
        CatalogEntry.from_dict({**yaml.safe_load((BUILTIN_CATALOG / "racing.yaml").read_text()),
                                "accept_cues": {"CarRacing": "everything"}})


def test_recorder_stores_cropped_then_resized_frames():
    """Enduro's odometer rows (native 155-209) never reach the store: stored = resize(crop(native))."""
    game = {"game": "Enduro", "engine": "ale", "buttons": {"accel": "FIRE", "brake": "DOWN"}, "crop": {"bottom": 55}}
    entry = CatalogEntry.from_dict({"id": "hudless", "source": {"type": "record", "games": [game]},
                                    "labels": [{"name": "steer", "classes": ["LEFT", "NEUTRAL", "RIGHT"]}],
                                    "frame_size": [32, 32], "sizes": {"t": {"episodes": 1, "frames_per_episode": 12}}})
    ds = open_dataset(materialise(entry, progress=False))
    assert ds.attrs["variant"] == entry.variant() != "t-seed0" and ds.attrs["frame_mask"] == {"Enduro": {"crop": {"bottom": 55}}}
    uncropped = {k: v for k, v in game.items() if k != "crop"}
    (native,) = get_engine("ale").record(uncropped, 1, 12, None, 0)
    assert native.frames.shape[1:3] == (210, 160)
    np.testing.assert_array_equal(ds["frames"].values, resize_frames(native.frames[:, :155], (32, 32)))


def test_importer_applies_the_entry_crop(workbench_dirs):
    h5, frames = csgo_file(workbench_dirs["imports"] / "hdf5_dm_july2021_1.hdf5")
    store = import_dataset("csgo", h5.name, "cropped_csgo", progress=False, hud={"crop": {"top": 30, "right": 80}})
    ds = open_dataset(store)
    assert store.parent.name.startswith("import-mask") and ds.attrs["frame_mask"] == {"*": {"crop": {"top": 30, "right": 80}}}
    np.testing.assert_array_equal(ds["frames"].values, frames[:, 30:, :200])
    assert get_entry("cropped_csgo").materialised() == [store.parent.name]


@pytest.mark.slow
def test_real_carracing_hud_is_flagged_until_cropped():
    """Recorded CarRacing: the indicator bar predicts steering from frame t+1 alone; with the
    catalog's crop the store holds no HUD rows and the audit flags no region."""
    tables = {}
    for name, crop in (("unmasked", None), ("masked", {"bottom": 12})):
        entry = _racing(crop, frames=1000)
        store = materialise(entry, progress=False)
        ds = open_dataset(store)
        assert ds.attrs["frame_mask"] == ({"CarRacing": {"crop": {"bottom": 12}}} if crop else {})
        audit = cached_audit(store, ds, accepted=entry.accepted_cues())
        tables[name] = audit_verdict(audit).set_index("game").loc["CarRacing"]
        assert len(list(store.parent.glob("leak-audit-*.csv"))) == 1  # computed once, kept beside the store
    assert tables["unmasked"].leak and "bottom (frame_t1)" in tables["unmasked"].flagged
    # cropped, the HUD band shows nothing; what a single frame still shows is the car sprite in its
    # steering pose, which the built-in entry accepts as part of the game world (and reports)
    assert not tables["masked"].leak, tables["masked"].flagged
    assert "bottom" not in tables["masked"].flagged


def test_report_has_a_leak_section_and_single_frame_columns(tmp_path):
    """The report shows the audit (flagged, accepted) and a single-frame probe beside zero-shot."""
    from workbench.study.files import write_json
    from workbench.study.results import write_report

    folder = tmp_path / "seed000-test"
    audit = leak_audit(moving_square(hud=True), **AUDIT)
    (folder / "racing").mkdir(parents=True)
    audit.to_csv(folder / "racing" / "leak_audit.csv", index=False)
    pd.DataFrame([{"model": "joint_v3", "game": "Squares", "head": "steer", "chance": 1 / 3, "balanced_accuracy": 0.9}]
                 ).to_csv(folder / "racing" / "accuracy.csv", index=False)
    pd.DataFrame([{"game": "Squares", "head": "steer", "variant": "joint", "n": 600, "chance": 1 / 3,
                   "balanced_accuracy": 0.95}]).to_csv(folder / "racing" / "probes.csv", index=False)
    write_json({"config": {"study_id": "seed000-test", "size": "demo", "seed": 0, "steps": 1, "finetune_steps": 1,
                           "split_block": 64},
                "code_version": "test", "started": "now",
                "domains": {"racing": {"games": ["Squares"], "models": {}, "timings": {}}}}, folder / "study.json")
    report = write_report(folder).read_text()
    assert "### Leak audit" in report and "**Leaks:** Squares · steer" in report
    assert "figures/racing-leaks-Squares-steer.png" in report and (folder / "figures" / "racing-leaks-Squares-steer.png").is_file()
    probe_table = report.split("### Is the information present?", 1)[1].split("\n\n", 3)[2]
    header, _, row = probe_table.splitlines()[:3]
    assert "single-frame probe" in header and "motion probe" in header and "zero-shot" in header
    single = audit_verdict(audit).single_frame.iloc[0]
    assert f"{single:.3f}" in row  # the number a reader compares the 0.9 zero-shot with


def test_heatmap_rows_keep_their_values():
    """The audit (and KNN) heatmaps: each row label of the PNG sits beside its own values, also
    for row names out of alphabetical order (region names, game names)."""
    import holoviews as hv

    from workbench.viz.plots import matrix_heatmap

    matrix = pd.DataFrame({"a": [1.0, 0.0, 0.5], "b": [0.1, 0.2, 0.3]}, index=["zeta", "alpha", "mid"])
    plot = hv.renderer("matplotlib").get_plot(matrix_heatmap(matrix))
    axis, values = plot.handles["axis"], np.asarray(plot.handles["artist"].get_array())
    rows = {label.get_text(): int(y) for label, y in zip(axis.get_yticklabels(), axis.get_yticks())}
    assert rows["zeta"] == 2  # the first row on top
    for name, y in rows.items():
        np.testing.assert_allclose(values[y], matrix.loc[name].to_numpy())


def test_catalog_page_shows_the_cached_audit_or_a_button_that_computes_it_once(tmp_path, monkeypatch):
    from workbench.app import catalog as page

    ds = moving_square(hud=True)
    store = tmp_path / "squares" / "frames.zarr"  # stands in for a store folder: the audit sits beside it
    store.mkdir(parents=True)
    entry = CatalogEntry.from_dict({"id": "squares", "source": {"type": "record", "games": [
        {"game": "Squares", "engine": "ale"}]}, "accept_cues": {"Squares": {"bottom": "a planted bar"}},
        "labels": [{"name": "steer", "classes": ["L", "N", "R"]}], "sizes": {"t": {"episodes": 1, "frames_per_episode": 1}}})
    monkeypatch.setattr(page.sources, "dataset", lambda _store: ds)
    first = page._leak_audit(entry, store)
    assert [type(o).__name__ for o in first] == ["Alert", "Button"] and not list(tmp_path.rglob("leak-audit-*.csv"))
    first[1].clicks += 1  # the first visitor computes it ...
    assert len(list(tmp_path.rglob("leak-audit-*.csv"))) == 1
    text = page._leak_audit(entry, store)[0].object  # ... later visitors read it
    assert "(accepted: bottom: a planted bar) — **a leak**" in text  # the grid cells under the bar are not accepted
    # the rule and the accepted cues apply on reading: changing them recomputes nothing
    relaxed = cached_audit(store, ds, accepted={"Squares": {"*": "a planted bar"}})
    assert not relaxed.leak.any() and len(list(tmp_path.rglob("leak-audit-*.csv"))) == 1


def test_a_leaking_domain_is_refused_and_the_others_reported(monkeypatch, tmp_path):
    """The study refuses (does not train or report) a domain whose audit flags a leak, says why in
    study.json, the report and on the command line, and goes on with the other domains."""
    from typer.testing import CliRunner

    from workbench.cli import app
    from workbench.methods.idm import study as runner

    monkeypatch.setenv("WORKBENCH_STUDIES", str(tmp_path / "studies"))

    def fake_domain(dataset_id, cfg, out, bar):
        if dataset_id == "racing":
            raise LeakError("domain racing: the leak audit finds single-frame regions (CarRacing · steer: bottom)")
        return {"games": [], "models": {}, "timings": {}}

    monkeypatch.setattr(runner, "run_domain", fake_domain)
    result = CliRunner().invoke(app, ["study", "--size", "tiny", "--domain", "racing", "--domain", "first_person"])
    assert result.exit_code == 0, result.output
    (record,) = [yaml.safe_load(p.read_text()) for p in (tmp_path / "studies").glob("*/study.json")]
    assert list(record["domains"]) == ["first_person"] and "CarRacing · steer: bottom" in record["refused"]["racing"]
    assert "refused: domain racing" in result.output
    (report,) = (tmp_path / "studies").glob("*/report.md")
    assert "## Refused domains" in report.read_text() and "**racing**" in report.read_text()
