"""What `workbench` commands used to compute themselves, tested where it now lives: building configs
from options, parsing sweeps, the evaluation-table choice, the leak audit's region table, and the
catalog listing rows."""

from __future__ import annotations

import pandas as pd
import pytest

from workbench.core.errors import ConfigError


def test_idm_config_from_options_uses_the_preset_or_the_file():
    from workbench.methods.idm.config import TrainConfig, config_from_options

    cfg = config_from_options("finetune_k", {"init_from": "m", "seed": 3}, finetune_game="Enduro")
    assert cfg.finetune == {"k_per_class": 50, "game": "Enduro"} and cfg.steps == 300 and cfg.seed == 3
    base = TrainConfig(datasets=["racing"], steps=7, seed=5).to_dict()
    cfg = config_from_options("finetune_k", {**base, "lr": 0.5}, from_file=True)
    assert (cfg.name, cfg.steps, cfg.seed, cfg.lr, cfg.finetune) == ("joint_v1", 7, 5, 0.5, None)  # no preset
    with pytest.raises(ConfigError, match="unknown preset"):
        config_from_options("nope", {"datasets": ["racing"]})


def test_knob_fields_name_each_familys_knob():
    from workbench.methods.worldmodel.config import knob_fields

    assert knob_fields("discrete", 16.0) == {"codebook_size": 16} and knob_fields("noisy", 1e-3) == {"beta": 1e-3}
    assert knob_fields("sparse", 0.1) == {"l1": 0.1} and knob_fields("zero", None) == {}
    with pytest.raises(ConfigError, match="no capacity knob"):
        knob_fields("zero", 1.0)


def test_sweeps_and_ood_games_from_the_command_line():
    from workbench.methods.worldmodel.study import parse_ood_games, parse_sweeps

    assert parse_sweeps(["noisy=1e-3,5e-5", "discrete=16"]) == {"noisy": [1e-3, 5e-5], "discrete": [16]}
    assert parse_sweeps(None) is None and parse_sweeps([]) is None
    for bad, message in (("noisy", "FAMILY=V1,V2"), ("noisy=a", "must be numbers")):
        with pytest.raises(ConfigError, match=message):
            parse_sweeps([bad])
    assert parse_ood_games(None) is None and parse_ood_games(["none"]) == [] and parse_ood_games(["a"]) == ["a"]


def test_levels_config_from_games_or_a_set():
    from workbench.play.levels import level_sets, levels_config

    cfg = levels_config("doom", ["take_cover", "basic"], None, episodes=2)
    assert cfg.games == {"take_cover": 1000, "basic": 1000} and cfg.run_id == "levels-take_cover-basic-n2-s0"
    doom = levels_config("doom", (), 9)
    assert set(doom.games) == set(level_sets()["doom"]["games"]) and set(doom.games.values()) == {9}
    with pytest.raises(ConfigError, match="unknown level set"):
        levels_config("nope")


def test_an_unknown_evaluation_table_is_refused_before_any_model_loads():
    from workbench.methods.worldmodel.health import evaluation_table

    with pytest.raises(ConfigError, match="--table must be one of"):
        evaluation_table("accuracy", ["no-such-model"])


def test_audit_regions_is_one_row_per_region_and_one_column_per_feature():
    from workbench.analysis.leaks import audit_regions

    table = pd.DataFrame({"game": ["G"] * 4, "head": ["steer"] * 4, "region": ["bottom", "bottom", "top", "top"],
                          "feature": ["frame", "motion"] * 2, "balanced_accuracy": [0.9, 0.6, 0.5, 0.6]})
    regions = audit_regions(table)
    assert list(regions.index.get_level_values("region")) == ["bottom", "top"]
    assert regions.loc[("G", "steer", "bottom"), "frame"] == 0.9 and list(regions.columns) == ["frame", "motion"]


def test_catalog_rows_describe_each_entry(workbench_dirs):
    from workbench.data.catalog import catalog_rows, load_catalog

    rows = {row[0]: row for row in catalog_rows(load_catalog())}
    assert rows["racing"][1] == "record:ale,carracing" and "Enduro" in rows["racing"][2] and rows["racing"][4] == "no"
