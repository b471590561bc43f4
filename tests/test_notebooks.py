"""Notebooks, papermill batch runs, sweeps, `workbench run|sweep`, frame-pair thumbnails and widgets.

Every notebook of ``notebooks/`` is executed under papermill on the ``tiny`` racing recording (07:
the ``tiny`` first_person one, the seed 002 batch run at its ``tiny`` budget) with a handful of
training steps. Tests that need a trained model share one (``workspace``); tests
that train their own use the per-test model library of conftest, so model ids never collide.
"""

from __future__ import annotations

import re

import io
import json
import os
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from workbench.cli import app
from workbench.data.schema import LabelSchema
from workbench.data.store import StoreError, StoreWriter
from workbench.data.thumbnails import GAP, frame_pair_png, read_frame_pair
from workbench.notebooks import (NOTEBOOK_DIR, RESULT_PARAM, NotebookError, NotebookRunError, find_notebook,
                                 list_notebooks, load_sweep, notebook_parameters, run_notebook)

NOTEBOOKS = ["01_record_data", "02_train_idm", "03_embeddings_geometry", "04_probes_knn", "05_calibration", "06_study",
             "07_latent_action_world_models", "08_levels"]
TINY_TRAIN = {"size": "tiny", "steps": 3, "split_block": 4, "config": {"batch_size": 16}}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A cache with the tiny racing recording and its flow, and a library with one tiny joint model."""
    from workbench.data.catalog import get_entry, materialise
    from workbench.flow import compute_flow
    from workbench.methods.idm import make_config, train

    root = tmp_path_factory.mktemp("notebooks")
    env = {"WORKBENCH_CACHE": root / "cache", "WORKBENCH_MODELS": root / "models"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items()})
    try:
        store = materialise(get_entry("racing"), size="tiny", progress=False)
        compute_flow(store, workers=1, progress=False)
        model_id = train(make_config("joint_v3", datasets=["racing"], size="tiny", steps=3, batch_size=16,
                                     split_block=4, eval_every=3, model_id="nb-joint"), progress=False).model_id
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k)
            else:
                os.environ[k] = v
    return {"root": root, "store": store, "model_id": model_id, **env}


@pytest.fixture
def studies(workbench_dirs, monkeypatch):
    folder = workbench_dirs["cache"].parent / "studies"
    monkeypatch.setenv("WORKBENCH_STUDIES", str(folder))
    return folder


@pytest.fixture
def shared_data(workspace, studies, monkeypatch):
    """The workspace's recorded data (no re-recording); models stay in the test's own library."""
    monkeypatch.setenv("WORKBENCH_CACHE", str(workspace["WORKBENCH_CACHE"]))
    return workspace


@pytest.fixture
def shared_model(shared_data, monkeypatch):
    """The workspace's data and its trained model."""
    monkeypatch.setenv("WORKBENCH_MODELS", str(shared_data["WORKBENCH_MODELS"]))
    return shared_data


def _record(path: Path) -> dict:
    return json.loads(Path(path).with_suffix(".json").read_text())


# --------------------------------------------------------------------------- the notebooks as files


