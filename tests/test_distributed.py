"""The training engine across processes (gloo on CPU): two ranks, each training on half of every
global batch with averaged gradients, end with the weights of one process trained on the whole
batch (up to rounding), and only rank 0 writes the model."""

from __future__ import annotations


import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from workbench.engine.fit import FitSpec, finish, fit
from workbench.engine.library import list_models, load_tensors, model_path

X = torch.from_numpy(np.random.default_rng(0).standard_normal((64, 5)).astype(np.float32))
Y = X @ torch.arange(1.0, 6.0) + 0.5


class Sampler:
    """8 positions of the 64 rows per step (the global batch)."""

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(64, size=8, replace=False)


def untrained() -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    model.config = {}
    return model


def train_tiny(model_id: str) -> torch.nn.Module:
    model = untrained()

    def step_fn(positions, rng):
        return torch.nn.functional.mse_loss(model(X[positions]).squeeze(1), Y[positions]), {}

    spec = FitSpec(model_id=model_id, identity={"tiny": 1}, seed=0, steps=12, lr=0.01, weight_decay=0.0,
                   eval_every=6, checkpoint_every=5, items_per_step=8, warmup=0.2, grad_clip=1.0, reseed_torch=True)
    state, done = fit(spec, model, step_fn, lambda: ({}, None), Sampler(), progress=False)
    assert done
    finish(model_id, model, {"model_id": model_id, "architecture": "MLPController", "model": {}, "config": {},
                             "training": {"steps": state["step"]}, "metrics": {}, "seed": 0})
    return model


def _rank(rank: int, world: int, init: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        model = train_tiny("ddp")
        torch.save(model.state_dict(), f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_equal_one_process_at_the_same_global_batch(tmp_path):
    torch.set_num_threads(1)
    single = train_tiny("single").state_dict()
    init = f"file://{tmp_path / 'rendezvous'}"
    mp.spawn(_rank, args=(2, init, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for name, value in single.items():
        assert torch.equal(ranks[0][name], ranks[1][name]), name  # the ranks stay identical
        assert torch.allclose(ranks[0][name], value, atol=1e-5), name  # = one process, up to rounding
    assert not torch.allclose(ranks[0]["0.weight"], untrained()[0].weight, atol=1e-3)  # it trained
    assert list_models() == ["ddp", "single"]  # rank 0 wrote the model once, then removed its checkpoint
    saved = load_tensors(model_path("ddp") / "weights.pt")
    assert all(torch.equal(saved[k], ranks[0][k]) for k in saved)
    assert not (model_path("ddp") / "checkpoint.pt").exists()


class TwoHeads(torch.nn.Module):
    """A trunk and two heads: ``b`` trained on rank 0's slices only, ``c`` never."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.trunk, self.b, self.c = torch.nn.Linear(5, 4), torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)
        self.config = {}


def _heads_rank(rank: int, world: int, init: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        model = TwoHeads()

        def step_fn(positions, rng):
            h = torch.tanh(model.trunk(X[positions]))
            loss = (h.sum(1) - Y[positions]).pow(2).mean()
            return (loss + (model.b(h).squeeze(1) - Y[positions]).pow(2).mean() if rank == 0 else loss), {}

        spec = FitSpec(model_id="heads", identity={"heads": 1}, seed=0, steps=5, lr=0.01, weight_decay=0.1,
                       eval_every=5, checkpoint_every=10, items_per_step=8)
        fit(spec, model, step_fn, lambda: ({}, None), Sampler(), progress=False)
        torch.save(model.state_dict(), f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_a_parameter_with_gradients_on_some_ranks_is_averaged_and_one_with_none_is_left_alone(tmp_path):
    """Heads without a gradient on one rank (an IDM head with no label in its slice) neither hang
    the all-reduce nor part the ranks; a head without one on every rank is not touched (weight
    decay included), as in one process."""
    mp.spawn(_heads_rank, args=(2, f"file://{tmp_path / 'rendezvous'}", str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    start = TwoHeads().state_dict()
    for name in start:
        assert torch.equal(ranks[0][name], ranks[1][name]), name
    assert not torch.equal(ranks[0]["b.weight"], start["b.weight"])  # trained from rank 0's half
    assert torch.equal(ranks[0]["c.weight"], start["c.weight"]) and torch.equal(ranks[0]["c.bias"], start["c.bias"])
