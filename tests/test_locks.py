"""One writer per dataset variant and per model id, exercised with real processes; stale locks are
taken over; training gives the same weights whatever torch thread count the caller runs with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from workbench.data.catalog import get_entry
from workbench.data.schema import LabelSchema
from workbench.data.store import StoreWriter, is_complete, open_store
from workbench.core.locks import LockError, acquire, hold, release
from workbench.engine.library import ModelLibraryError, atomic_torch_save, load_card, load_tensors, model_path
from workbench.methods.idm import TrainConfig, train
from workbench.engine.session import TRAIN_THREADS

SCHEMA = LabelSchema.from_list([{"name": "steer", "kind": "categorical", "classes": ["LEFT", "NEUTRAL", "RIGHT"]}])
TIMEOUT = 240  # seconds a child may take on a busy 2-core machine

# A user catalog entry recording 30 frames of one Atari game: a real recording, in a second or two.
ENTRY = """\
id: locktest
source:
  type: record
  games: [{game: Pong, engine: ale}]
labels:
  - {name: steer, kind: categorical, classes: [LEFT, NEUTRAL, RIGHT]}
sizes: {tiny: {episodes: 1, frames_per_episode: 30}}
frame_size: [32, 32]
"""


def synthetic_store(path: Path, n: int = 48) -> Path:
    """Two games of ``n`` random 32x32 frames with random steering labels (a store to train on)."""
    rng = np.random.default_rng(0)
    with StoreWriter(path, SCHEMA, ["A", "B"], (32, 32)) as w:
        for game in ("A", "B"):
            w.append(rng.integers(0, 255, (n, 32, 32, 3), dtype=np.uint8), game, 0, np.arange(n),
                     {"steer": rng.integers(0, 3, n)})
    return path


def tiny_config(store: Path, **overrides) -> TrainConfig:
    values = dict(datasets=[str(store)], steps=4, batch_size=8, chunks_per_batch=1, eval_every=2, eval_pairs=16,
                  checkpoint_every=2, split_block=4, input_size=32, width=16, embed_dim=32, device="cpu",
                  model_id="same")
    values.update(overrides)
    return TrainConfig(**values)


def child(script: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    """A second Python process running ``script`` (with ``sys.argv[1:] == args``)."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], env=env or dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"first process ended early: {proc.communicate()}")
        assert time.monotonic() < deadline, "first process never reached its pause"
        time.sleep(0.05)


def workbench_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "workbench", *args], capture_output=True, text=True,
                          timeout=TIMEOUT, env=dict(os.environ))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --- two real processes ------------------------------------------------------------------------


def test_second_recording_of_a_variant_stops_and_the_first_finishes_intact(workbench_dirs, tmp_path):
    (workbench_dirs["catalog"] / "locktest.yaml").write_text(ENTRY)
    paused, go = tmp_path / "paused", tmp_path / "go"
    first = child("""
        import sys, time
        from pathlib import Path
        from workbench.data import store
        from workbench.data.catalog import get_entry, materialise
        append = store.StoreWriter.append
        def append_then_pause(self, *args, **kwargs):  # the first episode on disk in the temporary store
            append(self, *args, **kwargs)
            self._flush()
            Path(sys.argv[1]).touch()
            while not Path(sys.argv[2]).exists():
                time.sleep(0.05)
        store.StoreWriter.append = append_then_pause
        materialise(get_entry("locktest"), size="tiny", progress=False)
    """, str(paused), str(go))
    try:
        wait_for(paused, first)
        folder = get_entry("locktest").store_path("tiny").parent
        in_progress = list(folder.glob("frames.zarr.tmp-*"))
        assert len(in_progress) == 1

        second = workbench_cli("record", "locktest", "--size", "tiny", "--force")
        assert second.returncode == 2
        message = second.stderr.strip()
        assert "\n" not in message and "Traceback" not in message
        assert f"pid {first.pid} " in message and str(folder / "write.lock") in message and "since" in message
        assert list(folder.glob("frames.zarr.tmp-*")) == in_progress  # the first one's store untouched
    finally:
        go.touch()
        out, err = first.communicate(timeout=TIMEOUT)
    assert first.returncode == 0, err
    store = get_entry("locktest").store_path("tiny")
    assert is_complete(store) and open_store(store).sizes["frame"] == 30
    assert not (folder / "write.lock").exists() and not list(folder.glob("*.tmp-*"))


def test_second_training_of_a_model_id_stops_and_the_first_finishes(tmp_path, workbench_models):
    store = synthetic_store(tmp_path / "data" / "frames.zarr")
    config = tmp_path / "config.yaml"
    tiny_config(store).save(config)
    paused, go = tmp_path / "paused", tmp_path / "go"
    first = child("""
        import sys, time
        from pathlib import Path
        from workbench.engine import fit as trainer
        from workbench.methods.idm import TrainConfig, train
        write = trainer.write_checkpoint
        def write_then_pause(*args, **kwargs):  # mid-training, a checkpoint on disk
            write(*args, **kwargs)
            Path(sys.argv[2]).touch()
            while not Path(sys.argv[3]).exists():
                time.sleep(0.05)
        trainer.write_checkpoint = write_then_pause
        train(TrainConfig.load(sys.argv[1]), progress=False)
    """, str(config), str(paused), str(go))
    try:
        wait_for(paused, first)
        second = workbench_cli("train", "joint_v1", "--config", str(config))
        assert second.returncode == 2
        message = second.stderr.strip()
        assert "\n" not in message and "Traceback" not in message
        assert f"model 'same' is in use by pid {first.pid} " in message and str(workbench_models / "same.lock") in message
        assert not (model_path("same") / "card.yaml").exists()
    finally:
        go.touch()
        out, err = first.communicate(timeout=TIMEOUT)
    assert first.returncode == 0, err
    card = load_card("same")
    assert card.steps == 4 and not (model_path("same") / "checkpoint.pt").exists()
    assert not (workbench_models / "same.lock").exists()


