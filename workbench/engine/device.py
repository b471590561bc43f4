"""Which torch device a model runs on, and the accelerator options a trainer applies to it:
channels-last weights, ``torch.compile`` and bfloat16 autocast (the configs' ``channels_last``,
``compile`` and ``precision`` fields; all off by default, which leaves CPU runs bit-identical)."""

from __future__ import annotations

import os
from contextlib import nullcontext
from typing import ContextManager, Iterable

import torch


def default_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else CUDA when available (under ``torchrun``, the process's
    ``LOCAL_RANK`` GPU), else CPU."""
    if device is not None:
        return torch.device(device)
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ["LOCAL_RANK"])) if "LOCAL_RANK" in os.environ else torch.device("cuda")


def place(model: torch.nn.Module, device: torch.device | str, channels_last: bool = False,
          compile: bool | str = False, parts: Iterable[torch.nn.Module] | None = None) -> torch.nn.Module:
    """``model`` moved to ``device`` (in place, returned): with ``channels_last`` its 4-D weights in
    channels-last layout (convolutions then run NHWC, the tensor cores' layout); with ``compile``
    (True or a ``torch.compile`` mode) the forward of ``parts`` (default the model: the submodules
    whose ``forward`` a training step calls) compiled in place, so the state dict keeps its keys."""
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if compile:
        mode = None if compile is True or compile == "default" else compile
        for part in parts if parts is not None else [model]:
            part.compile(mode=mode)
    return model


def autocast(device: torch.device | str, precision: str) -> ContextManager:
    """bfloat16 autocast on ``device`` for ``precision`` ``"bf16"``; nothing for ``"fp32"``."""
    if precision == "fp32":
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
