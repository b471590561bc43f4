"""Early stopping: stops on a constructed validation-loss plateau, keeps the best weights, and
the IDM and world-model trainers record it on the card."""

from __future__ import annotations

import pytest
import torch

from workbench.engine import stopping
from conftest import record_tiny


def test_stops_after_patience_evaluations_without_improvement_and_keeps_the_best_weights():
    model = torch.nn.Linear(2, 1)
    record = stopping.new_record()
    losses = [1.0, 0.8, 0.7, 0.71, 0.70, 0.72, 0.5]  # plateau after the third evaluation
    stops = []
    for step, loss in enumerate(losses, start=1):
        with torch.no_grad():
            model.weight.fill_(step)  # the weights of evaluation `step`
        stops.append(stopping.observe(record, loss, step * 100, model, patience=3))
        if stops[-1]:
            break
    assert stops == [False, False, False, False, False, True]  # never sees the late 0.5
    assert record["best_step"] == 300 and record["best_loss"] == 0.7 and record["stopped_step"] == 600
    stopping.restore_best(record, model)
    assert torch.all(model.weight == 3)
    card = stopping.stopping_card(record, 3)
    assert card == {"patience": 3, "stopped_step": 600, "best_step": 300, "best_val_loss": 0.7}


def test_min_delta_counts_tiny_gains_as_a_plateau():
    record, model = stopping.new_record(), torch.nn.Linear(1, 1)
    assert not stopping.observe(record, 1.0, 1, model, patience=2, min_delta=0.01)
    assert not stopping.observe(record, 0.995, 2, model, patience=2, min_delta=0.01)
    assert stopping.observe(record, 0.992, 3, model, patience=2, min_delta=0.01) and record["best_step"] == 1


def test_idm_stopping_loss_is_the_main_heads_balanced_error():
    """A main head right on the rare classes and wrong on the common one, and an auxiliary head
    that is always wrong: the stopping loss is the main head's error, each class weighing the same."""
    import numpy as np

    from workbench.frames.pairs import PairIndex
    from workbench.methods.idm.training import validation_loss

    y = np.array([1] * 8 + [0, 2])  # 80 % NEUTRAL
    steer = np.zeros((10, 3))
    steer[np.arange(10), np.where(y == 1, 0, y)] = 1.0  # right on LEFT/RIGHT, wrong on every NEUTRAL
    zeros = np.zeros(10, np.int64)
    index = PairIndex([], ["g"], {"steer": ["LEFT", "NEUTRAL", "RIGHT"], "fire": ["0", "1"]},
                      {"steer": "categorical", "fire": "binary"}, {"steer": "steer", "fire": "fire"},
                      zeros, zeros, zeros, zeros, {"steer": y, "fire": np.ones(10, np.int64)})
    logits = {"steer": steer, "fire": np.tile([10.0, -10.0], (10, 1))}
    assert validation_loss(index, logits, "steer") == pytest.approx(1 / 3)  # 1 - balanced accuracy (2/3)
    assert validation_loss(index, logits, "steer", balanced=False) == pytest.approx(0.8)
    index.y["steer"] = np.full(10, -1)
    assert validation_loss(index, logits, "steer") is None  # nothing labeled: no early stopping


def test_idm_training_stops_on_a_flat_validation_loss(tiny_stores_for_stopping):
    from workbench.engine.library import load_card
    from workbench.methods.idm import TrainConfig, train

    # lr = 0: the weights never change, so the validation loss is flat from the first evaluation
    cfg = TrainConfig(datasets=[str(tiny_stores_for_stopping)], steps=40, batch_size=8, chunks_per_batch=2,
                      eval_every=2, split_block=4, input_size=32, width=16, embed_dim=32, device="cpu", lr=0.0,
                      patience=2, model_id="flat")
    result = train(cfg, progress=False)
    assert result.finished and result.step == 6  # evaluations at 2 (best), 4, 6: two without improvement
    early = load_card("flat")["training"]["early_stopping"]
    assert early["stopped_step"] == 6 and early["best_step"] == 2 and early["best_val_loss"] > 0
    assert all("val_loss" in h for h in load_card("flat")["history"])
    assert TrainConfig(datasets=["racing"]).identity() == {
        k: v for k, v in TrainConfig(datasets=["racing"], patience=None).to_dict().items()
        if k not in ("device", "checkpoint_every", "cache_chunks", "memory_gb", "compile", "channels_last", "patience",
                     "precision")}  # runtime fields, an unset patience and the default precision leave the id as it was


def test_world_model_training_stops_on_a_flat_validation_loss(world_store_for_stopping, monkeypatch):
    import numpy as np

    from workbench.engine.library import load_card
    from workbench.methods.worldmodel import WorldModelConfig, train_world_model, training as train

    # a constructed plateau: the validation one-step error is the same at every evaluation
    monkeypatch.setattr(train, "one_step_errors", lambda model, s, actions=None: {"model": np.ones((len(s), 3))})
    cfg = WorldModelConfig(datasets=[str(world_store_for_stopping)], split_block=4, clip_length=3, input_size=32,
                           encoder_width=8, rep_channels=4, encoder_steps=2, latent_dim=8, d_model=16, depth=1,
                           n_heads=2, idm_width=8, steps=30, batch_size=4, chunks_per_batch=2, eval_every=2,
                           eval_clips=8, device="cpu", patience=1, family="noisy", model_id="flat-wm")
    model_id = train_world_model(cfg, progress=False)
    card = load_card(model_id)
    assert card["training"]["steps"] == 4 and card["training"]["early_stopping"]["stopped_step"] == 4, card["history"]


@pytest.fixture(scope="module")
def tiny_stores_for_stopping(tmp_path_factory):
    return record_tiny(tmp_path_factory, "racing")


@pytest.fixture(scope="module")
def world_store_for_stopping(tmp_path_factory):
    return record_tiny(tmp_path_factory, "first_person")


def test_a_model_trained_under_another_engine_version_is_not_reused(tiny_stores_for_stopping, monkeypatch):
    """Same settings, other training semantics: training again under a new ENGINE_VERSION must not
    hand back the old weights as if they were this code's."""
    from workbench.engine import fit
    from workbench.engine.library import ModelLibraryError
    from workbench.methods.idm import TrainConfig, train

    cfg = TrainConfig(datasets=[str(tiny_stores_for_stopping)], steps=2, batch_size=8, chunks_per_batch=2,
                      eval_every=2, split_block=4, input_size=32, width=16, embed_dim=32, device="cpu",
                      model_id="versioned")
    assert train(cfg, progress=False).finished
    assert train(cfg, progress=False).finished  # the same version: found again
    monkeypatch.setattr(fit, "ENGINE_VERSION", fit.ENGINE_VERSION + 1)
    with pytest.raises(ModelLibraryError, match="engine version"):
        train(cfg, progress=False)
