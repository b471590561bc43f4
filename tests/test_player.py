"""The scripted player: human-like holds, about two thirds neutral, reproducible from a seed."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.data.player import PlayerStyle, held_channel, held_segments, signed_channel, turn_channel


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
