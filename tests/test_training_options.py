"""The training engine's accelerator options, on CPU: bf16 autocast (its own model id), channels-last
and torch.compile (runtime options: same id, same weights up to rounding), validation of their
values, step statistics kept on the device until an evaluation, and ``torchrun`` end to end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from workbench.core.errors import ConfigError
from workbench.engine import fit as engine_fit
from workbench.engine.curves import read_curves
from workbench.engine.library import load_card, load_model, model_path
from workbench.methods.idm import TrainConfig, train
from workbench.methods.worldmodel import AutoencoderConfig, ControllerConfig, WorldModelConfig
from conftest import record_tiny

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory):
    """The first_person catalog entry recorded at its tiny size (2 games x 40 frames)."""
    return record_tiny(tmp_path_factory, "first_person")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(store, **overrides) -> TrainConfig:
    values = dict(datasets=[str(store)], steps=6, batch_size=8, chunks_per_batch=2, eval_every=3, checkpoint_every=2,
                  split_block=4, input_size=32, width=16, embed_dim=32, device="cpu", hflip=True, seed=3)
    return TrainConfig(**{**values, **overrides})


def weights(model_id: str) -> dict:
    return torch.load(model_path(model_id) / "weights.pt", weights_only=True)


def outputs(model_id: str) -> torch.Tensor:
    """The model's embedding of a fixed random batch. (Compared rather than the weights: a conv
    bias before InstanceNorm has a zero gradient up to rounding, which AdamW scales to ±lr steps,
    so those biases differ between any two orders of summation while the function does not.)"""
    model = load_model(model_id, "cpu")
    x = torch.rand(4, 6, model.input_size, model.input_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model.embed(x)


def test_precision_is_identity_unless_fp32_and_compile_channels_last_are_runtime(tiny_store):
    base = tiny(tiny_store)
    assert "precision" not in base.identity()  # models trained before the field keep their ids
    assert tiny(tiny_store, precision="bf16").identity()["precision"] == "bf16"
    assert tiny(tiny_store, compile=True, channels_last=True).identity() == base.identity()
    for cls, extra in ((AutoencoderConfig, {}), (WorldModelConfig, {}), (ControllerConfig, {"world_model": "w"})):
        data = {} if cls is ControllerConfig else {"datasets": ["x"]}
        assert "precision" not in cls(**data, **extra).identity()
        for bad in ({"precision": "fp16"}, {"compile": "fastest"}, {"compile": 1}, {"channels_last": "yes"}):
            with pytest.raises(ConfigError, match=next(iter(bad))):
                cls(**data, **extra, **bad)
    wm = WorldModelConfig(datasets=["x"], precision="bf16", compile="reduce-overhead", channels_last=True)
    ae = wm.autoencoder_config()
    assert (ae.precision, ae.compile, ae.channels_last) == ("bf16", "reduce-overhead", True)


def test_bf16_autocast_trains_another_model_and_cards_record_it(tiny_store):
    fp32 = train(tiny(tiny_store), progress=False)
    bf16 = train(tiny(tiny_store, precision="bf16"), progress=False)
    assert fp32.model_id != bf16.model_id
    card = load_card(bf16.model_id)
    assert card.training["precision"] == "bf16" and card.training["world_size"] == 1
    assert load_card(fp32.model_id).training["precision"] == "fp32"
    a, b = weights(fp32.model_id), weights(bf16.model_id)
    assert all(torch.isfinite(v).all() for v in b.values())
    assert all(a[k].dtype == b[k].dtype == torch.float32 for k in a)  # the weights stay float32
    assert not all(torch.equal(a[k], b[k]) for k in a)  # bf16 rounding changed them ...
    assert all(torch.allclose(a[k], b[k], atol=0.05) for k in a)  # ... a little, in 6 steps
    assert all(np.isfinite(h["train"]["loss"]) for h in card.history)


def test_channels_last_gives_the_same_model_up_to_rounding(tiny_store):
    plain = train(tiny(tiny_store), progress=False)
    a = outputs(plain.model_id)
    nhwc = train(tiny(tiny_store, channels_last=True), progress=False, force=True)
    assert nhwc.model_id == plain.model_id  # a runtime option: the same model
    assert torch.allclose(a, outputs(nhwc.model_id), atol=1e-5)


@pytest.mark.slow  # inductor compiles C++ kernels on first use: tens of seconds on CPU
def test_compiled_model_trains_to_the_plain_models_weights(tiny_store):
    plain = train(tiny(tiny_store, steps=3, eval_every=3), progress=False).model_id
    a, keys = outputs(plain), set(weights(plain))
    compiled = train(tiny(tiny_store, steps=3, eval_every=3, compile=True), progress=False, force=True)
    assert set(weights(compiled.model_id)) == keys  # compiled in place: the state dict keeps its keys
    assert torch.allclose(a, outputs(compiled.model_id), atol=1e-4)


def test_step_statistics_reach_the_host_once_per_evaluation(workbench_models, monkeypatch):
    """Losses and stats returned as tensors are not converted per step: one transfer per
    evaluation interval brings them all, and the curves and history hold every step's values."""
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    model.config = {}
    x = torch.randn(16, 3)
    losses = []

    class Sampler:
        def draw(self, rng):
            return rng.choice(16, size=4, replace=False)

    def step_fn(positions, rng):
        loss = model(x[positions]).pow(2).mean()
        losses.append(float(loss.detach()))
        return loss, {"half": loss.detach() / 2, "const": 1.0}

    transfers = []
    real_tolist = torch.Tensor.tolist

    def counting_tolist(self):
        transfers.append(self.numel())
        return real_tolist(self)

    spec = engine_fit.FitSpec(model_id="sync", identity={"x": 1}, seed=0, steps=10, lr=0.01, weight_decay=0.0,
                              eval_every=5, checkpoint_every=100, items_per_step=4)
    with monkeypatch.context() as patch:
        patch.setattr(torch.Tensor, "tolist", counting_tolist)
        state, done = engine_fit.fit(spec, model, step_fn, lambda: ({}, None), Sampler(), progress=False)
    assert done and transfers == [10, 10]  # two intervals, each loss + half of 5 steps in one transfer
    assert [h["train"]["loss"] for h in state["history"]] == pytest.approx([np.mean(losses[:5]), np.mean(losses[5:])])
    assert state["history"][0]["train"]["half"] == pytest.approx(np.mean(losses[:5]) / 2)
    curves = read_curves(model_path("sync"))
    train_loss = curves[curves.tag == "train/loss"]
    assert train_loss.step.tolist() == list(range(1, 11))
    assert train_loss.value.to_numpy() == pytest.approx(losses, rel=1e-6)
    assert curves[curves.tag == "throughput/items_per_s"].step.tolist() == [5, 10]


