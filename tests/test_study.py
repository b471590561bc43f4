"""The seed 000 study end to end on tiny real recordings: every table and figure is produced."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.study import StudyConfig
from workbench.study.report import accuracy_pivot


def test_study_config_budgets_and_validation():
    cfg = StudyConfig(size="demo")
    assert cfg.steps == 120 and cfg.finetune_steps == 60 and cfg.study_id == "seed000-demo-s0"
    assert StudyConfig(size="tiny", steps=5).steps == 5
    assert StudyConfig(size="tiny", steps=5).study_id == "seed000-tiny-s0-5steps"  # its own models
    with pytest.raises(ValueError, match="unknown domains"):
        StudyConfig(domains=["chess"])
    with pytest.raises(ValueError, match="invalid study id"):
        StudyConfig(study_id="../x")


def test_accuracy_pivot_is_table_one_layout():
    acc = pd.DataFrame({
        "model": ["single:A", "single:B", "joint_v1", "joint_v1", "ceiling:A", "pair:A+B"],
        "game": ["A", "B", "A", "B", "A", "A"], "head": "steer", "chance": 1 / 3,
        "balanced_accuracy": [0.9, 0.5, 0.8, 0.6, 0.95, 0.7],
    })
    table = accuracy_pivot(acc)
    assert list(table.index) == ["chance", "single", "joint_v1", "ceiling"]
    assert table.loc["single", "A · steer"] == 0.9 and table.loc["ceiling", "A · steer"] == 0.95
    assert pd.isna(table.loc["ceiling", "B · steer"])


@pytest.mark.slow
def test_tiny_study_cli_end_to_end(workbench_dirs, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STUDIES", str(workbench_dirs["cache"] / "studies"))
    result = CliRunner().invoke(app, ["study", "--size", "tiny", "--domain", "racing", "--domain", "atari",
                                      "--steps", "8"])
    assert result.exit_code == 0, result.output
    assert "Headline numbers" in result.output and "report:" in result.output
    folder = workbench_dirs["cache"] / "studies" / "seed000-tiny-s0-8steps"
    record = json.loads((folder / "study.json").read_text())
    assert set(record["domains"]) == {"racing", "atari"}
    models = record["domains"]["atari"]["models"]
    assert len(models) == 7 + 3 + 7 + 21  # single, joint, ceilings, pairs
    assert models["joint_v3"] == "seed000-tiny-s0-8steps.atari.joint_v3"
    for name in ("accuracy.csv", "calibration_gap.csv", "knn_matrix.csv", "probes.csv", "geometry.csv",
                 "percentile_sweep.csv", "few_shot_curve.csv", "points-tsne.csv", "points-umap.csv"):
        assert (folder / "racing" / name).is_file(), name
    assert (folder / "atari" / "knn_benefit.json").is_file()
    knn = pd.read_csv(folder / "atari" / "knn_matrix.csv", index_col=0)
    assert knn.shape == (7, 7) and knn.stack().between(0, 1).all()
    report = (folder / "report.md").read_text()
    for figure in ("racing-tsne.png", "racing-knn.png", "racing-calibration.png", "atari-percentile-sweep.png"):
        assert f"figures/{figure}" in report and (folder / "figures" / figure).stat().st_size > 5000
    assert "calibration gap" in report and "Spearman" in report
