"""The frames package on a constructed store with known episodes: the block split's contract
(pairs and clips agree, nothing crosses a split, the purge gap holds, episodes are respected),
the numbers recorded from the code before the package was reorganised, and the in-memory data
path giving the streaming path's batches bit for bit."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from workbench.data.episode import successor_mask
from workbench.data.schema import LabelSchema
from workbench.data.store import StoreWriter
from workbench.frames.augment import flip_plan, hflip
from workbench.frames.clips import build_clip_index
from workbench.frames.memory import MemoryReader, frames_nbytes, held_frames, open_reader, placement
from workbench.frames.pairs import balanced_weights, build_pair_index
from workbench.frames.sources import resolve_source
from workbench.frames.split import SPLITS, split_transitions
from workbench.frames.stream import FrameReader, PairSampler

STEER = ["LEFT", "NEUTRAL", "RIGHT"]
# (game, episode, steps): A's second episode restarts its step counter half-way (a reset), B ends
# with a 3-frame episode; 373 frames = 6 zarr chunks of 64
EPISODES = [("A", 0, np.arange(150)), ("A", 1, np.r_[np.arange(45), np.arange(45)]), ("B", 0, np.arange(130)),
            ("B", 1, np.arange(3))]
BLOCK, FRACTIONS, SPLIT_SEED = 16, (0.6, 0.2, 0.2), 3
# sha1 prefixes of what the code before the reorganisation (main at c3a3861) made of this store
RECORDED = {"pairs": "1bfed278d8b1", "pair_draws": "f81dc11f55c8", "pair_batches": "626f2b33ad52",
            "clips": "3feff61eedcc", "clip_draws": "4b1961c107da", "clip_batches": "e6418fe3a9e7"}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The constructed store: random 20x20 frames, steer (with missing labels) and key_a/key_d."""
    schema = LabelSchema.from_list([{"name": "steer", "kind": "categorical", "classes": STEER},
                                    {"name": "key_a", "kind": "binary"}, {"name": "key_d", "kind": "binary"}])
    path = tmp_path_factory.mktemp("frames") / "syn" / "frames.zarr"
    rng = np.random.default_rng(7)
    with StoreWriter(path, schema, ["A", "B"], (20, 20)) as w:
        for game, ep, step in EPISODES:
            n = len(step)
            steer = rng.integers(-1, 3, n)
            w.append(rng.integers(0, 256, (n, 20, 20, 3), dtype=np.uint8), game, ep, step,
                     labels={"steer": steer, "key_a": (steer == 0).astype(int), "key_d": (steer == 2).astype(int)})
    return resolve_source(path)


def _sha(*arrays) -> str:
    h = hashlib.sha1()
    for a in arrays:
        h.update(np.ascontiguousarray(np.asarray(a)).tobytes())
    return h.hexdigest()[:12]


def _fingerprints(src, reader) -> dict[str, str]:
    """Fingerprints of the pair and clip indexes and of sampled, flipped batches through ``reader``."""
    out = {}
    index = build_pair_index([src], ["steer", "key_a", "key_d"], None, None, BLOCK, FRACTIONS, SPLIT_SEED)
    out["pairs"] = _sha(index.source, index.frame, index.game, index.split, *index.y.values())
    train = index.subset(index.split == 0)
    sampler = PairSampler(train.source, train.frame, balanced_weights(train, "steer"), [src.chunk], 32, 4)
    plan, rng, draws, batches = flip_plan(index.heads, index.kinds), np.random.default_rng(5), [], []
    for _ in range(6):
        pos = sampler.draw(rng)
        first, second = reader.pairs(train.source[pos], train.frame[pos])
        first, second, y = hflip(first, second, {h: v[pos] for h, v in train.y.items()}, rng.random(len(pos)) < 0.5,
                                 plan)
        draws.append(pos)
        batches += [first, second, *y.values()]
    out["pair_draws"], out["pair_batches"] = _sha(*draws), _sha(*batches)
    clips = build_clip_index([src], 5, None, BLOCK, FRACTIONS, SPLIT_SEED)
    out["clips"] = _sha(clips.source, clips.start, clips.game, clips.split)
    train = clips.subset(clips.split == 0)
    sampler = PairSampler(train.source, train.start, np.ones(len(train)), [src.chunk], 8, 2)
    rng, draws, batches = np.random.default_rng(6), [], []
    for _ in range(6):
        pos = sampler.draw(rng)
        draws.append(pos)
        batches.append(reader.batch(train, pos))
    out["clip_draws"], out["clip_batches"] = _sha(*draws), _sha(*batches)
    return out


