"""What every trainer of the model library shares around its loop: one writer per model id, a
pinned torch thread count, and checkpoints that resume only the run that wrote them.

torch splits a reduction (a convolution's weight gradient, a sum) across its intra-op threads and
adds the parts in an order that depends on their number, so the same seed trained with 1 and 2
threads ends with different weights. Training therefore always runs on :data:`TRAIN_THREADS`
threads, whatever the machine: a model id means the same weights on any CPU, and a run resumed on
another machine continues the same computation.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Iterator

import torch
import torch.distributed as dist

from .library import ModelLibraryError, atomic_torch_save, load_tensors, model_lock

#: torch intra-op threads while training (one is also the fastest for these small models, and
#: several trainings run side by side in a study).
TRAIN_THREADS = 1


def world() -> tuple[int, int]:
    """``(rank, world size)`` of this process: ``(0, 1)`` unless a process group is initialised."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def join_process_group() -> None:
    """Under ``torchrun`` (``WORLD_SIZE`` > 1), join its process group (NCCL on CUDA, else gloo)
    once; ranks other than 0 then print nothing (standard output to the null device, progress bars
    off), so a run's output and files come from rank 0 alone; errors still reach standard error."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        if dist.get_rank() != 0:
            os.environ["TQDM_DISABLE"] = "1"
            sys.stdout = open(os.devnull, "w")


_HOST_GROUP: list = []


def host_group():
    """A process group whose collectives take host tensors: the default one under gloo, a gloo
    group beside NCCL (created once), for the few bits of host state the ranks must agree on."""
    if dist.get_backend() == "gloo":
        return None
    if not _HOST_GROUP:
        _HOST_GROUP.append(dist.new_group(backend="gloo"))
    return _HOST_GROUP[0]


def barrier() -> None:
    """Wait for every rank (nothing in a single process)."""
    if world()[1] > 1:
        dist.barrier()


@contextmanager
def training_session(model_id: str) -> Iterator[None]:
    """Hold ``model_id``'s lock (a second trainer of the same id stops at once with a
    :class:`workbench.core.locks.LockError`; under ``torchrun`` rank 0 holds it for the group)
    and run torch on :data:`TRAIN_THREADS` threads, restoring the caller's thread count afterwards."""
    join_process_group()
    with model_lock(model_id) if world()[0] == 0 else nullcontext():
        previous = torch.get_num_threads()
        torch.set_num_threads(TRAIN_THREADS)
        try:
            yield
        finally:
            torch.set_num_threads(previous)


def write_checkpoint(path: Path, identity: dict, **state) -> None:
    """Save ``state`` (model, optimiser, RNG, step …) with the config identity and thread count."""
    atomic_torch_save({**state, "config": identity, "torch_threads": TRAIN_THREADS}, path)


def read_checkpoint(path: Path, identity: dict) -> dict | None:
    """The checkpoint at ``path`` (None when there is none); refused when another config or
    another thread count wrote it, since resuming it would not give the uninterrupted weights."""
    if not path.is_file():
        return None
    ckpt = load_tensors(path)
    if not isinstance(ckpt, dict) or ckpt.get("config") != identity:
        raise ModelLibraryError(f"{path} was written by a different config; delete it, pass force=True,"
                                " or give this config its own model_id")
    if ckpt.get("torch_threads") != TRAIN_THREADS:
        raise ModelLibraryError(f"{path} was written with {ckpt.get('torch_threads', 'an unrecorded number of')}"
                                f" torch threads and training runs on {TRAIN_THREADS}, so resuming would not"
                                " reproduce an uninterrupted run; delete it or pass force=True")
    return ckpt