def test_notebooks_are_commit_clean_and_parameterised():
    assert list_notebooks() == NOTEBOOKS
    for name in NOTEBOOKS:
        nb = nbformat.read(NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == "python3"
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{name}: clear the outputs"
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1 and tagged[0] is code[0], name
        assert nb.cells[0].cell_type == "markdown" and "**Why.**" in nb.cells[0].source, name
        assert RESULT_PARAM in notebook_parameters(name)
    assert notebook_parameters("02_train_idm")["preset"] == '"joint_v3"'


def test_find_notebook_by_name_number_or_path(tmp_path):
    expected = NOTEBOOK_DIR / "02_train_idm.ipynb"
    for name in ("02_train_idm", "02_train_idm.ipynb", "train_idm", "02", expected):
        assert find_notebook(name) == expected
    with pytest.raises(NotebookError, match="unknown notebook 'nope'.*01_record_data"):
        find_notebook("nope")
    with pytest.raises(NotebookError, match="unknown notebook"):
        find_notebook(tmp_path / "02_train_idm.ipynb")  # a path that is not there is not a name
    with pytest.raises(NotebookError, match="has no parameter 'stpes'.*steps"):
        run_notebook("02_train_idm", {"stpes": 3})
    with pytest.raises(NotebookError, match="set by the runner"):
        run_notebook("02_train_idm", {RESULT_PARAM: "x.json"})


# --------------------------------------------------------------------------- thumbnails


@pytest.fixture
def small_store(tmp_path):
    """200 frames of 8×12 random pixels (zarr chunks of 64 frames)."""
    schema = LabelSchema.from_list([{"name": "steer", "kind": "categorical", "classes": ["LEFT", "NEUTRAL", "RIGHT"]}])
    frames = np.random.default_rng(0).integers(0, 256, (200, 8, 12, 3), dtype=np.uint8)
    path = tmp_path / "frames.zarr"
    with StoreWriter(path, schema, ["Enduro"], (8, 12)) as w:
        w.append(frames, "Enduro", 0, np.arange(200), {"steer": np.ones(200, np.int8)})
    return path, frames


def test_frame_pair_png_is_the_two_frames_side_by_side(small_store):
    path, frames = small_store
    png = Image.open(io.BytesIO(frame_pair_png(path, 70)))
    assert png.format == "PNG" and png.size == (2 * 12 + GAP, 8)
    pixels = np.asarray(png.convert("RGB"))
    assert np.array_equal(pixels[:, :12], frames[70]) and np.array_equal(pixels[:, 12 + GAP:], frames[71])
    assert Image.open(io.BytesIO(frame_pair_png(path, 70, size=32))).size == (2 * 48 + GAP, 32)
    assert Image.open(io.BytesIO(frame_pair_png(path, 0, size=4))).size == (2 * 6 + GAP, 4)
    with pytest.raises(IndexError, match="no successor"):
        frame_pair_png(path, 199)
    with pytest.raises(StoreError, match="not a complete"):
        frame_pair_png(path.parent / "missing.zarr", 0)


def test_frame_pair_reads_only_the_chunk_of_its_two_frames(small_store):
    path, frames = small_store
    chunks = sorted((path / "frames").glob("[0-9]*"))
    assert len(chunks) == 4  # frames 0-63, 64-127, 128-191, 192-199
    for chunk in chunks:
        if not chunk.name.startswith("1."):
            chunk.write_bytes(b"corrupt")  # reading any frame outside 64-127 now fails
    assert np.array_equal(read_frame_pair(path, 100), frames[100:102])
    with pytest.raises(Exception):
        read_frame_pair(path, 10)


# --------------------------------------------------------------------------- widgets


def test_widgets_show_frame_pairs_and_recalibrate(shared_model):
    from plotly.callbacks import InputDeviceState, Points

    from workbench.methods.idm import extract_embeddings
    from workbench.viz.widgets import CalibrationExplorer, EmbeddingExplorer, points_table

    emb = extract_embeddings(shared_model["model_id"], "racing", split="all", size="tiny", progress=False)
    points = points_table(emb, "tsne", max_points=40)
    assert len(points) == 40 and set(points["action"]) <= {"LEFT", "NEUTRAL", "RIGHT"}
    assert np.array_equal(points["source_frame"], emb["source_frame"].values[points["row"]])
    explorer = EmbeddingExplorer({"tsne": points}, shared_model["store"])
    assert {t.name for t in explorer.figure.data} == set(points["action"])
    trace = explorer.figure.data[-1]
    frame = int(trace.customdata[2][0])
    trace._dispatch_on_hover(Points([2], [trace.x[2]], [trace.y[2]], trace.name, len(explorer.figure.data) - 1),
                             InputDeviceState())
    assert explorer.image.value == frame_pair_png(shared_model["store"], frame, size=explorer.thumb_size)
    assert f"frames {frame} → {frame + 1}" in explorer.caption.value
    explorer.color_by.value = "game"
    assert [t.name for t in explorer.figure.data] == ["Enduro", "CarRacing"]
    explorer.games.value = ("CarRacing",)
    assert [t.name for t in explorer.figure.data] == ["CarRacing"]

    calibration = CalibrationExplorer(emb, percentiles=[50, 70, 90])
    calibration.percentile.value = 80
    assert "p80" in calibration.table.value and calibration.figure.layout.shapes[0].x0 == 80
    calibration.variant.value = ("model", "model")
    assert len(calibration.figure.data) == 2 * 2  # a sweep curve and an auto star per game


def test_image_browser_shows_the_pictures_of_the_picked_group(tmp_path):
    from workbench.methods.worldmodel.report import pictures
    from workbench.viz.widgets import ImageBrowser

    (tmp_path / "filmstrips").mkdir()
    for name in ("noisy-beta0.001-0.png", "noisy-beta0.001-0.gif", "action-motion-0.png"):
        Image.new("RGB", (4, 3)).save(tmp_path / "filmstrips" / name)
    groups = pictures(tmp_path, "filmstrips")
    assert {k: [p.name for p in v] for k, v in groups.items()} == {
        "action-motion": ["action-motion-0.png"], "noisy-beta0.001": ["noisy-beta0.001-0.png", "noisy-beta0.001-0.gif"]}
    browser = ImageBrowser(groups)
    assert browser.group.value == "action-motion" and len(browser.pictures.children) == 2
    browser.group.value = "noisy-beta0.001"
    images = browser.pictures.children[1::2]
    assert [i.format for i in images] == ["png", "gif"] and bytes(images[1].value[:3]) == b"GIF"
    with pytest.raises(ValueError, match="no pictures"):
        ImageBrowser({})


# --------------------------------------------------------------------------- executing the notebooks


@pytest.mark.slow
def test_record_notebook_records_flow_and_summary(studies):
    path = run_notebook("01_record_data", {"size": "tiny", "flow_workers": 1, "pairs_per_game": 1}, progress=False)
    assert path.parent == studies / "runs" and path.name.startswith("01_record_data-")
    record = _record(path)
    assert record["status"] == "ok" and record["result"]["frames"] == 80
    assert set(record["result"]) >= {"store", "flow_balanced_accuracy/Enduro", "flow_balanced_accuracy/CarRacing"}
    executed = nbformat.read(path, as_version=4)
    assert any(o.get("data", {}).get("image/png") for c in executed.cells for o in c.get("outputs", []))


@pytest.mark.slow
def test_workbench_run_trains_and_keeps_the_notebook_next_to_the_card(shared_data, workbench_models):
    args = ["run", "02_train_idm", "-p", "preset", "joint_v1", "-p", "size", "tiny", "-p", "steps", "3",
            "-p", "split_block", "4", "-p", "config", "{batch_size: 16}", "-p", "games", "None"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (model_id,) = re.findall(r"model_id: (joint_v1-racing-tiny-seed0-mask[0-9a-f]{8}-all-s0-[0-9a-f]{6})", result.output)
    assert "executed notebook:" in result.output
    (path,) = (workbench_models / model_id / "runs").glob("02_train_idm-*.ipynb")
    assert (workbench_models / model_id / "card.yaml").is_file()
    record = _record(path)
    assert record["parameters"]["config"] == {"batch_size": 16} and record["parameters"]["games"] is None
    assert 0 <= record["result"]["test_balanced_accuracy"] <= 1
    cells = nbformat.read(path, as_version=4).cells
    injected = [c for c in cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert 'preset = "joint_v1"' in injected[0].source

    runner = CliRunner()
    for bad, message in ((["run", "nope"], "unknown notebook 'nope'"),
                         (["run", "02", "-p", "stpes", "3"], "has no parameter 'stpes'"),
                         (["run", "02", "-p", "steps"], "give notebook parameters as -p KEY VALUE")):
        out = runner.invoke(app, bad)
        assert out.exit_code == 2 and message in out.output, out.output


@pytest.mark.slow
@pytest.mark.parametrize("name, params, keys", [
    ("03_embeddings_geometry", {"methods": ["tsne"], "max_points": 40},
     {"silhouette_by_action", "silhouette_by_game", "interleaving", "knn_preservation/tsne"}),
    ("04_probes_knn", {"heads": ["steer"], "k": 3}, {"knn_diagonal", "knn_off_diagonal", "probe_joint/Enduro/steer"}),
    ("05_calibration", {"ceiling_steps": 1, "k_per_class": 5, "percentiles": [50, 70, 90]},
     {"zero_shot/Enduro", "few_shot/Enduro", "flow_percentile/CarRacing", "flow_auto/CarRacing", "ceiling/Enduro"}),
])
def test_analysis_notebooks_run_on_a_library_model(shared_model, name, params, keys):
    model_id = shared_model["model_id"]
    path = run_notebook(name, {"model_id": model_id, "size": "tiny", **params}, progress=False)
    assert path.parent == shared_model["WORKBENCH_MODELS"] / model_id / "runs"
    record = _record(path)
    assert record["status"] == "ok" and record["result"]["model_id"] == model_id
    assert keys <= set(record["result"]), sorted(record["result"])


@pytest.mark.slow
def test_study_notebook_writes_the_report_and_keeps_its_record(shared_data, studies):
    params = {"size": "tiny", "domains": ["racing"], "steps": 2, "finetune_steps": 1, "pairwise": False,
              "projections": ["tsne"]}
    path = run_notebook("06_study", params, progress=False)
    folder = Path(_record(path)["result"]["study"])
    assert folder.parent == studies and path.parent == folder / "runs"
    assert _record(path)["result"]["report"] == str(folder / "report.md")
    assert "Headline numbers" in (folder / "report.md").read_text()
    verdicts = {k: v for k, v in _record(path)["result"].items() if k.startswith("verdict/")}
    assert any(k.startswith("verdict/joint-helps-small-game/racing / ") for k in verdicts)  # the ledger cell ran
    assert "## Claims ledger" in (folder / "report.md").read_text()
    assert set(json.loads((folder / "study.json").read_text())["domains"]) == {"racing"}


@pytest.mark.slow
def test_world_model_notebook_runs_the_batch_run_and_writes_its_report(studies):
    params = {"size": "tiny", "sweeps": {"noisy": [1e-3]}, "controllers": ["xattn"], "workers": 1}
    path = run_notebook("07_latent_action_world_models", params, progress=False)
    result = _record(path)["result"]
    folder = Path(result["study"])
    assert folder.parent == studies and folder.name.startswith("seed002-tiny-s0-first_person-")  # a custom sweep
    assert path.parent == folder / "runs"
    assert result["report"] == str(folder / "report.md") and result["action_space"] == "motion"
    assert result["leakage_ratio/noisy-beta0.001"] > 0 and "cycle/across · ratio/noisy-beta0.001" in result
    methods = {model: {k.split("/")[-1] for k in result if k.startswith(f"planning_l1_std/{model}/")}
               for model in ("noisy-beta0.001", "action-motion")}  # the action model plans once, on its own
    assert {"controller:xattn", "random", "still"} <= methods["noisy-beta0.001"]
    assert "action_model" in methods["action-motion"]
    report = (folder / "report.md").read_text()
    assert "Future leakage (Table 1)" in report and "Figure S1" in report and "## Claims ledger" in report
    assert "verdict/leakage-above-1/noisy-beta0.001" in result  # the claims ledger cell ran
    executed = nbformat.read(path, as_version=4)
    pictures = [o for c in executed.cells for o in c.get("outputs", []) if o.get("data", {}).get("image/png")]
    assert len(pictures) == 2  # a transfer filmstrip and a planning rollout


@pytest.mark.slow
def test_levels_notebook_plays_the_batch_and_shows_its_tables(studies):
    params = {"games": ["take_cover", "my_way_home"], "max_steps": 8, "episodes": 2, "run_id": "levels-nb"}
    path = run_notebook("08_levels", params, progress=False)
    result = _record(path)["result"]
    folder = Path(result["study"])
    assert folder == studies / "levels-nb" and path.parent == folder / "runs" and result["episodes"] == 8
    assert result["rmst/random/take_cover"] <= 8 and "avg_rank/overall/scripted" in result
    executed = nbformat.read(path, as_version=4)
    pictures = [o for c in executed.cells for o in c.get("outputs", []) if o.get("data", {}).get("image/png")]
    assert len(pictures) == 1  # the episode's filmstrip


# --------------------------------------------------------------------------- sweeps


def test_sweep_specs_are_validated_before_anything_runs(tmp_path):
    example = load_sweep(NOTEBOOK_DIR / "sweeps" / "racing_variants.yaml")
    assert example.name == "racing_variants" and example.notebook.name == "02_train_idm.ipynb"
    assert example.combinations() == [{"seed": s, "preset": p} for s in (0, 1) for p in ("joint_v1", "joint_v3")]
    base = {"notebook": "02_train_idm", "parameters": {"size": "tiny"}, "grid": {"seed": [0, 1]}}
    for change, message in (({"grid": {"seed": 0}}, "grid.seed must be a non-empty list"),
                            ({"grid": {"sed": [0]}}, "has no parameter 'sed'"),
                            ({"notebook": "nope"}, "unknown notebook"),
                            ({"runs": 3}, "unknown keys"),
                            ({"name": "../x"}, "invalid sweep name")):
        with pytest.raises(NotebookError, match=message):
            load_sweep({**base, **change})
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: [seed")
    with pytest.raises(NotebookError, match="bad.yaml: not valid YAML"):
        load_sweep(bad)
    out = CliRunner().invoke(app, ["sweep", str(bad)])
    assert out.exit_code == 2 and "not valid YAML" in out.output


@pytest.mark.slow
def test_sweep_goes_on_after_a_failing_run(shared_data, studies, workbench_models, tmp_path):
    spec = {"name": "games", "notebook": "02_train_idm", "parameters": {**TINY_TRAIN, "preset": "joint_v1"},
            "grid": {"games": [["Enduro"], ["NoSuchGame"]]}}
    (tmp_path / "games.yaml").write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(app, ["sweep", str(tmp_path / "games.yaml")])
    assert result.exit_code == 1 and "1 of 2 runs failed" in result.output, result.output
    table = pd.read_csv(result.output.split("table: ", 1)[1].split()[0])
    assert list(table["status"]) == ["ok", "failed"]
    ok, failed = table.iloc[0], table.iloc[1]
    assert Path(ok["output"]).parent == workbench_models / ok["model_id"] / "runs"
    assert (workbench_models / ok["model_id"] / "card.yaml").is_file()
    assert 0 <= ok["test_balanced_accuracy"] <= 1 and pd.isna(ok["error"])
    assert failed["error"].startswith("cell In [") and "ConfigError: games ['NoSuchGame']" in failed["error"]
    assert "games ['NoSuchGame'] are not in the datasets" in failed["error"] and failed["error"] in result.output
    assert Path(failed["output"]).parent == studies / "runs" / "games"
    kept = nbformat.read(failed["output"], as_version=4)
    assert any(o.get("ename") == "ConfigError" for c in kept.cells for o in c.get("outputs", []))
    assert _record(failed["output"])["status"] == "failed"

    with pytest.raises(NotebookRunError, match=r"02_train_idm failed at cell In \[\d+\].*NoSuchGame") as info:
        run_notebook("02_train_idm", {**TINY_TRAIN, "games": ["NoSuchGame"]}, progress=False)
    assert info.value.record is not None and info.value.record.is_file()
