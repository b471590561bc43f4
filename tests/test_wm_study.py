"""The seed 002 batch run: configs, the report's tables on constructed results, and a tiny run
end to end on real ViZDoom recordings through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from workbench.cli import app
from workbench.methods.worldmodel.report import (PAPER_TITLE, controller_table, cycle_table, leakage_table, navigation_table,
                                       planning_table, strength_points)
from workbench.methods.worldmodel.study import (BUDGETS, WorldModelStudyConfig, left_out, model_levels, ood_configs,
                                         world_model_configs)
from workbench.methods.worldmodel.regularizers import PAPER_SWEEPS


def test_config_budgets_ids_and_the_models_of_a_run():
    cfg = WorldModelStudyConfig(size="demo")
    assert cfg.steps == 250 and cfg.study_id.startswith("seed002-demo-s0-first_person-")
    assert cfg.study_id == WorldModelStudyConfig(size="demo", workers=1).study_id  # how it runs is no other run
    assert cfg.ood_train_games == ["freedoom1_smooth"] and cfg.ood_eval_games() == ["freedoom2_flick"]
    custom = WorldModelStudyConfig(size="tiny", steps=9).study_id
    assert custom.startswith("seed002-tiny-s0-first_person-") and custom != WorldModelStudyConfig(size="tiny").study_id
    assert WorldModelStudyConfig(size="tiny", steps=8).study_id not in (custom, WorldModelStudyConfig(size="tiny").study_id)
    assert WorldModelStudyConfig(controllers=["mlp"]).study_id != cfg.study_id  # every result setting is in the id
    with pytest.raises(ValueError, match="unknown families"):
        WorldModelStudyConfig(sweeps={"gaussian": [1]})
    with pytest.raises(ValueError, match="invalid study id"):
        WorldModelStudyConfig(study_id="../x")
    configs = world_model_configs(WorldModelStudyConfig(size="demo", sweeps={"noisy": [1e-3, 5e-5]}), "enc", "motion")
    assert list(configs) == ["noisy-beta0.001", "noisy-beta5e-05", "free", "zero", "action-motion"]
    assert {c.encoder for c in configs.values()} == {"enc"}
    assert configs["noisy-beta5e-05"].beta == 5e-5 and configs["action-motion"].action_space == "motion"
    assert configs["zero"].model_id.startswith("seed002-demo-s0-first_person-") and configs["zero"].model_id.endswith(".zero")
    assert WorldModelStudyConfig(ood_train_games=["freedoom1_smooth"]).study_id == cfg.study_id  # the default arm
    assert len({WorldModelStudyConfig(ood_train_games=g).study_id for g in ([], ["freedoom2_flick"], None)}) == 3
    with pytest.raises(ValueError, match="not games of first_person"):
        WorldModelStudyConfig(ood_train_games=["E1M2"])
    with pytest.raises(ValueError, match="leave no game of first_person"):
        WorldModelStudyConfig(ood_train_games=["freedoom1_smooth", "freedoom2_flick"])
    with pytest.raises(ValueError, match="size 'huge': unknown to seed002"):
        WorldModelStudyConfig(size="huge")


def test_every_size_has_low_mid_high_on_the_paper_grid_and_names_what_it_leaves_out():
    for size, budget in BUDGETS.items():
        cfg = WorldModelStudyConfig(size=size)
        levels = model_levels(world_model_configs(cfg, "enc", "motion"), cfg.sweeps)
        for family, values in budget["sweeps"].items():
            assert set(values) <= set(PAPER_SWEEPS[family]), (size, family)  # the paper's grid values only
            rows = set(levels.loc[levels.family == family, "level"])
            assert rows >= ({"Low", "High"} if family == "discrete" else {"Low", "Mid", "High"}), (size, family)
        assert max(budget["sweeps"]["sparse"]) == 0.4 and min(budget["sweeps"]["discrete"]) == 16
        assert left_out(cfg)["discrete"] and budget["left_out"]  # |C| = 32768 is never run on a CPU: said why
    ood = ood_configs(WorldModelStudyConfig(size="tiny"), "ood-enc")
    assert list(ood) == ["ood-sparse-l10.06", "ood-noisy-beta0.0001", "ood-discrete-codebook_size16", "ood-zero"]
    assert {c.encoder for c in ood.values()} == {"ood-enc"}
    assert all(c.games == ["freedoom1_smooth"] for c in ood.values())
    levels = model_levels(ood, WorldModelStudyConfig(size="tiny").sweeps).set_index("model")
    assert set(levels.arm) == {"out-of-domain"} and levels.loc["ood-noisy-beta0.0001", "level"] == "Mid"


def test_report_tables_on_constructed_results():
    sid = "run"
    leak = pd.DataFrame({"model_id": ["run.a", "run.b"], "error": [1.0, 2.0], "error_cut": [3.0, 2.0],
                         "ratio": [3.0, 1.0], "pixel_ratio": [2.0, 1.0]})
    table = leakage_table(leak, sid)
    assert list(table.index) == ["a", "b"] and table.loc["a", "ratio"] == 3.0 and table.loc["b", "scene cut"] == 2.0
    cycle = pd.DataFrame({"model_id": ["run.a"] * 2, "pairing": ["within", "across"], "error": [1.0, 2.0],
                          "error_cycle": [1.1, 3.0], "ratio": [1.1, 1.5]})
    assert cycle_table(cycle, sid).loc["a", "across · ratio"] == 1.5
    rows = [{"model": "a", "kind": "xattn", "latent": latent, "horizon": h, "error": e * h}
            for latent, e in (("idm", 1.0), ("controller", 1.2), ("random_actions", 2.0), ("zero", 3.0))
            for h in (1, 2)]
    ctrl = controller_table(pd.DataFrame(rows)).loc["a"]
    assert ctrl["IDM"] == 2.0 and ctrl["xattn controller"] == 2.4 and np.isclose(ctrl["xattn × IDM"], 1.2)
    assert ctrl["xattn random actions"] == 4.0 and ctrl["zero latent"] == 6.0  # the longest horizon
    plans = pd.DataFrame({"model": "a", "method": ["still", "still", "random"], "error_forward": [1.0, 3.0, 5.0],
                          "l1_std": [1.0, 2.0, 4.0]})
    table = planning_table(plans)
    assert table[table.method == "still"]["Δ forward"].iloc[0] == 2.0 and "|" not in "".join(table.columns)
    nav = pd.DataFrame({"model": "a", "method": ["still", "still", "controller:xattn"], "ate": [1.0, 3.0, 0.5],
                        "rpe": [1.0, 1.0, 0.2], "rpe_rot": [0.0, 2.0, 1.0]})
    table = navigation_table(nav)
    assert table[table.method == "still"]["ATE"].iloc[0] == 2.0 and table[table.method == "still"]["episodes"].iloc[0] == 2


def test_figure_4_points_and_references_from_the_capacity_table():
    rows = [{"model_id": m, "family": f, "knob": k, "knob_value": v, "mode": mode, "horizon": h, "error": e * scale}
            for m, f, k, v, e in (("r.noisy-a", "noisy", "beta", 1e-3, 1.0), ("r.noisy-b", "noisy", "beta", 1e-5, 0.5),
                                  ("r.free", "free", None, np.nan, 0.2), ("r.zero", "zero", None, np.nan, 2.0))
            for mode, h, scale in (("one_step", 1, 1.0), ("one_step", 1, 1.0), ("rollout", 1, 1.5), ("rollout", 2, 3.0))]
    points, refs = strength_points(pd.DataFrame(rows))
    assert set(points.panel) == {"noisy"} and len(points) == 4  # two knob values × (one-step, rollout at h=2)
    assert points.set_index(["knob_value", "line"]).loc[(1e-5, "rollout h=2"), "error"] == 1.5
    assert refs.set_index(["label", "line"]).loc[("zero", "one-step"), "error"] == 2.0
    assert set(refs.label) == {"free", "zero"}
    from workbench.viz.plots import error_vs_strength
    assert len(error_vs_strength(points, refs)) == 1  # one panel per family


@pytest.mark.slow
def test_tiny_batch_run_cli_end_to_end(workbench_dirs):
    result = CliRunner().invoke(app, ["worldmodel", "study", "--size", "tiny", "--sweep", "noisy=1e-3,5e-5",
                                      "--sweep", "discrete=16"])
    assert result.exit_code == 0, result.output
    assert "Headline numbers" in result.output and "leakage ratio" in result.output
    folder, = (workbench_dirs["cache"] / "studies").glob("seed002-tiny-s0-first_person-*")
    record = json.loads((folder / "study.json").read_text())
    assert record["paper"] == "seed002" and all(s["status"] == "done" for s in record["stages"].values())
    assert set(record["world_models"]) == {"noisy-beta0.001", "noisy-beta5e-05", "discrete-codebook_size16", "free",
                                           "zero", "action-motion"}
    assert set(record["ood"]["world_models"]) == {"ood-noisy-beta0.001", "ood-discrete-codebook_size16", "ood-zero"}
    assert record["ood"]["eval_games"] == ["freedoom2_flick"]
    assert len(record["controllers"]) == 4 * 2 and len(record["ood"]["controllers"]) == 2
    assert record["action_space"] == "motion"
    levels = pd.read_csv(folder / "levels.csv", keep_default_na=False).set_index("model")
    assert levels.loc["noisy-beta0.001", "level"] == "Low" and levels.loc["noisy-beta5e-05", "level"] == "High"
    capacity = pd.read_csv(folder / "capacity.csv")
    assert set(capacity.family) == {"noisy", "discrete", "free", "zero", "action"}
    assert np.isfinite(capacity.error).all()
    leakage = pd.read_csv(folder / "leakage.csv")
    assert len(leakage) == 4 + 1 and (leakage.ratio > 0).all() and "level" in leakage  # + zero, the no-leak control
    assert list(leakage.family).count("zero") == 1
    clips = pd.read_csv(folder / "leakage_clips.csv")  # what a bootstrap over clips resamples
    assert np.isclose(clips.groupby("model").error.mean()["free"], leakage.set_index("model").loc["free", "error"])
    assert {"clip", "game", "error", "error_cut"} <= set(clips.columns)
    assert {"clip", "game", "error", "latent"} <= set(pd.read_csv(folder / "controllers_clips.csv").columns)
    planning = pd.read_csv(folder / "planning.csv")
    assert set(planning.method) == {"random", "still", "controller:xattn", "action_model"}
    navigation = pd.read_csv(folder / "navigation.csv")
    assert set(navigation.method) == {"random", "still", "straight_fit", "controller:xattn", "action_model"}
    assert np.isfinite(navigation[["ate", "rpe", "rpe_rot"]]).all().all()
    for name in ("capacity", "controllers_clips", "navigation"):  # tiny's one test block: no leakage/cycle pairs
        ood = pd.read_csv(folder / "ood" / f"{name}.csv")
        assert set(ood.game if "game" in ood else ["freedoom2_flick"]) == {"freedoom2_flick"}, name
        assert {"in-domain", "out-of-domain"} <= set(ood.arm), name
    health = pd.read_csv(folder / "health.csv")
    assert health.set_index("family").loc["discrete", "code_usage"] > 0
    strip = Image.open(folder / "filmstrips" / "noisy-beta0.001-0.png")
    assert strip.height == 5 * (32 * 2 + 2)  # five rows of 32 px frames at scale 2
    assert (folder / "filmstrips" / "noisy-beta0.001-0.gif").read_bytes()[:6] == b"GIF89a"
    assert Image.open(folder / "planning" / "action-motion-e0.png").height == 3 * (32 * 3 + 2)
    report = (folder / "report.md").read_text()
    for heading in ("Future leakage (Table 1)", "cycle consistency (Table 2)", "Tables S1/S2, left",
                    "Table S1, right", "Navigation planning (Table S2, right", "Out of domain", "Model health",
                    "Figure S1", "(Figure 4)", PAPER_TITLE, "not run at this size"):
        assert heading in report, heading
    assert "figures/capacity.png" in report and (folder / "figures" / "capacity.png").stat().st_size > 5000
    assert (folder / "figures" / "strength.png").stat().st_size > 5000
