"""The engine's pieces on known answers: the id rule, the curves' reader across resumed runs, the
typed model card on cards written by main's code, and the engine's hooks (schedule, clipping)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from workbench.engine import fit as engine_fit
from workbench.engine import ids
from workbench.engine.card import ModelCard
from workbench.engine.curves import CurveWriter, read_curves
from workbench.engine.library import load_card, model_path

OLD_CARDS = Path(__file__).parent / "data" / "old_cards"


# --- ids ---------------------------------------------------------------------------------------


def test_engine_fields_are_declared_once_and_keep_every_methods_identity():
    from dataclasses import dataclass, fields

    from workbench.engine.config import ConfigIO, EngineFields
    from workbench.methods.idm.config import TrainConfig
    from workbench.methods.worldmodel.config import AutoencoderConfig, ControllerConfig, WorldModelConfig

    shared = {f.name for f in fields(EngineFields)}
    for cls in (TrainConfig, AutoencoderConfig, WorldModelConfig, ControllerConfig):
        assert issubclass(cls, EngineFields) and shared <= {f.name for f in fields(cls)}
    cfg = TrainConfig(datasets=["racing"], seed=3, patience=2)
    assert TrainConfig.from_yaml(cfg.to_yaml()) == cfg
    assert "device" not in cfg.identity() and cfg.identity()["patience"] == 2  # runtime fields stay out

    @dataclass
    class Needs(ConfigIO, EngineFields):  # keyword-only engine fields: a method's field may be required
        datasets: list

    assert Needs(["a"], seed=1).seed == 1 and "patience" not in Needs(["a"]).identity()


def test_id_rule_kind_tags_seed_and_hash_of_identity_and_engine_version(monkeypatch):
    identity = {"steps": 100, "lr": 0.001}
    expected = hashlib.sha1(json.dumps({"identity": identity, "engine": ids.ENGINE_VERSION},
                                       sort_keys=True).encode()).hexdigest()[:6]
    model_id = ids.make_model_id("lawm", ["noisy", "first_person"], 3, identity)
    assert model_id == f"lawm-noisy-first_person-s3-{expected}"
    assert ids.make_model_id("lawm", ["noisy", "first_person"], 3, dict(reversed(identity.items()))) == model_id
    assert ids.make_model_id("lawm", ["noisy", "first_person"], 3, {**identity, "steps": 200}) != model_id
    monkeypatch.setattr(ids, "ENGINE_VERSION", ids.ENGINE_VERSION + 1)  # new training semantics: new ids
    assert ids.make_model_id("lawm", ["noisy", "first_person"], 3, identity) != model_id


def test_id_rule_long_ids_and_game_tags():
    long = ids.make_model_id("ctrl", ["x" * 120], 0, {"a": 1})
    assert len(long) <= 100 and long.startswith("ctrl-") and long.endswith(f"-s0-{ids.identity_hash({'a': 1})}")
    assert ids.tag_of(None) == "all" and ids.tag_of(["Pong"]) == "Pong"
    assert ids.tag_of(["B", "A"]) == ids.tag_of(["A", "B"]) and ids.tag_of(["A", "B"]).startswith("g")


# --- curves ------------------------------------------------------------------------------------

def _run(folder: Path, start: int, steps: range, offset: float) -> None:
    writer = CurveWriter(folder, start)
    for step in steps:
        writer.log(step, {"loss": step + offset, "note": "not a number"}, "train")
    writer.close()


def test_curves_of_a_resumed_run_have_each_step_once_and_the_last_value(tmp_path):
    folder = tmp_path / "curves"
    _run(folder, 0, range(1, 8), 0.0)      # crashed after step 7, its checkpoint at step 4
    _run(folder, 4, range(5, 7), 100.0)    # resumed from step 4, stopped early at step 6
    table = read_curves(tmp_path)           # the model folder or its curves/ folder
    assert list(table.columns) == ["step", "tag", "value"] and set(table.tag) == {"train/loss"}
    assert table.step.tolist() == [1, 2, 3, 4, 5, 6]  # step 7 of the first run was purged with its successors
    assert table.value.tolist() == [1, 2, 3, 4, 105, 106]
    pd.testing.assert_frame_equal(read_curves(folder), table)
    assert read_curves(tmp_path / "nothing").empty



def test_curves_order_runs_of_the_same_second_by_their_writing(tmp_path):
    """Event files of one process and second differ only in a counter (``.9``, ``.10``), which does
    not sort as text: a resumed run must still replace its predecessor's later steps."""
    folder = tmp_path / "curves"
    for i, (start, steps, offset) in enumerate(((0, range(1, 8), 0.0), (4, range(5, 7), 100.0))):
        _run(tmp_path / "run", start, steps, offset)
        (written,) = (tmp_path / "run").iterdir()
        folder.mkdir(exist_ok=True)
        moved = written.rename(folder / f"events.out.tfevents.1700000000.host.name.42.{9 + i}")
        os.utime(moved, ns=(10**18 + i, 10**18 + i))
    assert read_curves(folder).value.tolist() == [1, 2, 3, 4, 105, 106]


