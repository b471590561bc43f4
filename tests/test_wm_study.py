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
from workbench.study.wm_report import controller_table, cycle_table, leakage_table, planning_table
from workbench.study.worldmodels import WorldModelStudyConfig, world_model_configs


def test_config_budgets_ids_and_the_models_of_a_run():
    cfg = WorldModelStudyConfig(size="demo")
    assert cfg.steps == 3000 and cfg.study_id == "seed002-first_person-demo-s0"
    custom = WorldModelStudyConfig(size="tiny", steps=9).study_id
    assert custom.startswith("seed002-first_person-tiny-s0-") and custom != WorldModelStudyConfig(size="tiny").study_id
    assert WorldModelStudyConfig(size="tiny", steps=8).study_id not in (custom, WorldModelStudyConfig(size="tiny").study_id)
    with pytest.raises(ValueError, match="unknown families"):
        WorldModelStudyConfig(sweeps={"gaussian": [1]})
    with pytest.raises(ValueError, match="invalid study id"):
        WorldModelStudyConfig(study_id="../x")
    configs = world_model_configs(WorldModelStudyConfig(size="demo", sweeps={"noisy": [1e-3, 5e-5]}), "enc", "motion")
    assert list(configs) == ["noisy-beta0.001", "noisy-beta5e-05", "zero", "action-motion"]
    assert {c.encoder for c in configs.values()} == {"enc"}
    assert configs["noisy-beta5e-05"].beta == 5e-5 and configs["action-motion"].action_space == "motion"
    assert configs["zero"].model_id.startswith("seed002-first_person-demo-s0-") and configs["zero"].model_id.endswith(".zero")


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


@pytest.mark.slow
def test_tiny_batch_run_cli_end_to_end(workbench_dirs):
    result = CliRunner().invoke(app, ["worldmodel", "study", "--size", "tiny", "--sweep", "noisy=1e-3",
                                      "--sweep", "discrete=4"])
    assert result.exit_code == 0, result.output
    assert "Headline numbers" in result.output and "leakage ratio" in result.output
    folder, = (workbench_dirs["cache"] / "studies").glob("seed002-first_person-tiny-s0-*")
    record = json.loads((folder / "worldmodels.json").read_text())
    assert set(record["world_models"]) == {"noisy-beta0.001", "discrete-codebook_size4", "zero", "action-motion"}
    assert len(record["controllers"]) == 2 * 2 and record["action_space"] == "motion"
    capacity = pd.read_csv(folder / "capacity.csv")
    assert set(capacity.family) == {"noisy", "discrete", "zero", "action"} and np.isfinite(capacity.error).all()
    leakage = pd.read_csv(folder / "leakage.csv")
    assert len(leakage) == 2 and (leakage.ratio > 0).all()
    planning = pd.read_csv(folder / "planning.csv")
    assert set(planning.method) == {"random", "still", "controller:xattn", "controller:mlp", "action_model"}
    health = pd.read_csv(folder / "health.csv")
    assert health.set_index("family").loc["discrete", "code_usage"] > 0
    strip = Image.open(folder / "filmstrips" / "noisy-beta0.001-0.png")
    assert strip.height == 5 * (32 * 2 + 2)  # five rows of 32 px frames at scale 2
    assert (folder / "filmstrips" / "noisy-beta0.001-0.gif").read_bytes()[:6] == b"GIF89a"
    assert Image.open(folder / "planning" / "action-motion-e0.png").height == 3 * (32 * 3 + 2)
    report = (folder / "report.md").read_text()
    for heading in ("Future leakage (Table 1)", "cycle consistency (Table 2)", "Tables S1/S2, left",
                    "Tables S1/S2, right", "Model health", "Figure S1"):
        assert heading in report, heading
    assert "figures/capacity.png" in report and (folder / "figures" / "capacity.png").stat().st_size > 5000
