"""The scripted player: human-like holds, a neutral share set per game, reproducible from a seed;
and the built-in catalog's per-game styles and sizes."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.data.catalog import CatalogEntry, CatalogError, game_size, load_catalog
from workbench.data.player import PlayerStyle, held_channel, held_segments, signed_channel, turn_channel


@pytest.mark.parametrize("share", [0.45, 0.6, 0.85])
def test_neutral_fraction_follows_the_style(share):
    turn = turn_channel(np.random.default_rng(3), 100_000, PlayerStyle(neutral_fraction=share, turn_hold=8))
    assert abs((turn == 0).mean() - share) < 0.02


def test_builtin_games_differ_in_neutral_share_and_racing_is_unbalanced():
    """p67 must be able to fail: the recorded games' neutral shares spread over ~0.45-0.85, and
    one racing game has >= 5x the other's frames at the demo and full sizes (seed 000: 33,770
    Pole Position frames against 2,453 of Enduro) while tiny stays tiny."""
    catalog = load_catalog()
    for dataset_id in ("atari", "racing"):
        games = catalog[dataset_id].source["games"]
        shares = [PlayerStyle.from_dict(g.get("style")).neutral_fraction for g in games]
        assert min(shares) <= 0.5 and max(shares) >= 0.8, (dataset_id, shares)
    shares = [PlayerStyle.from_dict(g.get("style")).neutral_fraction for g in catalog["atari"].source["games"]]
    assert min(shares) <= 0.45 and max(shares) >= 0.85 and len(set(shares)) == len(shares)
    racing = catalog["racing"]
    for size in ("demo", "full"):
        frames = sorted(np.prod(game_size(racing, g, size)) for g in racing.source["games"])
        assert frames[-1] >= 5 * frames[0], (size, frames)
    assert racing.n_frames("tiny") == 2 * 40


def test_per_game_size_overrides_the_entry_size():
    base = {"id": "two", "labels": [{"name": "steer", "kind": "categorical", "classes": ["LEFT", "NEUTRAL", "RIGHT"]}],
            "sizes": {"demo": {"episodes": 4, "frames_per_episode": 100}, "tiny": {"episodes": 1, "frames_per_episode": 10}}}
    games = [{"game": "Big", "engine": "ale"},
             {"game": "Small", "engine": "ale", "sizes": {"demo": {"episodes": 1, "frames_per_episode": 50}}}]
    entry = CatalogEntry.from_dict({**base, "source": {"type": "record", "games": games}})
    assert [game_size(entry, g, "demo") for g in games] == [(4, 100), (1, 50)]
    assert entry.n_frames("demo") == 450 and entry.n_frames("tiny") == 20
    for bad, match in (({"huge": {"episodes": 1}}, "unknown size 'huge'"),
                       ({"demo": {"episodes": 0}}, "positive whole-number"),
                       ({"demo": {"seed": 3}}, "may set only")):
        games[1]["sizes"] = bad
        with pytest.raises(CatalogError, match=match):
            CatalogEntry.from_dict({**base, "source": {"type": "record", "games": games}})


def test_neutral_fraction_and_hold_lengths():
    style = PlayerStyle(neutral_fraction=2 / 3, turn_hold=10, hold_cv=0.5)
    turn = turn_channel(np.random.default_rng(0), 200_000, style)
    assert abs((turn == 0).mean() - 2 / 3) < 0.02
    active = turn != 0
    starts = np.flatnonzero(np.diff(active.astype(int)) == 1) + 1
    stops = np.flatnonzero(np.diff(active.astype(int)) == -1) + 1
    stops = stops[stops > starts[0]]
    lengths = stops[: len(starts)] - starts[: len(stops)]
    assert 8 < lengths.mean() < 12  # turns are held, not flickered frame to frame


def test_bell_profile_is_smooth_and_bounded():
    style = PlayerStyle(turn_profile="bell", turn_strength=(2.0, 4.0), turn_hold=20)
    turn = turn_channel(np.random.default_rng(1), 5000, style)
    assert np.abs(turn).max() <= 4.0
    jumps = np.abs(np.diff(turn))
    assert np.percentile(jumps[jumps > 0], 90) < 1.0  # ramps, not jumps from 0 to full strength


def test_segments_cover_and_alternate():
    segs = held_segments(np.random.default_rng(2), 500, 0.3, 5, 0.6)
    assert segs[0][0] == 0 and segs[-1][1] == 500
    assert all(a[1] == b[0] and a[2] != b[2] for a, b in zip(segs, segs[1:]))


def test_channels_reproducible_from_seed():
    a = held_channel(np.random.default_rng(7), 1000, 0.2, 4, 0.6)
    b = held_channel(np.random.default_rng(7), 1000, 0.2, 4, 0.6)
    np.testing.assert_array_equal(a, b)
    s = signed_channel(np.random.default_rng(7), 1000, 0.3, 6, 0.6)
    assert set(np.unique(s)) <= {-1, 0, 1}


def test_style_validation():
    with pytest.raises(ValueError, match="unknown player style keys"):
        PlayerStyle.from_dict({"neutral": 0.5})
    with pytest.raises(ValueError, match="must lie in"):
        PlayerStyle.from_dict({"neutral_fraction": 1.5})
