"""Minari datasets (Farama's offline-RL format) with image observations.

A dataset's ``data/main_data.hdf5`` holds one group per episode (``episode_{id}``)::

    observations   (n+1, H, W, 3) or (n+1, H, W) uint8, or a group of such datasets for a
                   Dict observation space (pick one with ``obs_key``)
    actions        (n,) ints for a Discrete space, (n,) or (n, d) floats for a Box space
    rewards, terminations, truncations   (n,)

Frame ``t`` is observation ``t`` paired with action ``t``; the final observation has no
action and is dropped. Labels: ``action`` (Discrete; classes from ``action_names``, default
"0".."k-1") or ``action_0..action_{d-1}`` (Box), ``reward``, and ``steer`` where a direction
can be derived: from action names containing LEFT/RIGHT, or from the sign of the Box
component named by ``steer_from``. The action labels depend on the dataset, so the full
schema comes from :func:`label_schema`; ``SCHEMA`` lists the labels every import has.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator, Sequence

import h5py
import numpy as np

from ...core.errors import ConfigError, DataError
from ..episode import Episode
from ..schema import STEER_CLASSES, LabelSchema, LabelSpec, steer_from_sign
from ._files import checked, data_files

FRAME_RATE = 50.0  # Minari stores no clock; gymnasium's default render_fps (CarRacing: 50 Hz)

SCHEMA = LabelSchema.from_list([
    LabelSpec("steer", "categorical", STEER_CLASSES, "horizontal direction of the action, where derivable"),
    LabelSpec("reward", "continuous", description="reward received for the action"),
])  # fmt: skip

_EPISODE = re.compile(r"^episode_(\d+)$")


def label_schema(
    path: str | Path, action_names: Sequence[str] | None = None, **params
) -> LabelSchema:
    """All labels ``read(path, ...)`` produces: ``SCHEMA`` plus the action labels of this dataset."""
    kind, size = _action_space(data_files(path, (".hdf5", ".h5")))
    return _schema(kind, size, action_names, path)


def read(
    path: str | Path,
    game: str | None = None,
    obs_key: str | None = None,
    action_names: Sequence[str] | None = None,
    steer_from: int | str | None = None,
    dead_zone: float = 0.0,
) -> Iterator[Episode]:
    """Yield every episode of a Minari .hdf5 file (or of all .hdf5 files in a folder).

    ``obs_key`` picks the image from a Dict observation space (``"pixels"``, or a path like
    ``"camera/rgb"``); ``action_names`` names the Discrete actions in order; ``steer_from``
    (``0`` or ``"action_0"``) names the Box component whose sign is ``steer``; ``game``
    defaults to the dataset id. Non-image observations, actions outside ``action_names`` and
    length mismatches raise ``ValueError`` naming the file and episode.
    """
    files = data_files(path, (".hdf5", ".h5"))
    kind, size = _action_space(files)
    schema = _schema(kind, size, action_names, path)
    steer_column = _steer_column(steer_from, kind, size, path)
    episode = 0
    for h5_path in files:
        with _open(h5_path) as f:
            name = game or _dataset_id(f, h5_path)
            for group in _episode_groups(f, h5_path):
                where = f"{h5_path}: {group.name.lstrip('/')}"
                actions = np.asarray(_member(group, "actions", where)[()])
                n = len(actions)
                frames = _frames(_member(group, "observations", where), obs_key, n, where)
                rewards = np.asarray(_member(group, "rewards", where)[()], np.float32).reshape(-1)
                if len(rewards) != n:
                    raise DataError(f"{where}: {n} actions but {len(rewards)} rewards")
                labels = {"reward": rewards}
                if kind == "discrete":
                    labels.update(_discrete_labels(actions, schema["action"].classes, where))
                else:
                    box = actions.reshape(n, -1).astype(np.float32)
                    labels.update({f"action_{i}": box[:, i] for i in range(size)})
                    if steer_column is not None:
                        labels["steer"] = steer_from_sign(box[:, steer_column], dead_zone)
                yield Episode(name, episode, frames, labels, source=where)
                episode += 1


def _schema(kind: str, size: int, action_names: Sequence[str] | None, path) -> LabelSchema:
    if kind == "discrete":
        classes = tuple(action_names) if action_names is not None else tuple(str(i) for i in range(max(size, 2)))
        if len(classes) > 127:
            raise DataError(f"{path}: {len(classes)} discrete actions; at most 127 fit the int8 label codes")
        action_specs = [LabelSpec("action", "categorical", classes, "discrete action")]
    else:
        action_specs = [LabelSpec(f"action_{i}", "continuous", description=f"Box action component {i}")
                        for i in range(size)]  # fmt: skip
    return LabelSchema.from_list([*SCHEMA, *action_specs])


def _steer_column(steer_from: int | str | None, kind: str, size: int, path) -> int | None:
    """Index of the Box component named by ``steer_from`` (``2`` or ``"action_2"``)."""
    if steer_from is None:
        return None
    if kind == "discrete":
        raise ConfigError(
            f"{path}: steer_from applies to Box actions; for Discrete actions steer comes from"
            " action_names containing LEFT or RIGHT"
        )
    text = str(steer_from).removeprefix("action_")
    if not text.isdigit() or int(text) >= size:
        raise ConfigError(f"{path}: steer_from={steer_from!r}; expected one of 0..{size - 1} (or action_k)")
    return int(text)


def _member(group: h5py.Group, name: str, where: str) -> h5py.Dataset | h5py.Group:
    if name not in group:
        raise DataError(f"{where}: no {name!r}; a Minari episode has observations, actions and rewards")
    return group[name]


def _open(h5_path: Path) -> h5py.File:
    try:
        return h5py.File(h5_path, "r")
    except OSError as exc:
        raise DataError(f"{h5_path}: cannot open as HDF5 (corrupt or truncated?): {exc}") from None


def _episode_groups(f: h5py.File, h5_path: Path) -> list[h5py.Group]:
    """The ``episode_{id}`` groups in id order."""
    names = sorted((k for k in f.keys() if _EPISODE.match(k)), key=lambda k: int(_EPISODE.match(k).group(1)))
    groups = [f[k] for k in names if isinstance(f[k], h5py.Group)]
    if not groups:
        raise DataError(f"{h5_path}: no episode_{{id}} groups; not a Minari dataset file")
    return groups


def _action_space(files: list[Path]) -> tuple[str, int]:
    """``("discrete", k)`` with k = largest action + 1, or ``("box", d)`` components; checks all episodes agree."""
    found: set[tuple[str, int]] = set()
    top = -1
    for h5_path in files:
        with _open(h5_path) as f:
            for group in _episode_groups(f, h5_path):
                actions = group.get("actions")
                if not isinstance(actions, h5py.Dataset):
                    raise DataError(
                        f"{h5_path}: {group.name}: actions must be one dataset (Discrete or Box space);"
                        " Dict/Tuple action spaces are not supported"
                    )
                if actions.dtype.kind in "iu" and actions.ndim == 1:
                    found.add(("discrete", 0))
                    if actions.shape[0]:
                        top = max(top, int(np.max(actions[()])))
                else:
                    found.add(("box", int(np.prod(actions.shape[1:], dtype=int))))
    if len(found) != 1:
        raise DataError(f"{files[0].parent}: episodes disagree on the action space: {sorted(found)}")
    kind, size = found.pop()
    return (kind, top + 1) if kind == "discrete" else (kind, size)


def _dataset_id(f: h5py.File, h5_path: Path) -> str:
    """The dataset id from the file's attrs or Minari's sibling metadata.json, else the file stem."""
    value = f.attrs.get("dataset_id")
    metadata = h5_path.parent / "metadata.json"
    if value is None and metadata.is_file():
        value = json.loads(checked(metadata).read_text()).get("dataset_id")
    if isinstance(value, bytes):
        value = value.decode()
    return str(value) if value else h5_path.stem


def _frames(obs: h5py.Dataset | h5py.Group, obs_key: str | None, n: int, where: str) -> np.ndarray:
    """The first ``n`` image observations as RGB uint8 ``(n, H, W, 3)``."""
    if isinstance(obs, h5py.Group):
        if obs_key is None or obs_key not in obs or not isinstance(obs[obs_key], h5py.Dataset):
            keys = []
            obs.visit(lambda k: keys.append(k) if isinstance(obs[k], h5py.Dataset) else None)
            raise ConfigError(f"{where}: observations are a Dict space; pass obs_key, one of {keys}")
        obs = obs[obs_key]
        where = f"{where}: observations/{obs_key}"
    elif obs_key is not None:
        raise ConfigError(f"{where}: obs_key={obs_key!r} given but observations are a single array")
    is_image = obs.dtype == np.uint8 and (obs.ndim == 3 or (obs.ndim == 4 and obs.shape[-1] in (1, 3)))
    if not is_image:
        raise DataError(
            f"{where}: observations {obs.dtype} {obs.shape} are not images; expected uint8"
            " (n+1, H, W, 3) or (n+1, H, W)"
        )
    if len(obs) != n + 1:
        raise DataError(f"{where}: {len(obs)} observations for {n} actions; expected n+1 = {n + 1}")
    frames = obs[:n]
    if frames.ndim == 3 or frames.shape[-1] == 1:
        frames = np.repeat(frames.reshape(*frames.shape[:3], 1), 3, axis=-1)
    return frames


def _discrete_labels(actions: np.ndarray, classes: tuple[str, ...], where: str) -> dict[str, np.ndarray]:
    """``action`` codes and, when class names say LEFT/RIGHT, the derived ``steer``."""
    bad = (actions < 0) | (actions >= len(classes))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where}: unknown action {int(actions[i])} at step {i}; the {len(classes)} action names are"
            f" {list(classes)}"
        )
    labels = {"action": actions.astype(np.int8)}
    upper = [c.upper() for c in classes]
    if any("LEFT" in c or "RIGHT" in c for c in upper):
        lut = np.array([0 if "LEFT" in c else 2 if "RIGHT" in c else 1 for c in upper], np.int8)
        labels["steer"] = lut[actions]
    return labels