# --- stale and foreign locks -------------------------------------------------------------------


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, workbench_models):
    lock = workbench_models / "same.lock"
    lock.write_text(json.dumps({"pid": dead_pid(), "host": os.uname().nodename, "since": "yesterday"}))
    store = synthetic_store(tmp_path / "data" / "frames.zarr")
    assert train(tiny_config(store), progress=False).finished
    assert not lock.exists()


def test_lock_api_live_reused_foreign_and_unreadable_holders(tmp_path):
    path = tmp_path / "locks" / "x.lock"
    with hold(path, "thing"):
        owner = json.loads(path.read_text())
        assert owner["pid"] == os.getpid() and owner["host"] == os.uname().nodename
        with pytest.raises(LockError, match=rf"thing is in use by pid {os.getpid()} .*since .*x\.lock"):
            acquire(path, "thing")  # held by a live process: this one
    assert not path.exists()

    # our own pid, but started at another time: the pid was reused, the lock is stale
    path.write_text(json.dumps({**owner, "started": owner["started"] - 1000}))
    release(path, acquire(path, "thing"))
    # a process on another host cannot be checked: it keeps its lock
    path.write_text(json.dumps({**owner, "host": "elsewhere"}))
    with pytest.raises(LockError, match="pid .* on elsewhere"):
        acquire(path, "thing")
    # no readable content: being written (young) or its writer died right after creating it (old)
    path.write_text("")
    with pytest.raises(LockError, match="being locked"):
        acquire(path, "thing")
    os.utime(path, (time.time() - 60, time.time() - 60))
    text = acquire(path, "thing")
    assert json.loads(path.read_text())["token"] == json.loads(text)["token"]
    release(path, text)
    assert list(path.parent.iterdir()) == []  # no lock, no set-aside stale copies


# --- thread count ------------------------------------------------------------------------------

TRAIN_WITH_THREADS = """
    import sys, torch
    from workbench.methods.idm import TrainConfig, train
    torch.set_num_threads(int(sys.argv[2]))
    train(TrainConfig.load(sys.argv[1]), progress=False)
    assert torch.get_num_threads() == int(sys.argv[2])  # the caller's setting is restored
"""


def test_one_and_two_torch_threads_give_bit_identical_weights(tmp_path):
    store = synthetic_store(tmp_path / "data" / "frames.zarr", n=64)
    config = tmp_path / "config.yaml"
    tiny_config(store, steps=6, width=32, embed_dim=64, checkpoint_every=100).save(config)
    libraries = {}
    for threads in (1, 2):
        libraries[threads] = tmp_path / f"models-{threads}"
        proc = child(TRAIN_WITH_THREADS, str(config), str(threads),
                     env={**os.environ, "WORKBENCH_MODELS": str(libraries[threads])})
        out, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, err
    one, two = (torch.load(lib / "same" / "weights.pt", weights_only=True) for lib in libraries.values())
    assert one.keys() == two.keys() and all(torch.equal(one[k], two[k]) for k in one)
    one, two = ((lib / "same" / "weights.pt").read_bytes() for lib in libraries.values())
    assert one == two  # and so the same weights_sha256
    cards = [(lib / "same" / "card.yaml").read_text() for lib in libraries.values()]
    assert all(f"torch_threads: {TRAIN_THREADS}" in card for card in cards)


def test_a_checkpoint_from_another_thread_count_is_not_resumed(tmp_path):
    store = synthetic_store(tmp_path / "data" / "frames.zarr")
    assert not train(tiny_config(store), max_steps=2, progress=False).finished
    path = model_path("same") / "checkpoint.pt"
    atomic_torch_save({**load_tensors(path), "torch_threads": 4}, path)
    with pytest.raises(ModelLibraryError, match=f"4 torch threads and training runs on {TRAIN_THREADS}"):
        train(tiny_config(store), progress=False)


def test_world_model_trainer_pins_threads_and_locks(tmp_path, workbench_models):
    from workbench.methods.worldmodel.config import AutoencoderConfig
    from workbench.methods.worldmodel.training import train_autoencoder

    store = synthetic_store(tmp_path / "data" / "frames.zarr")
    cfg = AutoencoderConfig(datasets=[str(store)], steps=2, batch_size=4, chunks_per_batch=1, eval_every=2,
                            split_block=4, input_size=32, width=8, rep_channels=4, device="cpu", model_id="ae")
    with hold(workbench_models / "ae.lock", "model 'ae'"):
        with pytest.raises(LockError, match="model 'ae' is in use"):
            train_autoencoder(cfg, progress=False)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train_autoencoder(cfg, progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    assert load_card("ae").training["torch_threads"] == TRAIN_THREADS