def test_a_global_batch_that_does_not_split_over_the_ranks_is_refused(workbench_models, monkeypatch):
    model = torch.nn.Linear(2, 1)
    monkeypatch.setattr(engine_fit, "world", lambda: (0, 3))
    spec = engine_fit.FitSpec(model_id="split", identity={}, seed=0, steps=1, lr=0.1, weight_decay=0.0, eval_every=1,
                              checkpoint_every=1, items_per_step=8)
    with pytest.raises(ConfigError, match="batch_size 8 does not split evenly over 3 processes"):
        engine_fit.fit(spec, model, None, None, None, progress=False)


def _cli(args: list[str], models: Path, cache: Path, nproc: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "WORKBENCH_MODELS": str(models), "WORKBENCH_CACHE": str(cache), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    launch = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
              if nproc else [sys.executable])
    return subprocess.run([*launch, "-m", "workbench", *args], env=env, capture_output=True, text=True, timeout=600,
                          cwd=ROOT)


@pytest.mark.slow  # four python processes start and train (about a minute on 2 loaded cores)
def test_torchrun_trains_the_idm_as_one_process_at_the_same_global_batch(tiny_store, tmp_path, monkeypatch):
    """``torchrun --nproc_per_node 2 -m workbench train``: gloo, each rank half of every batch;
    the weights match one process's (up to rounding), rank 0 alone prints and writes, and the card
    records two processes."""
    cfg = tiny(tiny_store, steps=4, eval_every=2, checkpoint_every=2)  # flips drawn for the global batch
    path = tmp_path / "idm.yaml"
    path.write_text(yaml.safe_dump(cfg.to_dict()))
    args = ["train", "joint_v1", "--config", str(path), "--seed", "3"]
    cache = Path(os.environ["WORKBENCH_CACHE"])
    start = time.perf_counter()
    two = _cli(args, tmp_path / "two", cache, nproc=2)
    assert two.returncode == 0, two.stderr[-3000:]
    one = _cli(args, tmp_path / "one", cache)
    assert one.returncode == 0, one.stderr[-3000:]
    assert time.perf_counter() - start < 600
    printed = [line for line in two.stdout.splitlines() if line.startswith("model ")]
    assert len(printed) == 1 and printed == [line for line in one.stdout.splitlines() if line.startswith("model ")]
    model_id = printed[0].split()[1]
    assert os.listdir(tmp_path / "two") == [model_id]
    monkeypatch.setenv("WORKBENCH_MODELS", str(tmp_path / "two"))
    card = load_card(model_id)
    assert card.training["world_size"] == 2 and card.training["steps"] == 4
    assert not (tmp_path / "two" / model_id / "checkpoint.pt").exists()
    two_out = outputs(model_id)
    monkeypatch.setenv("WORKBENCH_MODELS", str(tmp_path / "one"))
    assert torch.allclose(outputs(model_id), two_out, atol=1e-4)
