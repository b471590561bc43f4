"""The claims ledger on constructed study tables whose answers are known."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from workbench.study.ledger import (INCONCLUSIVE, NO_UNITS, REFUTED, REPRODUCED, ledger, pooled, unit_measurement,
                                    unit_rows)

CLASSES = ["LEFT", "NEUTRAL", "RIGHT"]


def _accuracy_units(model: str, game: str, p_correct: float, n_blocks: int, rng, per_block: int = 30) -> pd.DataFrame:
    """Per-block balanced-accuracy rows of a model that is right with probability ``p_correct``."""
    n = n_blocks * per_block
    truth = rng.integers(0, 3, n)
    correct = rng.random(n) < p_correct
    return unit_rows("accuracy", correct, 1, game, np.repeat(np.arange(n_blocks), per_block),
                     np.array(CLASSES)[truth], model=model, game=game, head="steer")


def _seed000(folder, joint: float, single: float, n_blocks: int = 40, seed: int = 0, units: bool = True,
             config: dict | None = None):
    """A one-domain seed 000 study where joint v3 / single score ``joint`` / ``single`` on the small game."""
    rng = np.random.default_rng(seed)
    domain = folder / "racing"
    domain.mkdir(parents=True)
    record = {"config": config or {"study_id": folder.name, "size": "quotable", "seed": seed, "steps": 10},
              "code_version": "test", "started": "now", "finished": "now",
              "domains": {"racing": {"games": ["Big", "Small"], "models": {}, "timings": {}}}}
    (folder / "study.json").write_text(json.dumps(record))
    pd.DataFrame({"frames": [1000, 100], "steer_NEUTRAL": [0.6, 0.5]},
                 index=pd.Index(["Big", "Small"], name="game")).to_csv(domain / "data_summary.csv")
    pd.DataFrame({"model": ["joint_v3", "single:Small", "joint_v3"], "game": ["Small", "Small", "Big"],
                  "head": "steer", "chance": 1 / 3, "balanced_accuracy": [joint, single, 0.8]}
                 ).to_csv(domain / "accuracy.csv", index=False)
    if units:
        pd.concat([_accuracy_units("joint_v3", "Small", joint, n_blocks, rng),
                   _accuracy_units("single:Small", "Small", single, n_blocks, rng)]).to_csv(domain / "units.csv",
                                                                                           index=False)
    return folder


def _row(df: pd.DataFrame, claim: str) -> pd.Series:
    return df[df.claim == claim].iloc[0]


@pytest.mark.parametrize("joint, single, expected", [(0.8, 0.5, REPRODUCED), (0.4, 0.7, REFUTED),
                                                     (0.6, 0.6, INCONCLUSIVE)])
def test_verdict_follows_the_interval(tmp_path, joint, single, expected):
    row = _row(ledger(_seed000(tmp_path / "s", joint, single), n_boot=500), "joint-helps-small-game")
    assert row.scope == "racing / Small" and row.verdict == expected
    assert row.ci_low <= row.estimate <= row.ci_high and row.n_units == 40
    assert abs(row.estimate - (joint - single)) < 0.1  # computed from the units, near the planted gap
    assert row.control_estimate == single  # the single-game model's own number


def test_without_per_block_data_there_is_no_interval(tmp_path):
    df = ledger(_seed000(tmp_path / "s", 0.9, 0.3, units=False))
    row = _row(df, "joint-helps-small-game")
    assert row.verdict == NO_UNITS and np.isnan(row.ci_low) and row.estimate == pytest.approx(0.6)
    assert _row(df, "clusters-by-action").verdict.startswith("inconclusive: not measured")


def test_a_handful_of_blocks_gives_no_interval(tmp_path):
    row = _row(ledger(_seed000(tmp_path / "s", 0.9, 0.3, n_blocks=4)), "joint-helps-small-game")
    assert row.verdict.startswith("inconclusive: too few units (4 test blocks") and np.isnan(row.ci_low)


def test_units_pool_over_seeds(tmp_path):
    """A small game with 3 test blocks per seed: no interval from 2 seeds (6 blocks), a two-stage
    one from 3 seeds (9 blocks) that the planted gap lies in."""
    for s in range(3):
        _seed000(tmp_path / f"seed000-quotable-s{s}", 0.9, 0.4, n_blocks=3, seed=s)
    row = _row(ledger(tmp_path / "seed000-quotable-s0", n_boot=500), "joint-helps-small-game")
    assert row.seeds == 3 and row.n_units == 9 and row.verdict == REPRODUCED
    assert row.ci_low < 0.5 < row.ci_high
    shutil.rmtree(tmp_path / "seed000-quotable-s2")
    row = _row(ledger(tmp_path / "seed000-quotable-s0", n_boot=500), "joint-helps-small-game")
    assert row.verdict.startswith("inconclusive: too few units (6 test blocks") and np.isnan(row.ci_low)


def test_three_seed_replicates_give_an_interval_without_units(tmp_path):
    for s, gap in enumerate((0.30, 0.32, 0.28)):
        _seed000(tmp_path / f"seed000-quotable-s{s}", 0.5 + gap, 0.5, seed=s, units=False)
    _seed000(tmp_path / "other", 0.1, 0.9, units=False)  # another config: not a replicate
    record = json.loads((tmp_path / "other" / "study.json").read_text())
    record["config"]["steps"] = 99
    (tmp_path / "other" / "study.json").write_text(json.dumps(record))
    row = _row(ledger(tmp_path / "seed000-quotable-s0", n_boot=500), "joint-helps-small-game")
    assert row.seeds == 3 and row.estimate == pytest.approx(0.30)
    assert 0.28 - 1e-9 <= row.ci_low < row.ci_high <= 0.32 + 1e-9 and row.verdict == REPRODUCED


def test_interval_narrows_with_more_blocks():
    rng = np.random.default_rng(1)
    widths = []
    for n_blocks in (10, 160):
        units = _accuracy_units("m", "g", 0.7, n_blocks, rng)
        m = unit_measurement(units, lambda q: q("accuracy", model="m"))
        stats = pooled([m], n_boot=1000)
        assert stats["ci_low"] < m.point < stats["ci_high"]
        widths.append(stats["ci_high"] - stats["ci_low"])
    assert widths[1] < widths[0] / 2.5  # ~ 1/sqrt(16)


def test_balanced_accuracy_from_units_matches_sklearn():
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(2)
    truth, pred = rng.integers(0, 3, 500), rng.integers(0, 3, 500)
    truth[:300] = pred[:300]
    units = unit_rows("accuracy", truth == pred, 1, "g", np.arange(500) // 25, truth, model="m")
    m = unit_measurement(units, lambda q: q("accuracy", model="m"))
    assert m.point == pytest.approx(balanced_accuracy_score(truth, pred))


def _seed002(folder, config: dict | None = None):
    """A seed 002 run whose controller plans clearly better than standing still, at twice the
    action-conditioned model's error."""
    rng = np.random.default_rng(3)
    rows = []
    for e in range(30):
        for method, level in (("still", 3.0), ("controller:mlp", 1.0), ("random", 4.0)):
            rows.append({"model": "noisy-beta0.001", "episode": e, "game": "G", "method": method,
                         "l1_std": level + rng.normal(0, 0.3)})
        rows.append({"model": "action-motion", "episode": e, "game": "G", "method": "action_model",
                     "l1_std": 0.5 + rng.normal(0, 0.1)})
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "planning.csv", index=False)
    (folder / "worldmodels.json").write_text(json.dumps({"config": config or {"study_id": folder.name, "seed": 0},
                                                        "code_version": "test", "started": "now",
                                                        "finished": "now"}))
    return folder


