"""Seed 003's three levels on constructed episodes whose answers are known by hand."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from workbench.analysis import levels

ROOT = Path(__file__).resolve().parents[1]


def episodes(rows: list[tuple], cap: int = 200, **extra) -> pd.DataFrame:
    """An episode table from ``(agent, game, steps, terminated, return)`` tuples; seeds count up."""
    df = pd.DataFrame(rows, columns=["agent", "game", "steps", "terminated", "return"])
    df["seed"] = np.arange(len(df))
    df["cap"] = cap
    df["truncated"] = ~df["terminated"] & (df["steps"] == cap)
    for name, values in extra.items():
        df[name] = values
    return df


# ---------------------------------------------------------------------------------- Survival

def test_an_agent_that_never_dies_is_censored_at_the_cap():
    table = levels.survival_table(episodes([("immortal", "Seaquest", 200, False, 0.0)] * 4), n_resamples=200)
    row = table.iloc[0]
    assert (row.failures, row.censored) == (0, 4)
    assert row.rmst == row.rmst_ci_low == row.rmst_ci_high == 200.0
    assert row.rmst_over_cap == 1.0
    assert np.isnan(row.median_survival)  # the curve never reaches 0.5
    curve = levels.survival_curves(episodes([("immortal", "Seaquest", 200, False, 0.0)] * 4))
    assert curve["survival"].tolist() == [1.0, 1.0] and curve["censored"].tolist() == [0, 4]


def test_kaplan_meier_matches_the_textbook_6mp_example():
    """Freireich et al. 1963, 6-MP arm (remission weeks, * = censored), as in Kleinbaum & Klein's
    survival-analysis textbook: S = 0.857, 0.807, 0.753, 0.690, 0.627, 0.538, 0.448; median 23."""
    failed = [6, 6, 6, 7, 10, 13, 16, 22, 23]
    censored = [6, 9, 10, 11, 17, 19, 20, 25, 32, 32, 34, 35]
    time = np.array(failed + censored, float)
    event = np.array([True] * len(failed) + [False] * len(censored))
    curve = levels.kaplan_meier(time, event)
    at_events = curve[curve["events"] > 0]
    assert at_events["time"].tolist() == [6, 7, 10, 13, 16, 22, 23]
    assert at_events["at_risk"].tolist() == [21, 17, 15, 12, 11, 7, 6]
    expected = np.cumprod([18 / 21, 16 / 17, 14 / 15, 11 / 12, 10 / 11, 6 / 7, 5 / 6])
    np.testing.assert_allclose(at_events["survival"], expected)
    np.testing.assert_allclose(at_events["survival"], [0.857, 0.807, 0.753, 0.690, 0.627, 0.538, 0.448], atol=6e-4)
    assert levels.median_survival(curve) == 23
    # area under the step function up to week 35, interval by interval
    steps = [(0, 6, 1.0), *zip([6, 7, 10, 13, 16, 22, 23], [7, 10, 13, 16, 22, 23, 35], expected)]
    assert levels.restricted_mean(time, event, 35) == pytest.approx(sum((b - a) * s for a, b, s in steps))
    assert levels.restricted_mean(time, event, 35) == pytest.approx(23.287, abs=1e-3)


def test_rmst_is_the_mean_capped_lifetime_when_censoring_is_at_the_cap():
    life = np.random.default_rng(1).integers(1, 400, size=50)
    steps = np.minimum(life, 200)
    rmst = levels.restricted_mean(steps, life < 200, 200)
    assert rmst == pytest.approx(steps.mean())
    # an early stop (neither failed nor capped) is censored, not counted as a death
    assert levels.restricted_mean([50, 100], [False, True], 200) == pytest.approx(100.0)
    assert levels.restricted_mean([50, 100], [True, True], 200) == pytest.approx(75.0)


def test_failure_step_counts_the_failure_not_the_game_over():
    """ALE: a life lost at step 30 while the game played on to step 150."""
    df = episodes([("a", "Hero", 150, True, 10.0), ("a", "Hero", 200, False, 10.0)],
                  failure_step=[30.0, np.nan])
    time, event = levels.failure_times(levels.validate_episodes(df))
    assert time.tolist() == [30.0, 200.0] and event.tolist() == [True, False]


def test_the_paper_normalisations_side_by_side():
    df = episodes([("random", "g", s, True, 0.0) for s in (40, 60, 80)]
                  + [("agent", "g", 120, True, 0.0)] * 3 + [("expert", "g", 200, False, 0.0)] * 3)
    table = levels.survival_table(df, reference_agent="expert", n_resamples=100).set_index("agent")
    assert table.loc["random", "rmst"] == pytest.approx(60.0)
    assert table.loc["agent", "t_typ"] == 60.0           # random's KM median (§5.1)
    assert table.loc["agent", "survival_typ"] == pytest.approx(2.0)
    assert table.loc["agent", "h_unit"] == 100.0         # 10^(floor(log10 60) + 1), Eq. 10
    assert table.loc["agent", "survival_unit"] == pytest.approx(1.2)
    assert table.loc["agent", "survival_ref_norm"] == pytest.approx((120 - 60) / (200 - 60))
    assert table.loc["random", "survival_ref_norm"] == 0.0 and table.loc["expert", "survival_ref_norm"] == 1.0
    # a reference that survives less than random: Eq. 12 would rank the better agent lower, so no score
    worse = levels.survival_table(df, reference_agent="agent", random_agent="expert", n_resamples=50)
    assert worse["survival_ref_norm"].isna().all() and worse["survival_ref_norm_ci_low"].isna().all()
    assert levels.step_unit(999) == 1000 and levels.step_unit(1000) == 10000


def test_bad_episode_tables_fail_with_one_line():
    good = episodes([("a", "g", 10, True, 0.0)])
    with pytest.raises(ValueError, match="missing columns.*'cap'"):
        levels.survival_table(good.drop(columns="cap"))
    with pytest.raises(ValueError, match="steps outside"):
        levels.survival_table(good.assign(steps=300))
    mixed = pd.concat([good, good.assign(cap=500)], ignore_index=True)
    with pytest.raises(ValueError, match="different caps"):
        levels.survival_table(mixed)
    with pytest.raises(ValueError, match="column 'steps' must be int64"):
        levels.survival_table(good.assign(steps="ten"))
    with pytest.raises(ValueError, match="column 'terminated' must hold True/False"):
        levels.survival_table(good.assign(terminated="False"))  # a CSV string would read as True
    with pytest.raises(ValueError, match="failure_step outside"):
        levels.survival_table(good.assign(failure_step=11.0))


def test_bootstrap_intervals_are_seeded_and_bracket_the_estimate():
    df = episodes([("a", "g", s, True, float(s)) for s in (20, 50, 90, 120, 160)])
    first = levels.utility_table(df, n_resamples=500, seed=3)
    again = levels.utility_table(df, n_resamples=500, seed=3)
    pd.testing.assert_frame_equal(first, again)
    row = first.iloc[0]
    assert row.return_ci_low < row["return"] < row.return_ci_high
    assert 20 <= row.return_ci_low and row.return_ci_high <= 160
    assert np.isnan(levels.utility_table(df.head(1), n_resamples=50).iloc[0].return_ci_low)  # one episode: no interval


# ---------------------------------------------------------------------------------- Curiosity

def test_magnitude_known_values():
    assert levels.magnitude(np.zeros((1, 1)), [0.0, 1.0, 100.0]).tolist() == [1.0, 1.0, 1.0]
    d, ts = 2.0, np.array([0.0, 0.1, 0.5, 1.0, 3.0])
    two = np.array([[0.0, d], [d, 0.0]])
    np.testing.assert_allclose(levels.magnitude(two, ts), 2 / (1 + np.exp(-ts * d)))
    # n points far apart: the magnitude tends to n as t grows
    far = 100.0 * (1 - np.eye(5))
    np.testing.assert_allclose(levels.magnitude(far, [10.0]), [5.0])
    assert levels.magnitude(far, [0.0])[0] == 1.0
    # the convergence scale is where the two-point space reaches 0.95 x 2
    t = levels.convergence_scale(two)
    assert 2 / (1 + np.exp(-t * d)) == pytest.approx(1.9, rel=1e-4)
    # E for two points: trapezoid area of 2/(1+exp(-t d)) on [0, t_max], over t_max
    e, scales, mag = levels.magnitude_area(two, 3.0, n_scales=30)
    assert e == pytest.approx(np.trapezoid(2 / (1 + np.exp(-scales * d)), scales) / 3.0)
    assert 1.0 < e < 2.0


def test_a_trajectory_that_stays_put_has_minimal_magnitude():
    rng = np.random.default_rng(0)
    still = np.tile(rng.normal(size=16), (300, 1))
    jitter = still + 1e-6 * rng.normal(size=still.shape)
    moving = rng.normal(size=(300, 16)).cumsum(axis=0)
    df = episodes([("random", "g", 300, False, 0.0), ("still", "g", 300, False, 0.0),
                   ("jitter", "g", 300, False, 0.0)], cap=300, embedding=[moving, still, jitter])
    table = levels.curiosity_episodes(df).set_index("agent")
    assert table.loc["still", "n_points"] == 1
    assert table.loc["still", "curiosity_auc"] == table.loc["still", "curiosity_auc_own"] == 1.0
    assert table.loc["jitter", "curiosity_auc"] == pytest.approx(1.0, abs=1e-3)
    assert table.loc["random", "n_points"] == levels.N_SUB and not table.loc["random", "all_frames"]
    assert table.loc["random", "curiosity_auc"] > 10
    assert table.loc["random", "t_ref"] == table.loc["random", "t_conv"]  # shared scale from the random agent
    curves = levels.magnitude_curves(df, table.reset_index())
    assert (curves.loc[curves.agent == "still", "magnitude"] == 1.0).all()
    assert curves.groupby("agent")["t_over_ref"].max().eq(1.0).all()


def test_shared_scale_keeps_spread_while_the_own_scale_forgets_it():
    """Magnipy's per-episode scale makes E blind to the trajectory's size; a shared t_ref does not."""
    rng = np.random.default_rng(2)
    walk = rng.normal(size=(100, 8)).cumsum(axis=0)
    df = episodes([("random", "g", 100, False, 0.0), ("wide", "g", 100, False, 0.0)], cap=100,
                  embedding=[walk, 3 * walk])
    table = levels.curiosity_episodes(df, normalise=False).set_index("agent")
    assert table.loc["wide", "curiosity_auc_own"] == pytest.approx(table.loc["random", "curiosity_auc_own"], rel=1e-3)
    assert table.loc["wide", "curiosity_auc"] > table.loc["random", "curiosity_auc"] + 5


def test_coverage_counts():
    xy = np.array([[0, 0], [10, 10], [63.9, 0], [64, 0], [-1, 0], [130, 200]], float)
    assert levels.map_cells(xy) == 4          # (0,0) x3, (1,0), (-1,0), (2,3)
    assert levels.map_cells(xy, cell=1000) == 2
    ram = np.zeros((5, 128), np.uint8)
    ram[2, 7] = ram[3, 7] = 1
    ram[4, 0] = 9
    assert levels.distinct_states(ram) == 3
    assert levels.tiles_visited([3, 3, 4, -1, 0]) == 3
    df = episodes([("a", "g", 6, False, 0.0)], cap=6, embedding=[np.eye(6)], positions=[xy])
    row = levels.curiosity_episodes(df).iloc[0]
    assert (row.coverage, row.coverage_kind) == (4.0, "map cells (64 u)")


def test_ram_coverage_leaves_out_counter_bytes():
    """A 60-step episode whose game state takes 3 values, beside a frame counter (+4 a step, wrapping),
    a timer (-1 a step), a toggle and a ball that moves, stops and turns back: 3 RAM states."""
    steps = 60
    ram = np.zeros((steps, 128), np.uint8)
    ram[:, 8] = (np.arange(steps) * 4 + 200) % 256        # frame counter, wraps at step 14
    ram[:, 9] = (100 - np.arange(steps)) % 256              # timer
    ram[:, 10] = np.arange(steps) % 2                       # toggle
    ram[:, 20] = np.repeat([0, 1, 2], steps // 3)           # the game's state: 3 values
    ram[:, 49] = np.abs((np.arange(steps) % 20) - 10) // 2 * 2  # a ball: steps of 2, pauses, bounces
    ram[:, 49] = np.where(np.arange(steps) % 7 == 0, 0, ram[:, 49])
    counters = levels.counter_bytes(ram)
    assert set(np.flatnonzero(counters)) == {8, 9, 10}
    assert levels.distinct_states(ram) == steps             # the raw count only counts steps
    assert levels.ram_states(np.delete(ram, 49, axis=1)) == 3
    assert levels.ram_states(ram) == levels.distinct_states(ram[:, [20, 49]]) < steps
    df = episodes([("a", "g", steps, False, 0.0)], cap=steps, embedding=[np.eye(steps)],
                  ram=[np.delete(ram, 49, axis=1)])
    row = levels.curiosity_episodes(df).iloc[0]
    assert (row.coverage, row.coverage_kind) == (3.0, "RAM states (counters excluded)")
    df["player_ram"] = pd.Series([ram[:, [49]]], dtype=object)  # the player's position bytes come first
    row = levels.curiosity_episodes(df).iloc[0]
    assert (row.coverage, row.coverage_kind) == (len(np.unique(ram[:, 49])), "player positions (RAM)")


def test_curiosity_table_normalises_against_random_and_reference():
    rng = np.random.default_rng(4)
    # random revisits 4 states, the expert sees 40 distinct ones, "still" one
    embeds = ([np.tile(rng.normal(size=(4, 8)), (10, 1)) for _ in range(2)]
              + [rng.normal(size=(40, 8)) for _ in range(2)] + [np.ones((40, 8))] * 2)
    df = episodes([("random", "g", 40, False, 0.0)] * 2 + [("expert", "g", 40, False, 0.0)] * 2
                  + [("still", "g", 40, False, 0.0)] * 2, cap=40, embedding=embeds)
    table = levels.curiosity_table(levels.curiosity_episodes(df), reference_agent="expert", n_resamples=100)
    table = table.set_index("agent")
    assert table.loc["random", "curiosity_ref_norm"] == pytest.approx(0.0)
    assert table.loc["expert", "curiosity_ref_norm"] == pytest.approx(1.0)
    assert table.loc["still", "curiosity_auc"] == 1.0
    assert (table["curiosity_ref_norm_ci_low"] <= table["curiosity_ref_norm_ci_high"]).all()
    assert table.loc["expert", "curiosity_auc"] > table.loc["random", "curiosity_auc"]  # Eq. 12's assumption


# ---------------------------------------------------------------------------------- Utility

def test_human_normalised_score_against_the_published_table():
    ref = levels.atari_reference_scores()
    assert set(ref.index) == {"SpaceInvaders", "Asterix", "Frostbite", "Hero", "Seaquest", "Centipede", "MsPacman",
                              "Enduro"}
    assert tuple(ref.loc["SpaceInvaders"]) == (148.0, 1668.7)
    df = episodes([("human-like", "SpaceInvaders", 150, True, 1668.7),
                   ("random-like", "SpaceInvaders", 90, True, 148.0),
                   ("half", "Enduro", 180, True, 430.25), ("capped", "Enduro", 200, False, 860.5),
                   ("doom", "take_cover", 120, True, 7.0)])
    table = levels.utility_table(df, random_agent=None, n_resamples=50).set_index("agent")
    assert table.loc["human-like", "hns_published_pct"] == pytest.approx(100.0)
    assert table.loc["random-like", "hns_published_pct"] == pytest.approx(0.0)
    assert table.loc["half", "hns_published_pct"] == pytest.approx(50.0)
    assert table["normalisation_valid"].to_dict() == {"capped": False, "doom": False, "half": True,
                                                      "human-like": True, "random-like": True}
    assert np.isnan(table.loc["doom", "hns_published_pct"])


def test_reference_data_ships_with_the_package():
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert any(fnmatch.fnmatch("atari_reference_scores.yaml", p) for p in package_data["workbench.analysis"])


# ---------------------------------------------------------------------------------- aggregates

def test_avg_rank_and_ratio_at_top3_on_a_constructed_table():
    score = {  # game -> agent -> score (higher is better)
        "g1": {"A": 4.0, "B": 3.0, "C": 2.0, "D": 1.0},
        "g2": {"A": 1.0, "B": 4.0, "C": 3.0, "D": 2.0},
        "g3": {"A": 5.0, "B": 5.0, "C": 1.0, "D": 0.0},  # A and B tie for first
        "g4": {"A": 2.0, "B": 1.0, "C": 1.0, "D": 1.0},  # B, C, D tie for second
    }
    long = pd.DataFrame([(a, g, "survival", s) for g, row in score.items() for a, s in row.items()],
                        columns=["agent", "game", "level", "score"])
    out = levels.rank_aggregates(long).set_index("agent")
    # ranks, ties averaged: A 1,4,1.5,1  B 2,1,1.5,3  C 3,2,3,3  D 4,3,4,3
    assert out["avg_rank"].to_dict() == {"A": 1.875, "B": 1.875, "C": 2.75, "D": 3.5}
    # top 3 by competition rank (ties share the best place): A 3/4, B 4/4, C 4/4, D 2/4
    assert out["ratio_top3"].to_dict() == {"A": 75.0, "B": 100.0, "C": 100.0, "D": 50.0}
    assert out.loc["A", "mean"] == 3.0 and (out["games"] == 4).all()


def test_overall_rank_uses_the_mean_of_the_level_scores():
    long = pd.DataFrame([("A", "g", "survival", 1.0), ("A", "g", "curiosity", 0.0), ("A", "g", "utility", 0.2),
                         ("B", "g", "survival", 0.0), ("B", "g", "curiosity", 0.5), ("B", "g", "utility", 0.3),
                         ("C", "g", "survival", 0.9)],  # C lacks two levels: not in the overall ranking
                        columns=["agent", "game", "level", "score"])
    out = levels.rank_aggregates(long)
    overall = out[out.level == "overall"].set_index("agent")
    assert list(overall.index) == ["A", "B"] and overall.loc["A", "avg_rank"] == 1.0
    assert overall.loc["A", "mean"] == pytest.approx(0.4)
    assert list(dict.fromkeys(out["level"])) == ["survival", "curiosity", "utility", "overall"]


def test_level_scores_stack_the_three_tables():
    rng = np.random.default_rng(5)
    df = episodes([("random", "g", 50, True, 1.0), ("random", "g", 70, True, 2.0), ("expert", "g", 200, False, 9.0),
                   ("expert", "g", 190, True, 8.0)], embedding=[rng.normal(size=(n, 4)) for n in (50, 70, 200, 190)])
    survival = levels.survival_table(df, reference_agent="expert", n_resamples=50)
    curiosity = levels.curiosity_table(levels.curiosity_episodes(df), reference_agent="expert", n_resamples=50)
    utility = levels.utility_table(df, reference_agent="expert", n_resamples=50)
    long = levels.level_scores(survival, curiosity, utility)
    assert set(long["level"]) == set(levels.LEVELS) and len(long) == 6
    assert long.loc[long.agent == "expert", "score"].tolist() == pytest.approx([1.0, 1.0, 1.0])
    out = levels.rank_aggregates(long)
    assert out.loc[(out.agent == "expert"), "avg_rank"].eq(1.0).all()


# ---------------------------------------------------------------------------------- plots

def test_level_plots_render(tmp_path):
    from workbench.viz import plots

    rng = np.random.default_rng(6)
    df = episodes([("random", g, s, s < 200, 0.0) for g in ("g1", "g2") for s in (60, 120, 200)],
                  embedding=[rng.normal(size=(s, 4)) for s in (60, 120, 200) * 2])
    km = plots.kaplan_meier_curves(levels.survival_curves(df))
    mag = plots.magnitude_functions(levels.magnitude_curves(df, levels.curiosity_episodes(df)))
    for name, figure in {"km": km, "mag": mag}.items():
        assert len(figure) == 2  # one panel per game
        assert plots.save_figure(figure, tmp_path / f"{name}.png").stat().st_size > 1000


# ---------------------------------------------------------------------------------- played episodes

def test_episode_outcome_tells_failure_from_goal_and_cap():
    end = lambda last, n=5: np.array(["running"] * (n - 1) + [last])  # noqa: E731
    dead = levels.episode_outcome({"reward": np.ones(5), "episode_end": end("terminated"),
                                   "death": np.array([0, 0, 0, 0, 1])}, cap=10)
    assert (dead["terminated"], dead["goal_reached"], dead["failure_step"], dead["return"]) == (True, False, 5.0, 5.0)
    # my_way_home's vest: the game ends without a death -> not a failure, survival censored there
    vest = levels.episode_outcome({"reward": np.zeros(5), "episode_end": np.array([0, 0, 0, 0, 1]),
                                   "death": np.zeros(5)}, cap=10)
    assert (vest["terminated"], vest["goal_reached"]) == (False, True) and np.isnan(vest["failure_step"])
    # ALE: the first life lost is the failure, the game plays on to the cap
    ale = levels.episode_outcome({"reward": np.ones(5), "episode_end": end("truncated"),
                                  "lives": np.array([3, 3, 2, 2, 2])}, cap=5)
    assert (ale["terminated"], ale["truncated"], ale["failure_step"]) == (False, True, 2.0)
    # ALE game over without a life count: a failure; a store's -1 filled death label counts as absent
    over = levels.episode_outcome({"reward": np.ones(4), "episode_end": end("terminated", 4),
                                   "death": np.full(4, -1)}, cap=9)
    assert (over["terminated"], over["failure_step"]) == (True, 4.0)
    table = levels.survival_table(pd.DataFrame([{"agent": "a", "game": "g", "seed": 0, **vest}]), n_resamples=10)
    assert (table.failures[0], table.censored[0]) == (0, 1)


def test_pixel_embedding_shape_and_identical_frames():
    frames = np.zeros((3, 96, 96, 3), np.uint8)
    frames[2] = 255
    emb = levels.pixel_embedding(frames)
    assert emb.shape == (3, 16 * 16 * 3) and emb.dtype == np.float32
    assert np.array_equal(emb[0], emb[1]) and emb[2].min() == 1.0


def test_goal_progress_and_the_level_table_ranks():
    rows = pd.DataFrame({"agent": ["mpc", "mpc", "random", "random"], "game": "my_way_home",
                         "goal_distance_start": [100.0, 100.0, 100.0, 100.0],
                         "goal_distance_end": [20.0, 40.0, 130.0, 110.0]})
    goals = levels.goal_table(rows, n_resamples=100)
    assert goals.set_index("agent")["progress"].to_dict() == {"mpc": 70.0, "random": -20.0}
    assert levels.goal_table(rows.drop(columns=["goal_distance_start"])).empty

    eps = episodes([("good", "A", 200, False, 9.0), ("bad", "A", 50, True, 1.0),
                    ("good", "B", 200, False, 3.0), ("bad", "B", 200, False, 3.0)])
    survival = levels.survival_table(eps, random_agent="bad", n_resamples=50)
    utility = levels.utility_table(eps, random_agent="bad", n_resamples=50)
    table = levels.level_table(survival, None, utility).set_index(["agent", "game"])
    assert table.loc[("good", "A"), "rank_survival"] == 1 and table.loc[("bad", "A"), "rank_survival"] == 2
    assert table.loc[("good", "B"), "rank_utility"] == table.loc[("bad", "B"), "rank_utility"] == 1.5  # a tie
    ranks = levels.level_ranks(survival, None, utility).set_index(["agent", "level"])
    assert ranks.loc[("good", "survival"), "avg_rank"] == 1.25 and ranks.loc[("bad", "survival"), "avg_rank"] == 1.75
    assert ranks.loc[("good", "overall"), "avg_rank"] == 1.25  # game A: mean rank 1 vs 2; game B: tied
    assert ranks["mean_ref_norm"].isna().all()