# --- cards -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(p.name for p in OLD_CARDS.iterdir()))
def test_cards_written_by_mains_code_load_as_model_cards(name, workbench_models):
    shutil.copytree(OLD_CARDS / name, workbench_models / name)
    on_disk = yaml.safe_load((OLD_CARDS / name / "card.yaml").read_text())
    card = load_card(name)
    assert isinstance(card, ModelCard) and card == on_disk and card.to_dict() == on_disk  # nothing lost or added
    assert card.model_id == name and card.architecture == on_disk["architecture"] and card.seed == on_disk["seed"]
    assert card.provenance == {k: on_disk[k] for k in ("code_version", "versions", "created")}
    assert card.steps == on_disk["training"]["steps"] and card["config"] == card.config  # flat reads still work
    kind = name.split("-")[0]
    if kind == "ctrl":
        assert card.split == {} and card.extras["world_model"].startswith("lawm-") and card.extras["kind"] == "xattn"
    else:
        assert card.split == {k: on_disk["config"][k] for k in ("split_block", "split_fractions", "split_seed")}
    if kind.startswith("joint"):
        assert card.extras["main_head"] == "steer" and "steer" in card.extras["heads"]
    if kind == "lawm":
        assert card.extras["family"] == "noisy" and card.extras["encoder"].startswith("frameae-")
    assert ModelCard.from_dict(card.to_dict()) == card and ModelCard.of(card) is card


# --- hooks -------------------------------------------------------------------------------------

def test_lr_schedule_and_grad_clipping_are_applied_by_the_engine(workbench_models):
    """A linear model on a constant batch: the engine sets each step's lr from the schedule and
    clips the gradient norm, as the spec says (one AdamW step moves each weight by about lr)."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1, bias=False)
    model.config = {}
    seen = []

    class Sampler:
        def draw(self, rng):
            return rng.integers(10, size=2)

    def step_fn(positions, rng):
        seen.append(positions.tolist())
        return (model(torch.ones(2, 4)) * 1e6).sum(), {"extra": 1.0}

    spec = engine_fit.FitSpec(model_id="hooks", identity={"x": 1}, seed=0, steps=4, lr=0.1, weight_decay=0.0,
                              eval_every=2, checkpoint_every=10, items_per_step=2, warmup=0.5, grad_clip=1.0)
    lrs, norms = [], []
    real_step = torch.optim.AdamW.step

    def spy(self, *a, **k):
        lrs.append(self.param_groups[0]["lr"])
        norms.append(float(model.weight.grad.norm()))  # the raw gradient's norm is 4e6
        return real_step(self, *a, **k)

    torch.optim.AdamW.step = spy
    try:
        state, done = engine_fit.fit(spec, model, step_fn, lambda: ({"m": 1.0}, 1.0), Sampler(), progress=False)
    finally:
        torch.optim.AdamW.step = real_step
    assert done and state["step"] == 4
    assert np.allclose(lrs, [0.1 * engine_fit.lr_factor(s, 4, 0.5) for s in range(4)])
    assert lrs[0] == pytest.approx(0.05) and lrs[1] == pytest.approx(0.1)
    assert norms == pytest.approx([1.0] * 4)
    assert seen == [np.random.default_rng(0).integers(10, size=2).tolist()] + seen[1:]  # drawn from the seed
    assert [h["step"] for h in state["history"]] == [2, 4]
    assert state["history"][0]["train"]["extra"] == 1.0 and state["history"][0]["val_loss"] == 1.0
    curves = read_curves(model_path("hooks"))
    assert set(curves.tag) == {"train/loss", "train/extra", "throughput/items_per_s", "val/m", "val/val_loss"}
    assert curves[curves.tag == "val/m"].step.tolist() == [2, 4]