def test_seed002_planning_episodes_are_the_units(tmp_path):
    df = ledger(_seed002(tmp_path / "seed002-x"), n_boot=500)
    still, action = _row(df, "planning-beats-still"), _row(df, "planning-near-action-model")
    assert still.verdict == REPRODUCED and still.n_units == 30 and still.estimate == pytest.approx(2.0, abs=0.2)
    assert action.verdict == REFUTED and action.estimate == pytest.approx(2.0, abs=0.3)  # twice the error
    assert _row(df, "leakage-above-1").verdict.startswith("inconclusive: not measured")


def test_knn_claim_bootstraps_over_pairs_within_query_games(tmp_path):
    games = list("ABCDEF")
    rng = np.random.default_rng(6)
    row = np.linspace(0.2, 0.8, 6)[:, None]  # some games are easy (high KNN) and gain most from a partner
    within = rng.normal(0, 0.05, (6, 6))

    def claim(benefit_within):
        folder = _seed000(tmp_path / f"run{len(list(tmp_path.iterdir()))}" / "s", 0.7, 0.5, units=False)  # no replicates
        pd.DataFrame(row + within, index=games, columns=games).to_csv(folder / "racing" / "knn_matrix.csv")
        pd.DataFrame(row + benefit_within, index=games, columns=games).to_csv(folder / "racing" / "benefit_matrix.csv")
        return _row(ledger(folder, n_boot=300), "knn-predicts-benefit")

    helps = claim(2 * within)  # within each game, the pairs KNN ranks higher gain more
    assert helps.estimate == pytest.approx(1.0, abs=0.01) and helps.n_units == 30 and helps.verdict == REPRODUCED
    assert helps.control_estimate < 0.4  # the within-row permutation null's 95th percentile
    fooled = claim(-2 * within)  # only the game effect agrees: the raw ρ would be high, within games it is -1
    assert fooled.estimate == pytest.approx(-1.0, abs=0.01) and fooled.verdict == REFUTED
    games = games[:2]  # two games (racing, first-person): one partner per query game, nothing to rank
    row, within = row[:2], within[:2, :2]
    assert "2 games; ranking partners within each query game needs ≥ 3" in claim(within).verdict


