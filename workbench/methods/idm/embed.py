"""Penultimate embeddings, predictions and logits of a trained IDM over a dataset, as xarray.

The returned dataset is the contract the analyses (geometry, probes, KNN, calibration) rely on::

    dims      frame (one row per pair t -> t+1 of a split; pairs purged at split boundaries
              are left out), dim, <head>_class
    embedding       float32 (frame, dim)          penultimate activations
    coords    game (str), episode, step, source_frame (index of t in the source store),
              split (str: train/val/test, the model's block split rule applied to this dataset)
    <head>          int8 (frame)                  TRUE label of each head (attrs kind, classes);
                                                  -1 where missing or absent from the dataset
    flow_steer, flow_dom_dx, flow_mag             copied when the dataset has flow
    pred_<head>     int8 (frame)                  argmax of the model's logits
    logits_<head>   float32 (frame, <head>_class) raw logits; <head>_class holds the class names
    attrs     model_id, dataset_id, variant, split, heads (name -> class names), weights_sha256

The labels a head was *trained* on (e.g. ``flow_steer`` for Atari) are named in the model card;
the ``<head>`` variables here are always the dataset's true labels. Results are cached at
``<cache>/embeddings/<model_id>/<dataset_id>-<variant>-<split>.zarr`` (written atomically) and
reused while the model's weights, the dataset and its derived stores are unchanged. Extraction
streams: the outputs are written one chunk of :data:`EMBED_CHUNK` pairs at a time into a
temporary store renamed into place when complete, so a million frames never sit in memory.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import uuid
import warnings
from pathlib import Path
from typing import Mapping

import dask.array
import numpy as np
import torch
import xarray as xr
import zarr
from tqdm.auto import tqdm

from ...core.errors import ConfigError, DataError
from ...data.store import finish_store, is_complete, open_store
from ...data.episode import successor_mask
from ...engine.device import default_device
from ...engine.card import ModelCard
from ...engine.library import load_card, load_model
from ...core.paths import cache_dir, check_id
from .inference import infer
from ...frames.sources import Source, resolve_source
from ...frames.split import PURGED, SPLITS, assign_split
from ...frames.stream import FrameReader

FLOW_VARIABLES = ("flow_steer", "flow_dom_dx", "flow_mag")
CACHE_KEYS = ("model_id", "weights_sha256", "dataset_id", "variant", "split", "source_frames", "derived", "split_rule")
#: Version of the split rule (:func:`~workbench.frames.split.assign_split`): embeddings cached
#: under another rule hold other rows and are recomputed.
SPLIT_RULE = "blocks+purge"
#: Pairs per zarr chunk and per write while extracting: 16 MiB of a 256-d float32 embedding.
EMBED_CHUNK = 16_384


def embeddings_path(model_id: str, source: Source, split: str) -> Path:
    return (cache_dir() / "embeddings" / check_id(model_id, "model id")
            / f"{check_id(source.dataset_id, 'dataset id')}-{check_id(source.variant, 'variant')}-{split}.zarr")


def extract_embeddings(
    model: str | tuple[torch.nn.Module, Mapping],
    dataset: str | Path,
    split: str = "test",
    batch_size: int = 256,
    device: str | torch.device | None = None,
    size: str | None = None,
    seed: int | None = None,
    cache: bool = True,
    progress: bool = True,
    load: bool = True,
    chunk_frames: int = EMBED_CHUNK,
) -> xr.Dataset:
    """Stream ``dataset`` through ``model`` into a zarr store, ``chunk_frames`` pairs at a time
    (memory bounded by the chunk, whatever the number of frames); returns the dataset of the
    module docstring, in memory, or with ``load=False`` read lazily from the cache (for a million
    frames: 1 GiB of 256-d embeddings).

    ``model`` is a model id of the library (loaded on ``device``, default CUDA when available) or a
    ``(model, card)`` pair (moved only if ``device`` is given); ``dataset`` a catalog id
    (at ``size``/``seed``, default the entry's) or a store path; ``split`` is ``train``, ``val``,
    ``test`` or ``all``. ``cache=False`` neither reads nor writes the cache (the store is written
    to a temporary folder and loaded).
    """
    if split not in (*SPLITS, "all"):
        raise ConfigError(f"split must be one of {(*SPLITS, 'all')}, got {split!r}")
    if isinstance(model, str):
        card = load_card(model)
        net = load_model(model, device)
    else:
        net, card = model
        card = ModelCard.of(card)
        if device is not None:
            net = net.to(default_device(device))
    source = resolve_source(dataset, size, seed)
    data = source.open()
    attrs = {
        "model_id": card.model_id, "weights_sha256": card.weights_sha256 or "",
        "dataset_id": source.dataset_id, "variant": source.variant, "split": split,
        "source_frames": source.n_frames, "derived": list(data.attrs.get("derived", [])),
        "heads": {h: list(spec["classes"]) for h, spec in card.extras["heads"].items()}, "split_rule": SPLIT_RULE,
    }
    path = embeddings_path(card.model_id, source, split)
    use_cache = cache and bool(attrs["weights_sha256"])
    if use_cache and is_complete(path):
        stored = open_store(path)
        if all(stored.attrs.get(k) == attrs[k] for k in CACHE_KEYS):
            return stored.load() if load else stored

    game = data["game"].values.astype(str)
    frame = np.flatnonzero(successor_mask(game, data["episode"].values, data["step"].values))
    rule = card.split
    split_code = assign_split(game[frame], np.zeros(len(frame), np.int64), frame, rule["split_block"],
                              rule["split_fractions"], rule["split_seed"])
    keep = split_code != PURGED if split == "all" else split_code == SPLITS.index(split)
    frame, split_code = frame[keep], split_code[keep]
    if not len(frame):
        raise DataError(f"{source.dataset_id} ({source.variant}) has no {split} pairs (a game with a single"
                         f" {rule['split_block']}-frame block is all train); use split='all' or a larger size")

    n, heads = len(frame), net.heads
    lazy = {"embedding": (("frame", "dim"), (n, net.embed_dim), np.float32)}
    for head, k in heads.items():
        lazy[f"logits_{head}"] = (("frame", f"{head}_class"), (n, k), np.float32)
        lazy[f"pred_{head}"] = (("frame",), (n,), np.int8)
    out = xr.Dataset(
        {name: (dims, dask.array.zeros(shape, dtype=dtype, chunks=(chunk_frames, *shape[1:])))
         for name, (dims, shape, dtype) in lazy.items()},
        coords={
            "game": ("frame", game[frame]),
            "episode": ("frame", data["episode"].values[frame]),
            "step": ("frame", data["step"].values[frame]),
            "source_frame": ("frame", frame),
            "split": ("frame", np.asarray(SPLITS)[split_code]),
        },
        attrs=attrs,
    )
    for head, spec in card.extras["heads"].items():
        classes = list(spec["classes"])
        label_attrs = {"kind": spec["kind"], "classes": classes}
        if head in data:
            if data[head].attrs.get("kind") == "categorical" and list(data[head].attrs["classes"]) != classes:
                raise DataError(f"label {head!r} of {source.dataset_id} has classes {list(data[head].attrs['classes'])},"
                                f" the model's head has {classes}")
            out[head] = ("frame", np.asarray(data[head].values[frame], np.int8), label_attrs)
        else:
            out[head] = ("frame", np.full(len(frame), -1, np.int8), label_attrs)
        out[f"pred_{head}"].attrs.update(label_attrs)
        out.coords[f"{head}_class"] = (f"{head}_class", np.asarray(classes))
    for name in FLOW_VARIABLES:
        if name in data:
            out[name] = ("frame", data[name].values[frame], dict(data[name].attrs))
    reader = FrameReader([source], net.input_size, capacity=4)
    scratch = tempfile.TemporaryDirectory(prefix="embeddings-") if not use_cache else contextlib.nullcontext(path.parent)
    with scratch as folder:
        target = Path(folder) / path.name
        _stream(out, target, net, reader, batch_size, progress, f"embed {source.dataset_id}")
        stored = open_store(target)
        return stored.load() if load or not use_cache else stored


def _stream(template: xr.Dataset, path: Path, net: torch.nn.Module, reader: FrameReader, batch_size: int,
            progress: bool, desc: str) -> None:
    """Write ``template`` (its model outputs still lazy zeros) to a temporary store, fill the
    embeddings, logits and predictions one zarr chunk of frames at a time, then move the store
    onto ``path``: memory stays bounded by the chunk, and nothing partial is ever at ``path``."""
    tmp = path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex[:10]}")  # cleaned by store.clean_stale_tmp
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            template.to_zarr(str(tmp), mode="w-", zarr_format=2, consolidated=False, compute=False)
        group = zarr.open_group(str(tmp), mode="r+", zarr_format=2)
        frame, step = template["source_frame"].values, template["embedding"].data.chunksize[0]
        device = next(net.parameters()).device
        with tqdm(total=len(frame), unit="pair", desc=desc, disable=not progress) as bar:
            for start in range(0, len(frame), step):
                part = slice(start, start + step)
                emb, logits = infer(net, reader, np.zeros(len(frame[part]), np.int64), frame[part], batch_size, device)
                group["embedding"][part] = emb
                for head, values in logits.items():
                    group[f"logits_{head}"][part] = values
                    group[f"pred_{head}"][part] = values.argmax(axis=1).astype(np.int8)
                bar.update(len(emb))
        finish_store(tmp, path, {})
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
