"""docs/architecture.md's "Adding a method", done: a frame-difference IDM written the way a new
method is (model, config, training step, evaluation, embeddings), trained by the one engine into
the library, loaded back by id, and its embeddings read by an unchanged analysis. Beside it the
contract every method's embeddings follow, checked on the IDM and the world model too."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import xarray as xr
from torch import nn

from workbench.analysis.layout import check_layout, layout_problems
from workbench.analysis.probes import linear_probe
from workbench.engine import library
from workbench.engine.card import provenance
from workbench.engine.config import ConfigIO
from workbench.engine.fit import FitSpec, existing, finish, fit, training_card
from workbench.engine.ids import make_model_id
from workbench.engine.library import load_card, load_model
from workbench.engine.session import training_session
from workbench.frames.memory import open_reader
from workbench.frames.pairs import build_pair_index
from workbench.frames.sources import resolve_source
from workbench.frames.split import SPLITS
from workbench.frames.stream import PairSampler, pair_tensor
from conftest import record_tiny


# 1. The model: a module whose constructor arguments are its ``config`` (the card stores them).
class DiffIDM(nn.Module):
    """|frame t+1 - frame t| pooled to a 4x4 grid -> a ``dim`` latent action -> one head's logits."""

    def __init__(self, n_classes: int, dim: int = 8):
        super().__init__()
        self.config = {"n_classes": n_classes, "dim": dim}
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16, dim), nn.ReLU())
        self.head = nn.Linear(dim, n_classes)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        diff = (x[:, 3:] - x[:, :3]).abs()
        return self.embed(F.adaptive_avg_pool2d(diff, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.latent(x))


# 2. The config: a dataclass with ConfigIO (YAML, identity) and the fields the engine reads.
@dataclass
class DiffConfig(ConfigIO):
    datasets: list
    head: str = "steer"
    size: str | None = None
    data_seed: int = 0
    input_size: int = 32
    dim: int = 8
    steps: int = 8
    batch_size: int = 8
    lr: float = 1e-2
    weight_decay: float = 0.0
    eval_every: int = 4
    checkpoint_every: int = 100
    patience: int | None = None
    chunks_per_batch: int = 2
    split_block: int = 4
    split_fractions: list = field(default_factory=lambda: [0.5, 0.25, 0.25])  # a list: YAML round-trips it
    split_seed: int = 0
    seed: int = 0
    model_id: str | None = None


def _index(cfg: DiffConfig, sources):
    return build_pair_index(sources, [cfg.head], None, None, cfg.split_block, cfg.split_fractions, cfg.split_seed,
                            labeled_only=False)


# 3. The training step and evaluation, handed to the engine.
def train_diff(cfg: DiffConfig) -> str:
    sources = [resolve_source(d, cfg.size, cfg.data_seed) for d in cfg.datasets]
    cfg = cfg.replace(model_id=cfg.model_id or make_model_id("diffidm", [cfg.head], cfg.seed, cfg.identity()))
    index = _index(cfg, sources)
    with training_session(cfg.model_id):
        if existing(cfg.model_id, lambda c: DiffConfig.from_dict(c).identity() == cfg.identity(), False) is not None:
            return cfg.model_id
        torch.manual_seed(cfg.seed)
        model = DiffIDM(len(index.heads[cfg.head]), cfg.dim)
        train_set, val_set = (index.subset((index.split == SPLITS.index(s)) & (index.y[cfg.head] >= 0))
                              for s in ("train", "val"))
        reader = open_reader(index.sources, cfg.input_size)
        sampler = PairSampler(train_set.source, train_set.frame, np.ones(len(train_set)),
                              [s.chunk for s in index.sources], cfg.batch_size, cfg.chunks_per_batch)

        def loss_on(subset, pos):
            x = pair_tensor(*reader.pairs(subset.source[pos], subset.frame[pos]))
            y = torch.from_numpy(subset.y[cfg.head][pos].astype(np.int64))
            logits = model(x)
            return F.cross_entropy(logits, y), float((logits.argmax(1) == y).float().mean())

        def step_fn(pos, rng):
            return loss_on(train_set, pos)[0], {}

        def eval_fn():
            loss, accuracy = loss_on(val_set, np.arange(len(val_set)))
            return {"accuracy": accuracy}, float(loss)

        spec = FitSpec.of(cfg, "pairs")
        state, done = fit(spec, model, step_fn, eval_fn, sampler, progress=False)
        assert done
        card = {"model_id": cfg.model_id, **training_card(spec, model, state, "cpu"),
                "metrics": {"val": eval_fn()[0]}, "config": cfg.to_dict(), **provenance("torch")}
        return finish(cfg.model_id, model, card)


# 4. The embeddings, in the shared layout.
@torch.no_grad()
def embed_diff(model_id: str) -> xr.Dataset:
    card = load_card(model_id)
    cfg = DiffConfig.from_dict(card.config)
    sources = [resolve_source(d, cfg.size, cfg.data_seed) for d in cfg.datasets]
    index = _index(cfg, sources)
    model = load_model(model_id, "cpu")
    reader = open_reader(index.sources, cfg.input_size)
    z = model.latent(pair_tensor(*reader.pairs(index.source, index.frame))).numpy().astype(np.float32)
    store = xr.open_zarr(sources[0].path)
    classes = list(index.heads[cfg.head])
    return xr.Dataset(
        {"embedding": (("frame", "dim"), z),
         cfg.head: ("frame", index.y[cfg.head].astype(np.int8), {"kind": index.kinds[cfg.head], "classes": classes})},
        coords={"game": ("frame", np.asarray(index.games)[index.game]),
                "episode": ("frame", store["episode"].values[index.frame]),
                "step": ("frame", store["step"].values[index.frame]),
                "source_frame": ("frame", index.frame), "split": ("frame", np.asarray(SPLITS)[index.split])},
        attrs={"model_id": model_id, "heads": {cfg.head: classes}})


@pytest.fixture(scope="module")
def first_person_tiny(tmp_path_factory):
    return record_tiny(tmp_path_factory, "first_person")


def test_a_new_method_trains_loads_and_feeds_the_analyses(first_person_tiny, monkeypatch):
    monkeypatch.setitem(library.ARCHITECTURES, "DiffIDM", f"{__name__}:DiffIDM")  # 5. register the class
    model_id = train_diff(DiffConfig(datasets=[str(first_person_tiny)]))
    assert model_id.startswith("diffidm-steer-s0-")
    card = load_card(model_id)
    assert card.architecture == "DiffIDM" and card.steps == 8 and card.training["engine_version"] >= 1
    assert [h["step"] for h in card.history] == [4, 8]  # evaluations the engine ran
    assert train_diff(DiffConfig(datasets=[str(first_person_tiny)])) == model_id  # found again, not retrained
    assert train_diff(DiffConfig(datasets=[str(first_person_tiny)], steps=6)) != model_id  # a changed config: a new id

    ds = check_layout(embed_diff(model_id), "the new method's embeddings")
    table = linear_probe(ds, ["steer"], variants=("per_game",), n_splits=2, block=8)
    assert set(table["game"]) <= set(np.unique(ds["game"].values)) and len(table)


def test_the_layout_check_names_what_is_wrong():
    ds = xr.Dataset({"embedding": (("frame", "dim"), np.zeros((3, 2)))},
                    coords={"game": ("frame", ["a", "a", "b"]), "split": ("frame", ["train", "dev", "test"])},
                    attrs={"heads": {"steer": ["LEFT", "NEUTRAL", "RIGHT"]}})
    problems = " | ".join(layout_problems(ds))
    for expected in ("not float32", "'episode'", "'source_frame'", "['dev']", "model_id", "head 'steer'"):
        assert expected in problems
    with pytest.raises(ValueError, match="the embedding layout"):
        check_layout(ds)


def test_the_idm_and_the_world_model_write_the_shared_layout(first_person_tiny):
    from workbench.methods.idm import TrainConfig, extract_embeddings, train
    from workbench.methods.worldmodel import WorldModelConfig, latent_actions, train_world_model

    idm = train(TrainConfig(datasets=[str(first_person_tiny)], steps=2, batch_size=4, chunks_per_batch=2, eval_every=2,
                            split_block=8, input_size=32, width=8, embed_dim=16, device="cpu"), progress=False)
    check_layout(extract_embeddings(idm.model_id, first_person_tiny, split="all", progress=False), "IDM embeddings")
    wm = train_world_model(WorldModelConfig(
        datasets=[str(first_person_tiny)], split_block=8, clip_length=4, input_size=32, encoder_width=8, rep_channels=4,
        encoder_steps=2, latent_dim=8, d_model=16, depth=1, n_heads=2, idm_width=8, steps=2, batch_size=4,
        chunks_per_batch=2, eval_every=2, eval_clips=8, device="cpu", family="noisy"), progress=False)
    check_layout(latent_actions(wm), "world-model latent actions")
