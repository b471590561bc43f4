"""Embedding extraction streams into zarr one chunk of pairs at a time: the same numbers whatever
the chunk, stored in chunks of that size, read lazily on request, and nothing left on failure."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr

from workbench.engine.card import ModelCard
from workbench.frames.sources import resolve_source
from workbench.methods.idm import embed
from workbench.methods.idm.model import IDMLatentSpatial

STEER = ["LEFT", "NEUTRAL", "RIGHT"]


@pytest.fixture()
def store():
    from workbench.data.catalog import get_entry, materialise

    return materialise(get_entry("first_person"), size="tiny", progress=False)


def untrained(sha: str = "0" * 64):
    """A small random IDM and a card naming it (a weights hash, so its embeddings are cached)."""
    torch.manual_seed(0)
    net = IDMLatentSpatial({"steer": 3}, input_size=32, width=8, embed_dim=16).eval()
    card = {"model_id": "stream-test", "weights_sha256": sha, "architecture": "IDMLatentSpatial", "model": net.config,
            "training": {"steps": 0}, "metrics": {}, "seed": 0,
            "heads": {"steer": {"kind": "categorical", "classes": STEER}},
            "config": {"split_block": 4, "split_fractions": [0.7, 0.1, 0.2], "split_seed": 0}}
    return net, ModelCard.from_dict(card)


def test_chunked_extraction_gives_the_same_embeddings_stored_in_chunks(store):
    whole = embed.extract_embeddings(untrained(""), store, split="all", progress=False)  # no hash: not cached
    chunked = embed.extract_embeddings(untrained(), store, split="all", progress=False, chunk_frames=16, load=False)
    assert chunked["embedding"].chunks is not None  # read lazily from the store
    assert chunked.sizes["frame"] == whole.sizes["frame"] > 3 * 16
    np.testing.assert_allclose(chunked["embedding"].values, whole["embedding"].values, atol=1e-5)
    assert np.array_equal(chunked["pred_steer"].values, chunked["logits_steer"].values.argmax(1))
    assert chunked["pred_steer"].attrs["classes"] == STEER and chunked["split"].equals(whole["split"])
    path = embed.embeddings_path("stream-test", resolve_source(store), "all")
    assert zarr.open_group(str(path), mode="r", zarr_format=2)["embedding"].chunks == (16, 16)


def test_an_interrupted_extraction_leaves_nothing(store, monkeypatch):
    calls = []

    def failing(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("interrupted")
        return infer(*args, **kw)

    infer = embed.infer
    monkeypatch.setattr(embed, "infer", failing)
    with pytest.raises(RuntimeError, match="interrupted"):
        embed.extract_embeddings(untrained(), store, split="all", progress=False, chunk_frames=16)
    path = embed.embeddings_path("stream-test", resolve_source(store), "all")
    assert not path.exists() and not list(path.parent.glob("*")), list(path.parent.glob("*"))
