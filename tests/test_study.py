"""The seed 000 study end to end on tiny real recordings: every table and figure is produced."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from workbench.cli import app
from workbench.methods.idm.study import StudyConfig
from workbench.methods.idm.study import ceiling_configs, model_configs
from workbench.analysis.calibration import calibration_gap
from workbench.analysis.tables import proxy_arm
from workbench.methods.idm.report import accuracy_pivot
from workbench.study.results import write_report


def test_study_config_budgets_ids_and_validation():
    cfg = StudyConfig(size="demo")
    assert cfg.steps == 30 and cfg.finetune_steps == 36
    assert cfg.study_id.startswith("seed000-demo-s0-d0-r0-") and cfg.study_id == StudyConfig(size="demo").study_id
    assert StudyConfig(size="tiny", steps=5).steps == 5
    # every setting that changes a result changes the id; how it runs does not
    ids = {StudyConfig(**change).study_id for change in ({}, {"steps": 5}, {"draw_seed": 1}, {"data_seed": 1},
                                                         {"seed": 1}, {"percentile": 70.0}, {"proxy_domains": []})}
    assert len(ids) == 7
    assert StudyConfig(workers=1).study_id == StudyConfig(domains=["racing"]).study_id == cfg.study_id
    with pytest.raises(ValueError, match="unknown domains"):
        StudyConfig(domains=["chess"])
    with pytest.raises(ValueError, match="invalid study id"):
        StudyConfig(study_id="../x")


GAMES = ["A", "B", "C"]


def test_every_model_gets_the_same_updates_per_game():
    cfg = StudyConfig(size="demo")
    configs = model_configs("atari", GAMES, cfg)
    assert {"single:A", "joint_v3", "pair:A+B", "proxy:single:C", "proxy:joint_v1"} <= set(configs)
    for name, c in configs.items():
        assert c.steps == cfg.steps * len(c.games or GAMES), name  # steps_for: steps per game x games
    assert configs["joint_v3"].steps == 3 * configs["single:A"].steps == 1.5 * configs["pair:A+B"].steps
    assert configs["proxy:joint_v3"].targets == {"steer": "flow_steer"} and configs["joint_v3"].targets == {}
    assert configs["proxy:joint_v3"].steps == configs["joint_v3"].steps  # same models, same budget
    assert not any(n.startswith("proxy:") for n in model_configs("racing", GAMES, cfg))
    ceilings = ceiling_configs("atari", GAMES, cfg, "joint")
    assert {c.steps for c in ceilings.values()} == {cfg.finetune_steps}
    assert all(c.balanced is None and c.hflip is None for c in ceilings.values())  # inherited from joint v3


def test_seeds_vary_one_thing_each():
    base = StudyConfig(size="demo")
    configs = model_configs("atari", GAMES, base)
    draw = StudyConfig(size="demo", draw_seed=1)
    assert model_configs("atari", GAMES, draw) == configs  # the same models (and ids): only draws change
    a, b = ceiling_configs("atari", GAMES, base, "joint"), ceiling_configs("atari", GAMES, draw, "joint")
    for name in a:
        assert a[name].finetune["seed"] == 0 and b[name].finetune["seed"] == 1  # the ceiling's label draw
        assert a[name].replace(finetune=None, model_id=None) == b[name].replace(finetune=None, model_id=None)
    data = model_configs("atari", GAMES, StudyConfig(size="demo", data_seed=1))
    model = model_configs("atari", GAMES, StudyConfig(size="demo", seed=1))
    for name, c in configs.items():
        assert data[name].data_seed == 1 and data[name].seed == 0
        assert model[name].seed == 1 and model[name].data_seed == 0
        assert data[name].model_id != c.model_id != model[name].model_id


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


def test_report_says_no_gap_in_words_and_shows_the_proxy_arm(tmp_path):
    folder = tmp_path / "study"
    (folder / "atari").mkdir(parents=True)
    games = ["A", "B"]
    zero, ceiling = pd.Series({"A": 0.6, "B": 0.7}), pd.Series({"A": 0.8, "B": 0.65})  # B: ceiling below zero-shot
    calibration_gap(zero, few_shot=pd.Series({"A": 0.75, "B": 0.6}), ceiling=ceiling).rename_axis("game").to_csv(
        folder / "atari" / "calibration_gap.csv")
    acc = pd.DataFrame({"model": ["single:A", "single:B", "proxy:single:A", "proxy:single:B", "joint_v3", "joint_v3",
                                  "proxy:joint_v3", "proxy:joint_v3", "ceiling:A", "pair:A+B"],
                        "game": ["A", "B", "A", "B", "A", "B", "A", "B", "A", "A"], "head": "steer", "chance": 1 / 3,
                        "balanced_accuracy": [0.5, 0.6, 0.4, 0.45, 0.7, 0.72, 0.55, 0.5, 0.8, 0.6]})
    acc.to_csv(folder / "atari" / "accuracy.csv", index=False)
    arm = proxy_arm(acc)
    assert set(arm["model"]) == {"single", "joint_v3"} and len(arm) == 8
    assert arm.set_index(["game", "model", "trained_on"]).loc[("B", "joint_v3", "proxy"), "balanced_accuracy"] == 0.5
    arm.to_csv(folder / "atari" / "proxy_arm.csv", index=False)
    pd.DataFrame({"game": games, "n": [10, 10], "proxy_LEFT": [0.1, 0.0], "proxy_NEUTRAL": [0.8, 0.97],
                  "proxy_RIGHT": [0.1, 0.03], "proxy_balanced_accuracy": [0.4, 0.35]}).to_csv(
        folder / "atari" / "proxy_balance.csv", index=False)
    config = {"study_id": "s", "size": "demo", "seed": 0, "data_seed": 0, "draw_seed": 0, "steps": 32,
              "finetune_steps": 40, "split_block": 64}
    (folder / "study.json").write_text(json.dumps({"config": config, "code_version": "x", "started": "now", "domains": {
        "atari": {"games": games, "models": {}, "timings": {}}}}))
    report = write_report(folder).read_text()
    assert "same updates per game" in report and "n × 32 optimiser steps" in report
    gap_rows = [line for line in report.splitlines() if line.startswith("| B |") and "0.650" in line]
    assert gap_rows and "no gap at this budget" in gap_rows[0] and "–" not in gap_rows[0]
    assert "ceiling 0.650 (no gap at this budget)" in report
    proxy_rows = [line for line in report.splitlines() if line.startswith("| B |") and "0.970" in line]
    assert proxy_rows and "0.500" in proxy_rows[0]  # balance and proxy-trained joint v3 in one row
    assert "joint_v3 · proxy labels" in report and "proxy:" not in report.split("Balanced accuracy")[-1][:400]


@pytest.mark.slow
def test_tiny_study_cli_end_to_end(workbench_dirs, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STUDIES", str(workbench_dirs["cache"] / "studies"))
    result = CliRunner().invoke(app, ["study", "--size", "tiny", "--domain", "racing", "--domain", "atari",
                                      "--steps", "3", "--draw-seed", "2"])
    assert result.exit_code == 0, result.output
    assert "Headline numbers" in result.output and "report:" in result.output
    assert "racing: leak audit: " in result.output and "atari: leak audit: " in result.output  # the log says it ran
    cfg = StudyConfig(size="tiny", steps=3, draw_seed=2)
    folder = workbench_dirs["cache"] / "studies" / cfg.study_id
    record = json.loads((folder / "study.json").read_text())
    assert set(record["domains"]) == {"racing", "atari"} and record["config"]["draw_seed"] == 2
    models = record["domains"]["atari"]["models"]
    assert len(models) == 7 + 3 + 7 + 21 + 7 + 3  # single, joint, ceilings, pairs, proxy single + joint
    assert models["joint_v3"] == model_configs("atari", record["domains"]["atari"]["games"], cfg)["joint_v3"].model_id
    assert record["domains"]["atari"]["steps"]["joint_v3"] == 7 * 3 and record["domains"]["racing"]["steps"]["joint_v1"] == 6
    for name in ("accuracy.csv", "calibration_gap.csv", "knn_matrix.csv", "probes.csv", "geometry.csv",
                 "percentile_sweep.csv", "few_shot_curve.csv", "points-tsne.csv", "points-umap.csv",
                 "test_predictions.csv", "units.csv"):
        assert (folder / "racing" / name).is_file(), name
    assert (folder / "atari" / "knn_benefit.json").is_file()
    knn = pd.read_csv(folder / "atari" / "knn_matrix.csv", index_col=0)
    assert knn.shape == (7, 7) and knn.stack().between(0, 1).all()
    points = pd.read_csv(folder / "racing" / "points-tsne.csv")
    assert set(points["split"]) == {"test"}  # geometry from test frames only
    preds = pd.read_csv(folder / "atari" / "test_predictions.csv", keep_default_na=False)
    for column in ("block", "steer", "joint_v3", "single", "ceiling", "proxy_joint_v3", "few_shot_draw_0",
                   "flow_percentile", "flow_auto", "model_percentile"):
        assert column in preds.columns, column
    acc = pd.read_csv(folder / "atari" / "accuracy.csv").set_index(["model", "game", "head"])
    for model in ("joint_v3", "proxy:joint_v3"):  # the saved predictions are the scored ones
        column = model.replace(":", "_")
        for game, rows in preds.groupby("game"):
            hit = (rows[column] == rows["steer"]).groupby(rows["steer"]).mean().mean()
            assert hit == pytest.approx(acc.loc[(model, game, "steer"), "balanced_accuracy"])
    balance = pd.read_csv(folder / "atari" / "proxy_balance.csv")
    assert len(balance) == 7 and balance[["proxy_LEFT", "proxy_NEUTRAL", "proxy_RIGHT"]].sum(axis=1).round(6).eq(1).all()
    report = (folder / "report.md").read_text()
    for figure in ("racing-tsne.png", "racing-knn.png", "racing-calibration.png", "atari-percentile-sweep.png"):
        assert f"figures/{figure}" in report and (folder / "figures" / figure).stat().st_size > 5000
    assert "calibration gap" in report and "Spearman" in report and "Proxy-label arm" in report
