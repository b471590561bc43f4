"""Regression test for the shared training engine: the same seeds give bit-identical weights to
the trainers it replaced.

The digests below were RECORDED FROM THE OLD CODE (main at c3a3861, before
:mod:`workbench.engine.fit` existed: ``methods/idm/training._train`` and
``methods/worldmodel/training._fit``), by training these tiny models on the tiny first_person
recording. The engine keeps each trainer's exact random-number consumption (IDM: the sampler's
draw, then the flip mask, from one numpy Generator; world models: the sampler's draw, then
``torch.manual_seed(rng.integers(2**31))``), so the weights must not change by a single bit.
A deliberate change of training semantics bumps :data:`workbench.engine.ids.ENGINE_VERSION` and
re-records these values. ENGINE_VERSION 2 (every split ≥ 1 block once a game has three) moved
blocks of the tiny world-model clips' split and re-recorded ``frameae``, ``lawm`` and ``ctrl``;
the IDMs' split (10 blocks a game) is unchanged and so are their digests. ENGINE_VERSIONs 3 and 4 (IDM
early stopping on the main head's class-balanced loss, then its balanced error) keep other best
weights: ``idm_patience``.
"""

from __future__ import annotations

import hashlib
import os

import pytest
import torch

from workbench.engine.library import load_card, load_model
from workbench.methods.idm import TrainConfig, train
from workbench.methods.worldmodel import ControllerConfig, WorldModelConfig, train_controller, train_world_model
from conftest import record_tiny

#: sha256 of each model's state_dict (sorted keys, dtype, shape and raw bytes), recorded from main's code.
RECORDED = {
    "idm": "18709ea3e18368ee6d2b0bca90c88bfb9082167f56e361d4be178d72e755c87e",
    "idm_patience": "c9dfeee3940725666495f0adc38898a36c29d6bc031f3e5f2d43f2e47d31b132",
    "frameae": "af4df747bbea03c745a5c74a894c5840efc262be4a13c35be6b986ea94832d2d",
    "lawm": "9521d81cab4a803a78c0edfc659d77ebee83c88b8965a3425554d5272e1e7c3d",
    "ctrl": "d323b3e694cfb4ccfb70e4bb7e9c26fac0fcf02145b143fedbde918b2d00557d",
}


def state_digest(model: torch.nn.Module) -> str:
    """sha256 over a state_dict's sorted names, dtypes, shapes and raw bytes (independent of torch.save)."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def first_person_tiny(tmp_path_factory):
    """The first_person catalog entry recorded at its tiny size (2 games x 40 frames) with flow."""
    return record_tiny(tmp_path_factory, "first_person", flow=True)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def trained_digests(store) -> dict[str, str]:
    """Train the five tiny models and return their weights' digests by role."""
    idm = dict(datasets=[str(store)], steps=6, batch_size=8, chunks_per_batch=2, eval_every=3, checkpoint_every=2,
               split_block=4, input_size=32, width=16, embed_dim=32, device="cpu", hflip=True, seed=3)
    ids = {"idm": train(TrainConfig(**idm), progress=False).model_id,
           "idm_patience": train(TrainConfig(**{**idm, "patience": 1, "eval_every": 1, "seed": 4}),
                                 progress=False).model_id}
    wm = WorldModelConfig(datasets=[str(store)], split_block=8, clip_length=4, input_size=32, encoder_width=8,
                          rep_channels=4, encoder_steps=4, latent_dim=8, d_model=16, depth=1, n_heads=2, idm_width=8,
                          steps=4, batch_size=4, chunks_per_batch=2, eval_every=2, checkpoint_every=1, eval_clips=8,
                          device="cpu", family="noisy", seed=1)
    ids["lawm"] = train_world_model(wm, progress=False)
    ids["frameae"] = load_card(ids["lawm"])["encoder"]
    ids["ctrl"] = train_controller(ControllerConfig(world_model=ids["lawm"], kind="xattn", action_space="motion",
                                                    steps=3, batch_size=8, eval_every=2, checkpoint_every=3,
                                                    device="cpu", seed=2), progress=False)
    return {role: state_digest(load_model(model_id, "cpu")) for role, model_id in ids.items()}


def test_engine_gives_the_old_trainers_weights(first_person_tiny):
    assert trained_digests(first_person_tiny) == RECORDED


if __name__ == "__main__":  # print the digests (how RECORDED was filled in, on main's code)
    import sys
    import tempfile

    tmp = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp()
    os.environ.update(WORKBENCH_CACHE=tmp + "/cache", WORKBENCH_MODELS=tmp + "/models",
                      WORKBENCH_CATALOG=tmp + "/catalog", WORKBENCH_IMPORT_ROOT=tmp + "/imports")
    for d in ("cache", "models", "catalog", "imports"):
        os.makedirs(f"{tmp}/{d}")
    from workbench.data.catalog import get_entry, materialise
    from workbench.flow import compute_flow

    torch.set_num_threads(1)
    store = materialise(get_entry("first_person"), size="tiny", progress=False)
    compute_flow(store, workers=1, progress=False)
    print(trained_digests(store), file=sys.stdout)