def test_same_numbers_as_before_the_reorganisation(source):
    assert _fingerprints(source, FrameReader([source], 12, capacity=2)) == RECORDED


def test_in_memory_path_gives_the_same_batches_bit_for_bit(source):
    reader = MemoryReader([source], 12)
    assert isinstance(reader.pairs(np.zeros(1, np.int64), np.zeros(1, np.int64))[0], torch.Tensor)
    assert _fingerprints(source, reader) == RECORDED


def test_pairs_and_clips_share_one_split_and_respect_blocks_and_episodes(source):
    ds = source.open()
    boundaries = ~successor_mask(ds["game"].values, ds["episode"].values, ds["step"].values)
    t = split_transitions([source], None, BLOCK, FRACTIONS, SPLIT_SEED)
    pairs = build_pair_index([source], ["steer"], None, None, BLOCK, FRACTIONS, SPLIT_SEED, labeled_only=False)
    np.testing.assert_array_equal(pairs.frame, t.frame)
    np.testing.assert_array_equal(pairs.split, t.split)
    assert set(np.unique(t.split)) == {0, 1, 2}  # the store is big enough to hold every split

    # every frame a pair or clip uses gets one split, the same from pairs and from clips
    frame_split = np.full(source.n_frames, -1)
    for f, s in zip(t.frame, t.split):
        for g in (f, f + 1):
            assert frame_split[g] in (-1, s), f"frame {g} is in two splits"
            frame_split[g] = s
    assert not boundaries[t.frame].any(), "a pair spans an episode boundary or a step reset"
    for length in (2, 5):
        clips = build_clip_index([source], length, None, BLOCK, FRACTIONS, SPLIT_SEED)
        frames = clips.start[:, None] + np.arange(length)
        assert len(clips) and (frames // BLOCK == clips.start[:, None] // BLOCK).all(), "a clip crosses a block"
        np.testing.assert_array_equal(frame_split[frames], np.repeat(clips.split[:, None], length, axis=1))
        assert not boundaries[frames[:, :-1]].any(), "a clip spans an episode boundary"

    # the purge gap: where a block's split differs from the next block's, no pair joins them
    last = t.frame[(t.frame + 1) % BLOCK == 0]
    block_split = {f // BLOCK: s for f, s in zip(t.frame, t.split)}
    assert all(block_split.get(f // BLOCK + 1, block_split[f // BLOCK]) == block_split[f // BLOCK] for f in last)
    crossing = [f for f in range(BLOCK - 1, source.n_frames - 1, BLOCK)
                if not boundaries[f] and block_split.get(f // BLOCK) not in (None, block_split.get(f // BLOCK + 1))]
    assert crossing and not np.isin(crossing, t.frame).any()


def test_split_does_not_depend_on_games_or_labels(source):
    every = split_transitions([source], None, BLOCK, FRACTIONS, SPLIT_SEED)
    only_b = split_transitions([source], ["B"], BLOCK, FRACTIONS, SPLIT_SEED)
    mine = np.isin(every.frame, only_b.frame)
    np.testing.assert_array_equal(every.split[mine], only_b.split)
    labeled = build_pair_index([source], ["steer"], None, None, BLOCK, FRACTIONS, SPLIT_SEED)
    np.testing.assert_array_equal(every.split[np.isin(every.frame, labeled.frame)], labeled.split)
    assert len(labeled) < len(every) and (labeled.y["steer"] >= 0).all()
    with pytest.raises(ValueError, match=r"games \['C'\] are not in the datasets"):
        split_transitions([source], ["C"], BLOCK)


def test_streaming_reader_serves_clips_across_chunks(source):
    """A clip may span zarr chunks (blocks larger than a chunk); both readers agree with the store."""
    ds = source.open()
    start = np.array([60, 126, 0, 300])
    stream = FrameReader([source], 20, capacity=1).clips(np.zeros(4, np.int64), start, 6)
    memory = MemoryReader([source], 20).clips(np.zeros(4, np.int64), start, 6)
    expected = ds["frames"].values[start[:, None] + np.arange(6)]
    np.testing.assert_array_equal(stream, expected)
    np.testing.assert_array_equal(memory.numpy(), expected)
    # two stores (the same one twice): gathered per store, into the right rows
    which, frame = np.array([1, 0, 1, 1, 0]), np.array([5, 63, 64, 200, 300])
    two = MemoryReader([source, source], 20)
    assert two.frames[0] is two.frames[1]
    for got, want in zip(two.pairs(which, frame), FrameReader([source, source], 20).pairs(which, frame)):
        np.testing.assert_array_equal(got.numpy(), want)


def test_open_reader_follows_the_memory_budget_and_shares_frames(source):
    nbytes = frames_nbytes([source], 12)
    assert nbytes == source.n_frames * 12 * 12 * 3
    assert placement(nbytes, "cpu", 0) is None and placement(nbytes, "cpu", 1.0) == "host"
    assert placement(nbytes, "cpu", None) == "host"  # a few kB: fits half the free memory
    assert isinstance(open_reader([source], 12, memory_gb=0), FrameReader)
    a, b = open_reader([source], 12), open_reader([source], 12, memory_gb=1)
    assert isinstance(a, MemoryReader) and a.frames[0] is b.frames[0]  # decoded once per process
    assert held_frames(source, 12, "host") is a.frames[0] and a.frames[0].dtype == torch.uint8


def test_hflip_on_tensors_equals_numpy():
    rng = np.random.default_rng(0)
    first, second = (rng.integers(0, 256, (6, 4, 5, 3), dtype=np.uint8) for _ in range(2))
    y = {"steer": np.array([0, 1, 2, -1, 0, 2]), "key_a": np.array([1, 0, 0, 1, 0, 0]),
         "key_d": np.array([0, 0, 1, 0, 1, 1])}
    plan = flip_plan({"steer": STEER, "key_a": ["0", "1"], "key_d": ["0", "1"]},
                     {"steer": "categorical", "key_a": "binary", "key_d": "binary"})
    flip = np.array([True, False, True, True, False, True])
    a, b, ya = hflip(first, second, y, flip, plan)
    ta, tb, yt = hflip(torch.from_numpy(first), torch.from_numpy(second), y, flip, plan)
    np.testing.assert_array_equal(ta.numpy(), a)
    np.testing.assert_array_equal(tb.numpy(), b)
    assert all((yt[k] == ya[k]).all() for k in y)
    np.testing.assert_array_equal(a[0], first[0, :, ::-1])
    np.testing.assert_array_equal(a[1], first[1])


def test_successor_mask_marks_episode_ends_and_step_resets(source):
    ds = source.open()
    has_next = successor_mask(ds["game"].values, ds["episode"].values, ds["step"].values)
    ends = np.cumsum([len(s) for _, _, s in EPISODES]) - 1
    reset = ends[0] + 45  # A's episode 1 restarts its steps after 45 frames
    np.testing.assert_array_equal(np.flatnonzero(~has_next), np.sort(np.r_[ends, reset]))
    assert SPLITS == ("train", "val", "test")


def test_placement_prefers_the_accelerator_then_pinned_host_memory(monkeypatch):
    """The device decision, with CUDA's free-memory query stood in (no GPU needed)."""
    gib = 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (10 * gib, 16 * gib))
    assert placement(4 * gib, "cuda", None) == "device"  # fits half the free device memory
    assert placement(6 * gib, "cuda", 8.0) == "pinned"  # within the budget, too big for the device
    assert placement(6 * gib, "cuda", 5.0) is None  # over the budget: stream
    assert placement(6 * gib, "cpu", 8.0) == "host"


@pytest.mark.parametrize("n_blocks", [3, 4, 5, 8, 9, 40])
def test_a_small_game_gets_a_block_in_every_split(n_blocks):
    """70/10/20 rounding alone leaves val empty at 3, 4, 5 and 8 blocks (a small game trained
    without a validation split cannot stop early); every split gets ≥ 1 block, train the most,
    and the larger games keep the plain 70/10/20 deal."""
    from workbench.frames.split import assign_split

    frame = np.arange(n_blocks * 4)
    split = assign_split(np.full(len(frame), "g"), np.zeros(len(frame), int), frame, block=4)
    blocks = [len(np.unique(frame[split == k] // 4)) for k in range(3)]
    assert min(blocks) >= 1 and sum(blocks) == n_blocks and blocks[0] == max(blocks)
    if n_blocks == 40:
        assert blocks == [28, 4, 8]