def test_findings_run_skips_finished_studies_and_write_makes_both_documents(tmp_path, monkeypatch):
    from dataclasses import asdict

    from workbench.study import findings
    from workbench.core.paths import studies_dir
    from workbench.methods.idm.study import StudyConfig
    from workbench.methods.worldmodel.study import WorldModelStudyConfig

    for s in (0, 1, 2):
        cfg = findings.replicate_config(StudyConfig, "tiny", s)
        _seed000(studies_dir() / cfg.study_id, 0.8, 0.5, seed=s, config=json.loads(json.dumps(asdict(cfg))))
        wm = findings.replicate_config(WorldModelStudyConfig, "tiny", s)
        _seed002(studies_dir() / wm.study_id, config=json.loads(json.dumps(asdict(wm))))

    def not_again(*args, **kwargs):
        raise AssertionError("a finished study ran again")
    monkeypatch.setattr(findings, "run_study", not_again)
    monkeypatch.setattr(findings, "run_worldmodel_study", not_again)
    said = []
    folders = findings.run_findings("tiny", (0, 1, 2), log=said.append)
    assert len(folders["seed000"]) == 3 and all("skipped" in line for line in said)

    seed000, seed002 = findings.write_findings("tiny", (0, 1, 2), tmp_path / "docs")
    text = seed000.read_text()
    assert seed000.name == "seed000.md" and "## Claims ledger" in text and "seed000-tiny-s2" in text
    assert "joint-helps-small-game" in text and "reproduced" in text and '"size": "tiny"' in text
    assert "planning-beats-still" in seed002.read_text() and "In The Wild" in seed002.read_text()
    assert "**Seeds:** 0, 1, 2 finished." in text
    with pytest.raises(FileNotFoundError, match="workbench findings run"):
        findings.write_findings("demo", (0,), tmp_path / "docs")
    # a batch still running: seed 3 asked for, seed002's seed 0 unfinished
    from workbench.study.framework import record_file

    record_file(studies_dir() / findings.replicate_config(WorldModelStudyConfig, "tiny", 0).study_id).unlink()
    written = findings.write_findings("tiny", (0, 3), tmp_path / "partial")
    assert [p.name for p in written] == ["seed000.md"]  # seed002 has no finished seed among 0 and 3
    assert "3 still to run" in written[0].read_text()

    from typer.testing import CliRunner

    from workbench.cli import app

    result = CliRunner().invoke(app, ["findings", "write", "--size", "tiny", "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0 and (tmp_path / "cli" / "seed002.md").is_file()
    result = CliRunner().invoke(app, ["findings", "run", "--seeds", "0,x"])
    assert result.exit_code == 2 and "expected comma-separated integers" in result.output
    result = CliRunner().invoke(app, ["findings", "run", "--study", "seed001"])
    assert result.exit_code == 2 and "seed001: unknown" in result.output
    result = CliRunner().invoke(app, ["findings", "run", "--size", "tiny", "--study", "seed000"])
    assert result.exit_code == 0 and result.output.count("skipped") == 3  # seed 000's three, finished
    result = CliRunner().invoke(app, ["findings", "run", "--size", "tiny", "--rerun", "evaluate"])
    assert result.exit_code == 2 and "needs one study" in result.output
    # --rerun runs finished studies again, passing the stages on to the study's runner
    reran = []
    monkeypatch.setattr(findings, "STUDIES", {"seed000": (StudyConfig, lambda cfg, progress, rerun: reran.append(
        (cfg.seed, rerun)) or studies_dir() / cfg.study_id)})
    monkeypatch.setattr(findings, "write_report", lambda folder: None)
    result = CliRunner().invoke(app, ["findings", "run", "--size", "tiny", "--study", "seed000", "--rerun", "racing"])
    assert result.exit_code == 0 and "reruns racing" in result.output and reran == [(s, ("racing",)) for s in (0, 1, 2)]


def test_accuracy_units_of_an_embeddings_dataset_match_its_accuracy_table():
    import xarray as xr

    from workbench.analysis.metrics import accuracy_table
    from workbench.study.ledger import accuracy_units

    rng = np.random.default_rng(4)
    n = 400
    y = rng.integers(-1, 3, n)  # -1: unlabeled
    pred = np.where(rng.random(n) < 0.6, y.clip(0), rng.integers(0, 3, n))
    emb = xr.Dataset({"steer": ("frame", y, {"classes": CLASSES}), "pred_steer": ("frame", pred)},
                     coords={"game": ("frame", np.repeat(["A", "B"], n // 2)),
                             "source_frame": ("frame", np.arange(n)), "split": ("frame", np.full(n, "test"))})
    units = accuracy_units(emb, "joint_v3", "steer", block=16)
    assert set(units.unit) == set(range(n // 16)) and set(units.stratum) == {"A", "B"}
    table = accuracy_table(emb, heads=["steer"], split="test").set_index("game")
    for game in ("A", "B"):
        m = unit_measurement(units, lambda q, g=game: q("accuracy", model="joint_v3", game=g, head="steer"))
        assert m.point == pytest.approx(table.loc[game, "balanced_accuracy"])


def test_test_predictions_table_gives_block_units_for_the_calibration_claims(tmp_path):
    """A seed 000 domain saved the way the study does (test_predictions.csv): 50 labels close the
    whole gap (0.3 -> 0.9 right), the flow p67 equals the ceiling but ±1 pp is finer than 40 blocks resolve."""
    folder = _seed000(tmp_path / "s", 0.8, 0.5, units=False)
    rng = np.random.default_rng(5)
    n = 2400
    truth = np.array(CLASSES)[rng.integers(0, 3, n)]

    def predict(p):  # right with probability p, else a random class
        return np.where(rng.random(n) < p, truth, np.array(CLASSES)[rng.integers(0, 3, n)])
    frames = pd.DataFrame({"game": "Small", "episode": 0, "step": np.arange(n), "source_frame": np.arange(n),
                           "block": np.arange(n) // 60, "steer": truth, "joint_v3": predict(0.3),
                           "ceiling": predict(0.9), "few_shot_draw_0": predict(0.9), "few_shot_draw_1": predict(0.9),
                           "flow_percentile": predict(0.9), "single": ""})
    frames.loc[:9, "few_shot_draw_1"] = ""  # a frame a method did not predict is left out
    frames.to_csv(folder / "racing" / "test_predictions.csv", index=False)
    pd.DataFrame({"zero_shot": [0.5], "ceiling": [0.9], "gap": [0.4], "few_shot": [0.9], "flow_percentile": [0.9]},
                 index=pd.Index(["Small"], name="game")).to_csv(folder / "racing" / "calibration_gap.csv")
    df = ledger(folder, n_boot=500)
    fifty, p67 = _row(df, "fifty-labels-close-gap"), _row(df, "p67-near-ceiling")
    assert fifty.n_units == 40 and fifty.estimate == pytest.approx(1.0, abs=0.1) and fifty.verdict == REPRODUCED
    assert p67.verdict == INCONCLUSIVE and p67.ci_low < 0 < p67.ci_high  # ±1 pp is tighter than 40 blocks allow
    assert _row(df, "joint-helps-small-game").verdict == NO_UNITS  # no single-game predictions saved


def test_seed002_clip_tables_are_the_units_of_leakage_cycle_and_controller_claims(tmp_path):
    """The runner's per-clip tables (``*_clips.csv``) give the leakage, cycle and controller claims
    their intervals; the controller claim reads the longest horizon only."""
    folder = _seed002(tmp_path / "seed002-x")
    rng = np.random.default_rng(5)
    clips = pd.DataFrame({"clip": np.arange(24), "game": np.repeat(["A", "B"], 12)})

    def per_clip(model, family="noisy", **columns):
        return clips.assign(model=model, model_id=f"seed002-x.{model}", pairing="across", family=family,
                            **{k: v + rng.normal(0, 0.05, len(clips)) for k, v in columns.items()})
    # the zero model (no latent) is the control: where a latent that carries nothing sits
    leak = pd.concat([per_clip("noisy-a", error=1.0, error_cut=2.5), per_clip("noisy-b", error=1.0, error_cut=1.0),
                      per_clip("zero", "zero", error=1.0, error_cut=2.6)])
    leak.to_csv(folder / "leakage_clips.csv", index=False)
    means = leak.groupby(["model_id", "model", "family", "pairing"], as_index=False)[["error", "error_cut"]].mean()
    means.assign(ratio=means.error_cut / means.error).to_csv(folder / "leakage.csv", index=False)
    # noisy-a has more capacity (lower one-step error) and a worse cycle ratio (1.5 vs 1.1)
    cycle = pd.concat([per_clip("noisy-a", error=1.0, error_cycle=1.5), per_clip("noisy-b", error=1.0, error_cycle=1.1)])
    cycle.to_csv(folder / "cycle_clips.csv", index=False)
    means = cycle.groupby(["model_id", "model", "pairing"], as_index=False)[["error", "error_cycle"]].mean()
    means.assign(ratio=means.error_cycle / means.error).to_csv(folder / "cycle.csv", index=False)
    pd.DataFrame({"model_id": ["seed002-x.noisy-a", "seed002-x.noisy-b"], "family": "noisy", "mode": "one_step",
                  "error": [0.1, 0.3]}).to_csv(folder / "capacity.csv", index=False)
    ctrl = pd.concat([per_clip("noisy-a", error=level).assign(kind="mlp", latent=latent, horizon=horizon)
                      for horizon, random in ((1, 1.0), (4, 3.0))
                      for latent, level in (("controller", 1.0), ("random_actions", random))])
    ctrl.to_csv(folder / "controllers_clips.csv", index=False)
    ctrl.groupby(["model", "kind", "latent", "horizon"], as_index=False)["error"].mean().to_csv(
        folder / "controllers.csv", index=False)

    df = ledger(folder, n_boot=500).set_index(["claim", "scope"])
    assert (df.loc[("leakage-above-1", "noisy-a"), "verdict"], df.loc[("leakage-above-1", "noisy-b"), "verdict"]) == (
        REPRODUCED, REFUTED)
    assert df.loc[("leakage-above-1", "noisy-a"), "n_units"] == 24
    assert df.loc[("leakage-above-1", "noisy-a"), "estimate"] == pytest.approx(2.5, abs=0.05)
    assert ("leakage-above-1", "zero") not in df.index  # the control, not a claim about a latent
    assert df.loc[("leakage-above-1", "noisy-b"), "control_estimate"] == pytest.approx(2.6, abs=0.05)
    cyc = df.loc[("cycle-worse-with-capacity", "noisy")]
    assert cyc.verdict == REPRODUCED and cyc.estimate == pytest.approx(0.4, abs=0.05) and cyc.n_units == 24
    ctl = df.loc[("controller-beats-random", "noisy-a · mlp")]
    assert ctl.verdict == REPRODUCED and ctl.estimate == pytest.approx(3.0, abs=0.1)  # horizon 4, not 1


def _embeddings(n: int, games, separation: float, rng):
    """An embeddings Dataset whose frames cluster by steering class (``separation`` apart), games mixed."""
    import xarray as xr

    y = rng.integers(0, 3, n)
    x = np.eye(3)[y] * separation + rng.normal(0, 1, (n, 3))
    game = np.resize(np.asarray(games), n)
    frame = np.zeros(n, np.int64)
    for g in pd.unique(game):
        frame[game == g] = np.arange((game == g).sum())
    return xr.Dataset({"embedding": (("frame", "dim"), np.c_[x, rng.normal(0, 1, (n, 5))].astype(np.float32)),
                       "steer": ("frame", y, {"classes": CLASSES}), "pred_steer": ("frame", y)},
                      coords={"game": ("frame", game), "source_frame": ("frame", frame),
                              "split": ("frame", np.full(n, "test"))})


def test_geometry_units_give_the_cluster_and_interleaving_claims_intervals(tmp_path):
    """Per-sample silhouettes and interleaving grouped by test block (the runner's units.csv):
    the units' point equals the saved summary, and action clusters with games mixed reproduce both claims."""
    from workbench.analysis.geometry import interleaving, silhouette_scores
    from workbench.study.ledger import geometry_units

    folder = _seed000(tmp_path / "s", 0.8, 0.5)
    domain = folder / "racing"
    emb = _embeddings(600, ["Big", "Small"], 6.0, np.random.default_rng(2))
    x, game = emb["embedding"].values, emb["game"].values
    action = np.array(CLASSES)[emb["steer"].values]
    sil, sil_rows = silhouette_scores(x, action, game, sample=500, return_values=True)
    inter, inter_rows = interleaving(x, action, game, return_values=True)
    assert sil_rows.index.isin(np.arange(600)).all() and len(sil_rows) == 500
    units = geometry_units(sil_rows, inter_rows, game, emb["source_frame"].values // 20)
    pd.concat([pd.read_csv(domain / "units.csv", keep_default_na=False), units]).to_csv(domain / "units.csv",
                                                                                        index=False)
    pd.Series({"silhouette_by_action": sil["by_action"], "silhouette_by_game": sil["by_game"]},
              name="value").to_frame().to_csv(domain / "geometry.csv")
    inter.to_csv(domain / "interleaving.csv")
    df = ledger(folder, n_boot=500)
    clusters, mixed = _row(df, "clusters-by-action"), _row(df, "interleaved")
    assert clusters.estimate == pytest.approx(sil["by_action"] - sil["by_game"])
    assert mixed.estimate == pytest.approx(inter.loc["all", "interleaving"])
    assert clusters.n_units == mixed.n_units == 30  # 15 blocks of 20 frames per game
    assert clusters.verdict == mixed.verdict == REPRODUCED and clusters.ci_low > 0.3 and mixed.ci_low > 0.8


def test_probe_units_match_the_probe_table_and_the_shuffled_control_sits_at_chance(tmp_path):
    from workbench.analysis.probes import linear_probe
    from workbench.study.ledger import probe_units

    emb = _embeddings(900, ["Small"], 3.0, np.random.default_rng(3))
    table, predictions = linear_probe(emb, heads=["steer"], variants=("per_game", "shuffled"), block=30,
                                      return_predictions=True)
    units = probe_units(emb, predictions, block=30)
    table = table.set_index("variant")
    for variant in ("per_game", "shuffled"):
        m = unit_measurement(units, lambda q, v=variant: q("probe", model=v, game="Small", head="steer"))
        assert m.point == pytest.approx(table.loc[variant, "balanced_accuracy"])
    assert table.loc["per_game", "balanced_accuracy"] > 0.8 and abs(table.loc["shuffled", "balanced_accuracy"] - 1 / 3) < 0.1

    folder = _seed000(tmp_path / "s", 0.5, 0.5)  # joint v3 zero-shot at 0.5 on Small
    table.reset_index().to_csv(folder / "racing" / "probes.csv", index=False)
    pd.concat([pd.read_csv(folder / "racing" / "units.csv", keep_default_na=False), units]).to_csv(
        folder / "racing" / "units.csv", index=False)
    row = ledger(folder, n_boot=500).set_index(["claim", "scope"]).loc[("probe-beats-zero-shot", "racing / Small")]
    assert row.verdict == REPRODUCED and row.n_units == 40  # blocks 0-29 of the probe are blocks of the IDM too
    assert row.control_estimate == pytest.approx(table.loc["shuffled", "balanced_accuracy"])


def test_movement_claim_gets_an_interval_from_key_w_and_steer_block_units(tmp_path):
    """joint v3 right on 90 % of frames for the forward key (2 classes) and 50 % for the camera
    (3 classes): chance-normalised 0.8 − 0.25 = 0.55 over 40 test blocks."""
    rng = np.random.default_rng(6)
    folder = tmp_path / "s"
    domain = folder / "first_person"
    domain.mkdir(parents=True)
    (folder / "study.json").write_text(json.dumps({
        "config": {"study_id": "s", "seed": 0}, "code_version": "test", "started": "now", "finished": "now",
        "domains": {"first_person": {"games": ["G"], "models": {}, "timings": {}}}}))
    pd.DataFrame({"model": "joint_v3", "game": "G", "head": ["key_w", "steer"], "chance": [0.5, 1 / 3],
                  "balanced_accuracy": [0.9, 0.5]}).to_csv(domain / "accuracy.csv", index=False)
    n = 40 * 30
    key = rng.integers(0, 2, n)
    pd.concat([unit_rows("accuracy", rng.random(n) < 0.9, 1, "G", np.arange(n) // 30, np.array(["OFF", "ON"])[key],
                         model="joint_v3", game="G", head="key_w"),
               _accuracy_units("joint_v3", "G", 0.5, 40, rng)]).to_csv(domain / "units.csv", index=False)
    row = _row(ledger(folder, n_boot=500), "movement-beats-camera")
    assert row.scope == "first_person / G" and row.n_units == 40 and row.verdict == REPRODUCED
    assert row.estimate == pytest.approx(0.55, abs=0.08)


def test_training_summary_says_which_models_ran_to_their_cap_still_improving(monkeypatch):
    from workbench.study import findings

    def card(steps, stopped, best, patience=3, every=10):
        return {"training": {"steps": steps, "early_stopping": {"patience": patience, "stopped_step": stopped,
                                                                "best_step": best}},
                "config": {"eval_every": every}}
    cards = {"m.single-a": card(50, 50, 20),   # stopped early: 3 evaluations without improving
             "m.single-b": card(100, None, 100),  # ran to the cap, best at the cap
             "m.single-c": card(100, None, 80),  # ran to the cap, best within the last 3 evaluations
             "m.joint_v3": card(60, 60, 30),
             "m.sweep": {"training": {"steps": 5}, "config": {}}}  # trained without early stopping: left out
    monkeypatch.setattr(findings, "list_models", lambda: list(cards))
    monkeypatch.setattr(findings, "load_card", cards.__getitem__)
    record = {"domains": {"racing": {"models": {"single:A": "m.single-a", "single:B": "m.single-b",
                                                "joint_v3": "m.joint_v3", "sweep": "m.sweep"},
                                     "store": "/not/a/model"}}, "code_version": "0.1.0"}
    again = {"domains": {"racing": {"models": {"single:C": "m.single-c", "single:A": "m.single-a"}}}}
    df = findings.training_summary([record, again])
    assert df.loc["single"].tolist() == [3, 1, 2, 1, 100]  # m.single-a counted once over the two records
    assert df.loc["joint_v3"].tolist() == [1, 1, 0, 0, 60]
    assert df.loc["all"].tolist() == [4, 2, 2, 1, 80]


def test_a_claim_measured_on_some_seeds_says_why_the_others_are_left_out(tmp_path):
    """Fifty labels: seeds 0 and 1 have a gap to close, seed 2 none; the pooled estimate stands on
    two seeds and its verdict says what the third had."""
    for s, gap in enumerate((0.2, 0.1, -0.05)):
        folder = _seed000(tmp_path / f"seed000-quotable-s{s}", 0.7, 0.5, seed=s, units=False)
        pd.DataFrame({"zero_shot": [0.5], "few_shot": [0.5 + gap], "gap": [gap]},
                     index=pd.Index(["Small"], name="game")).to_csv(folder / "racing" / "calibration_gap.csv")
    row = _row(ledger(tmp_path / "seed000-quotable-s0", n_boot=200), "fifty-labels-close-gap")
    assert row.seeds == 2 and row.estimate == pytest.approx(1.0)  # both gaps fully closed
    assert row.verdict.endswith("(1 of 3 seeds: no gap at this budget)")
    assert row.control_estimate == pytest.approx((0.2 + 0.1 - 0.05) / 3)  # every seed's gap


def test_ledger_table_prints_enough_digits_to_tell_a_bound_from_the_rule():
    """Before: a controller ratio 1.0002 [1.0001, 1.0004] printed "1 [1, 1]" beside a verdict of
    reproduced (rule > 1), and exactly 1 [1, 1] (inconclusive) looked the same."""
    from workbench.study.results import ledger_table

    rows = pd.DataFrame([{"claim": "c", "scope": s, "section": "§7", "quote": "q", "estimate": e, "ci_low": lo,
                          "ci_high": hi, "n_units": 256, "seeds": 1, "unit": "test clip", "control": "ctl",
                          "control_estimate": 0.44, "rule": "> 1", "rule_low": 1.0, "rule_high": np.inf,
                          "verdict": v, "note": ""}
                         for s, e, lo, hi, v in [("above", 1.0002, 1.0001, 1.0004, REPRODUCED),
                                                 ("equal", 1.0, 1.0, 1.0, INCONCLUSIVE),
                                                 ("plain", 2.6875, 2.47, 2.91, REPRODUCED)]])
    shown = ledger_table(rows).set_index("scope")["estimate [95 % CI]"]
    assert shown["above"] == "1.0002 [1.0001, 1.0004]"
    assert shown["equal"] == "1 [1, 1]"
    assert shown["plain"] == "2.69 [2.47, 2.91]"  # three significant digits where they suffice
