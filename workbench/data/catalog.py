"""The dataset catalog: one YAML entry per dataset, and materialising entries into zarr stores.

An entry says where a dataset comes from (a recorder playing real emulators, or an importer
reading a public dataset's native files), which games it holds, its label schema, its sizes and
its seed. Built-in entries live in ``data_catalog/`` of the checkout; entries written by
``workbench import`` live in :func:`workbench.core.paths.user_catalog_dir`. Entries are read with
``yaml.safe_load`` and importer paths are resolved inside :func:`workbench.core.paths.import_root`.

Materialised data are cached at ``<cache>/datasets/<id>/<variant>/frames.zarr`` where the variant
is ``<size>-seed<seed>`` for recordings and ``import`` for imports, followed by ``-mask<hash>``
when the entry removes a HUD (``crop``/``mask``, at entry level or per game: see
:mod:`workbench.data.mask`), so a store recorded under other settings is never reused.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import shutil
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import xarray as xr
import yaml
from tqdm.auto import tqdm

from ..core.errors import ConfigError, WorkbenchError
from ..core.locks import store_lock
from ..core.paths import (BUILTIN_CATALOG, atomic_write, cache_dir, check_id, import_root, resolve_under,
                     user_catalog_dir)
from ..core.provenance import versions
from .importers import get_importer
from .importers._files import confined_to
from .mask import FrameMask, mask_tag, prepare_frames
from .recorders import get_engine
from .schema import LabelSchema
from .store import StoreWriter, clean_stale_tmp, dataset_dir, frames_path, is_complete, open_dataset, open_store

ENTRY_KEYS = {
    "id", "title", "domain", "description", "source", "frame_size", "labels", "sizes",
    "default_size", "seed", "crop", "mask", "accept_cues",
}


FRAME_SIDE = (8, 1024)  # pixels per side of stored frames: smaller is too coarse for flow, larger
# than 3 MB a frame (and an absurd request such as 99999x99999 would allocate terabytes)


class CatalogError(WorkbenchError, ValueError):
    """A catalog entry is missing or malformed."""


class CatalogWarning(UserWarning):
    """A broken entry file or a stray cache folder that listings skip."""


def check_frame_size(value: Any, what: str = "frame_size") -> tuple[int, int]:
    """``(height, width)`` from a two-integer list, each side within :data:`FRAME_SIDE`."""
    lo, hi = FRAME_SIDE
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) for v in value)):
        raise ConfigError(f"{what} must be [height, width] as two whole numbers of pixels, got {value!r}")
    if not all(lo <= v <= hi for v in value):
        raise ConfigError(f"{what} {value[0]}x{value[1]} is out of range: each side must be {lo}..{hi} pixels")
    return int(value[0]), int(value[1])


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _expect(ok: bool, where: str, message: str) -> None:
    if not ok:
        raise CatalogError(f"{where}: {message}")


@contextmanager
def _naming(where: str) -> Iterator[None]:
    """Re-raise a ``ValueError`` (bad id, engine, format, size, label spec) as a ``CatalogError`` naming ``where``."""
    try:
        yield
    except CatalogError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise CatalogError(f"{where}: {exc}") from None


def _check_labels(labels: Any, where: str) -> LabelSchema:
    """The entry's ``labels``: a non-empty list of ``{name, kind, classes, …}`` mappings."""
    _expect(isinstance(labels, list) and bool(labels), where, f"labels must be a non-empty list of label specs, got {labels!r}")
    for spec in labels:
        _expect(isinstance(spec, Mapping) and isinstance(spec.get("name"), str), where,
                f"every label needs a mapping with a name, e.g. {{name: steer, kind: binary}}; got {spec!r}")
        classes = spec.get("classes", [])
        _expect(isinstance(classes, list) and all(isinstance(c, (str, int)) for c in classes), where,
                f"label {spec['name']!r}: classes must be a list of names, got {classes!r}")
    with _naming(where):
        return LabelSchema.from_list(labels)


def _check_record_source(d: Mapping, source: Mapping, where: str) -> dict:
    """The games of a recorded entry and its sizes (``{name: {episodes, frames_per_episode}}``)."""
    games = source.get("games")
    _expect(isinstance(games, list) and bool(games), where, "a recorded dataset needs a non-empty source.games list")
    for g in games:
        _expect(isinstance(g, Mapping) and isinstance(g.get("game"), str) and isinstance(g.get("engine"), str),
                where, f"every game needs 'game' and 'engine' names, got {g!r}")
        with _naming(where):
            get_engine(g["engine"])
            FrameMask.from_config(g, f"game {g['game']}")
    sizes = d.get("sizes")
    _expect(isinstance(sizes, Mapping) and bool(sizes), where,
            f"a recorded dataset needs sizes, a mapping such as {{demo: {{episodes: 4, frames_per_episode: 800}}}}; got {sizes!r}")
    for name, spec in sizes.items():
        with _naming(where):
            check_id(name, "size name")
        _expect(isinstance(spec, Mapping) and {"episodes", "frames_per_episode"} <= set(spec), where,
                f"size {name!r} needs episodes and frames_per_episode")
        for key in ("episodes", "frames_per_episode"):
            _expect(_is_int(spec[key]) and spec[key] > 0, where,
                    f"size {name!r}: {key} must be a positive whole number, got {spec[key]!r}")
    default = d.get("default_size")
    _expect(default is None or default in sizes, where, f"default_size {default!r} is not one of the sizes {list(sizes)}")
    for g in games:
        _check_game_sizes(where, g, sizes)
    return dict(sizes)


def _check_import_source(source: Mapping, where: str) -> None:
    """An imported entry's format, path (text), params (a mapping) and games (names)."""
    _expect(isinstance(source.get("format"), str) and isinstance(source.get("path"), str), where,
            "an imported dataset needs source.format and source.path (text)")
    with _naming(where):
        get_importer(source["format"])
    params = source.get("params")
    _expect(params is None or isinstance(params, Mapping), where, f"source.params must be a mapping, got {params!r}")
    games = source.get("games", [])
    _expect(isinstance(games, list) and all(isinstance(g, str) for g in games), where,
            f"source.games must be a list of game names, got {games!r}")


@dataclass
class CatalogEntry:
    """One dataset of the catalog (see module docstring for the YAML layout)."""

    id: str
    source: dict
    schema: LabelSchema
    title: str = ""
    domain: str = ""
    description: str = ""
    frame_size: tuple[int, int] | None = None
    sizes: dict[str, dict] = field(default_factory=dict)
    default_size: str | None = None
    seed: int = 0
    path: Path | None = None
    hud: FrameMask = field(default_factory=FrameMask)  # entry-level crop/mask, for every game
    accept_cues: dict[str, dict[str, str]] = field(default_factory=dict)  # see accepted_cues

    @classmethod
    def from_dict(cls, d: Mapping, path: Path | None = None) -> "CatalogEntry":
        """Validate every field of an entry; a ``CatalogError`` names the entry file and the field."""
        where = f"catalog entry {path}" if path else "catalog entry"
        if not isinstance(d, Mapping):
            raise CatalogError(f"{where}: expected a mapping at the top level, got {type(d).__name__}")
        where = f"catalog entry {path or repr(d.get('id'))}"
        unknown = set(d) - ENTRY_KEYS
        if unknown:
            raise CatalogError(f"{where}: unknown keys {sorted(map(str, unknown))}; allowed: {sorted(ENTRY_KEYS)}")
        for key in ("id", "source", "labels"):
            if key not in d:
                raise CatalogError(f"{where}: missing required key {key!r}")
        with _naming(where):
            check_id(d["id"], "dataset id")
        for key in ("title", "domain", "description"):
            _expect(isinstance(d.get(key, ""), (str, int, float)), where, f"{key} must be text, got {d.get(key)!r}")
        schema = _check_labels(d["labels"], where)
        source = d["source"]
        _expect(isinstance(source, Mapping), where, f"source must be a mapping with a type, got {source!r}")
        source = dict(source)
        kind = source.get("type")
        if kind == "record":
            sizes = _check_record_source(d, source, where)
        elif kind == "import":
            _check_import_source(source, where)
            sizes = {}
        else:
            raise CatalogError(f"{where}: source.type must be 'record' or 'import', got {kind!r}")
        frame_size = d.get("frame_size")
        seed = d.get("seed", 0)
        with _naming(where):
            frame_size = check_frame_size(frame_size) if frame_size is not None else None
        _expect(_is_int(seed) and 0 <= seed < 2**32, where, f"seed must be a whole number 0..2**32-1, got {seed!r}")
        with _naming(where):
            hud = FrameMask.from_config(d, "entry")
        cues = d.get("accept_cues") or {}
        _expect(isinstance(cues, Mapping) and all(isinstance(v, Mapping) for v in cues.values()), where,
                f"accept_cues maps games to {{region: reason}}, got {cues!r}")
        return cls(
            id=d["id"], source=source, schema=schema, title=str(d.get("title", "")),
            domain=str(d.get("domain", "")), description=str(d.get("description", "")).strip(),
            frame_size=frame_size,
            sizes=sizes, default_size=d.get("default_size") or (next(iter(sizes)) if sizes else None),
            seed=seed, path=path, hud=hud,
            accept_cues={str(g): {str(r): str(why) for r, why in v.items()} for g, v in cues.items()},
        )

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"id": self.id, "title": self.title, "domain": self.domain,
                               "description": self.description, "source": self.source,
                               "labels": self.schema.to_list(), "seed": self.seed}
        if self.frame_size:
            out["frame_size"] = list(self.frame_size)
        if self.sizes:
            out["sizes"] = self.sizes
            out["default_size"] = self.default_size
        return {**out, **self.hud.to_dict(), **({"accept_cues": self.accept_cues} if self.accept_cues else {})}

    @property
    def kind(self) -> str:
        return self.source["type"]

    @property
    def games(self) -> list[str]:
        if self.kind == "record":
            return [g["game"] for g in self.source["games"]]
        return list(self.source.get("games", []))

    def frame_mask(self, game: str) -> FrameMask:
        """What is removed from ``game``'s native frames: its own crop/mask, else the entry's."""
        for g in self.source.get("games", []) if self.kind == "record" else []:
            if g["game"] == game and ("crop" in g or "mask" in g):
                return FrameMask.from_config(g, f"game {game}")
        return self.hud

    def accepted_cues(self) -> dict[str, dict[str, str]]:
        """Per game, the leak-audit regions (``*``: any) the entry accepts as part of the game
        world, and why (``accept_cues: {CarRacing: {r3c1: car sprite …}}``; see
        :mod:`workbench.analysis.leaks`)."""
        return {g: dict(cues) for g, cues in self.accept_cues.items()}

    def runner_config(self, game_cfg: Mapping) -> dict:
        """One game of this entry as its runner takes it: with the HUD removal that applies to it
        (its own ``crop``/``mask``, else the entry's), so recording and play prepare frames alike."""
        return {**{k: v for k, v in game_cfg.items() if k not in ("crop", "mask")},
                **self.frame_mask(game_cfg["game"]).to_dict()}

    def frame_masks(self) -> dict[str, FrameMask]:
        """Every game's :meth:`frame_mask` (``*``: the entry-level one, for imported games)."""
        return {"*": self.hud, **{g: self.frame_mask(g) for g in self.games}}

    def variant(self, size: str | None = None, seed: int | None = None) -> str:
        """Name of the cache folder for this size, seed and HUD removal (``import…`` for imports)."""
        tag = mask_tag(self.frame_masks())
        if self.kind == "import":
            return "import" + tag
        size = size or self.default_size
        if size not in self.sizes:
            raise CatalogError(f"dataset {self.id!r} has no size {size!r}; sizes: {list(self.sizes)}")
        return f"{size}-seed{self.seed if seed is None else int(seed)}{tag}"

    def split_variant(self, variant: str) -> tuple[str | None, int | None] | None:
        """``(size, seed)`` of a variant name of this entry's current settings (``(None, None)``
        for an import), or None for a stale one (recorded under other crop/mask settings)."""
        if self.kind == "import":
            return (None, None) if variant == self.variant() else None
        size, _, rest = variant.partition("-seed")
        seed = rest.split("-", 1)[0]
        if size in self.sizes and seed.isdigit() and variant == self.variant(size, int(seed)):
            return size, int(seed)
        return None

    def store_path(self, size: str | None = None, seed: int | None = None) -> Path:
        return frames_path(self.id, self.variant(size, seed))

    def materialised(self) -> list[str]:
        """Variants of this entry whose store is complete in the cache.

        A complete store in a folder that names no variant of this entry's current settings (say
        ``import`` under a recorded id, or a recording made under other crop/mask settings) is
        skipped with a :class:`CatalogWarning` naming it, so listings never break.
        """
        folder = dataset_dir(self.id, "x").parent
        if not folder.is_dir():
            return []
        found = []
        for store in sorted(folder.glob("*/frames.zarr")):
            if not is_complete(store):
                continue
            if self.split_variant(store.parent.name) is not None:
                found.append(store.parent.name)
            else:
                warnings.warn(f"{store}: not a variant of dataset {self.id!r} ({self.kind}) with its current crop/mask; skipped", CatalogWarning)
        return found

    def n_frames(self, size: str | None = None) -> int | None:
        """Planned frame count of a recorded size (upper bound: episodes may end early)."""
        if self.kind != "record":
            return None
        return sum(math.prod(game_size(self, g, size or self.default_size)) for g in self.source["games"])


def _check_game_sizes(where: str, game_cfg: Mapping, sizes: Mapping) -> None:
    """A game's ``sizes`` may override ``episodes``/``frames_per_episode`` of the entry's sizes."""
    overrides = game_cfg.get("sizes") or {}
    _expect(isinstance(overrides, Mapping), where, f"game {game_cfg['game']!r}: sizes must be a mapping, got {overrides!r}")
    for name, spec in overrides.items():
        _expect(name in sizes, where, f"game {game_cfg['game']!r} overrides unknown size {name!r}")
        _expect(isinstance(spec, Mapping) and set(spec) <= {"episodes", "frames_per_episode"}
                and all(_is_int(v) and v > 0 for v in spec.values()), where,
                f"game {game_cfg['game']!r} size {name!r} may set only positive whole-number episodes and"
                f" frames_per_episode, got {spec!r}")


def game_size(entry: CatalogEntry, game_cfg: Mapping, size: str) -> tuple[int, int]:
    """``(episodes, frames_per_episode)`` of one game at ``size``: the entry's size, updated by the
    game's own ``sizes`` override (games of one dataset may differ in size, as in seed 000's racing
    data: 33,770 Pole Position frames against 2,453 of Enduro)."""
    spec = {**entry.sizes[size], **dict(game_cfg.get("sizes") or {}).get(size, {})}
    return int(spec["episodes"]), int(spec["frames_per_episode"])


@functools.lru_cache(maxsize=256)
def _parse_entry(path: Path, mtime_ns: int, size: int) -> object:
    """An entry file's YAML, parsed once per version of the file (``mtime_ns``, ``size``): every
    dataset lookup reads the catalog, and an evaluation looks its data up dozens of times."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _read_entry(path: Path) -> CatalogEntry:
    try:
        stat = path.stat()
        data = copy.deepcopy(_parse_entry(path, stat.st_mtime_ns, stat.st_size))
    except yaml.YAMLError as exc:
        raise CatalogError(f"catalog entry {path}: not valid YAML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"catalog entry {path}: cannot be read as UTF-8 text ({exc})") from None
    return CatalogEntry.from_dict(data, path)


def _scan(dirs: list[Path] | None) -> tuple[dict[str, CatalogEntry], dict[Path, CatalogError]]:
    """Good entries by id (built-in first) and, per broken or shadowing entry file, its error."""
    dirs = dirs if dirs is not None else [BUILTIN_CATALOG, user_catalog_dir()]
    entries: dict[str, CatalogEntry] = {}
    problems: dict[Path, CatalogError] = {}
    for folder in map(Path, dirs):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yaml")):
            if path.name.startswith("."):  # a writer's temporary file, never an entry
                continue
            try:
                entry = _read_entry(path)
            except CatalogError as exc:
                problems[path] = exc
                continue
            if entry.id in entries:
                problems[path] = CatalogError(
                    f"catalog entry {path}: dataset id {entry.id!r} is already used by {entries[entry.id].path}")
                continue
            entries[entry.id] = entry
    return entries, problems


def load_catalog(dirs: list[Path] | None = None) -> dict[str, CatalogEntry]:
    """All good catalog entries, built-in first.

    A broken entry file, or a user entry reusing an id, is skipped with a :class:`CatalogWarning`
    naming the file, so one bad file never hides the rest; :func:`get_entry` raises its error.
    """
    entries, problems = _scan(dirs)
    for exc in problems.values():
        warnings.warn(f"{exc}; skipped", CatalogWarning, stacklevel=2)
    return entries


def catalog_rows(catalog: Mapping[str, CatalogEntry]) -> list[tuple[str, str, str, str, str]]:
    """One row per entry for listing: id, source (the import format, or ``record:<engines>``),
    games, frames at the default size (or ``-``) and the materialised variants (or ``no``)."""
    rows = []
    for entry in catalog.values():
        source = entry.source.get("format") if entry.kind == "import" else "record:" + ",".join(
            sorted({g["engine"] for g in entry.source["games"]}))
        planned = entry.n_frames()
        rows.append((entry.id, source, ", ".join(entry.games) or "-", f"{planned:,}" if planned else "-",
                     ", ".join(entry.materialised()) or "no"))
    return rows


def get_entry(dataset_id: str) -> CatalogEntry:
    """The entry ``dataset_id``; if its file is broken, that file's ``CatalogError``."""
    catalog, problems = _scan(None)
    if dataset_id in catalog:
        return catalog[dataset_id]
    for path, exc in problems.items():
        if path.stem == dataset_id:
            raise exc
    raise CatalogError(f"unknown dataset {dataset_id!r}; the catalog has: {', '.join(catalog) or 'nothing'}")


def materialise(entry: CatalogEntry, size: str | None = None, seed: int | None = None,
                force: bool = False, progress: bool = True) -> Path:
    """Record or import ``entry`` into its zarr store (skipped when already complete).

    Recording is deterministic: the same entry, size and seed give the same label bytes. A
    second process materialising the same variant meanwhile stops with a
    :class:`workbench.core.locks.LockError`.
    """
    path = entry.store_path(size, seed)
    if is_complete(path) and not force:
        return path
    with store_lock(path.parent):  # one writer per variant: another one's temporaries are not stale
        clean_stale_tmp(path.parent)
        if is_complete(path) and not force:  # finished by another process meanwhile
            return path
        if entry.kind == "record":
            return _record(entry, path, size or entry.default_size, entry.seed if seed is None else int(seed), progress)
        return _import(entry, path, progress)


def _base_attrs(entry: CatalogEntry) -> dict:
    return {
        "dataset_id": entry.id, "title": entry.title, "domain": entry.domain,
        "source": json.loads(json.dumps(entry.source)),
        "flow_sign": {g["game"]: int(g.get("flow_sign", 1)) for g in entry.source.get("games", [])
                      if isinstance(g, Mapping)},
        "frame_mask": {game: m.to_dict() for game, m in entry.frame_masks().items() if m},
    }


def _record(entry: CatalogEntry, path: Path, size: str, seed: int, progress: bool) -> Path:
    frame_size = entry.frame_size or (96, 96)
    engines = sorted({g["engine"] for g in entry.source["games"]})
    attrs = {**_base_attrs(entry), "variant": entry.variant(size, seed), "size": size, "seed": seed,
             "versions": versions(*[p for e in engines for p in get_engine(e).version()])}
    bar = tqdm(total=entry.n_frames(size), desc=f"record {entry.id} ({size})", unit="frame", disable=not progress)
    with StoreWriter(path, entry.schema, entry.games, frame_size, attrs) as writer:
        for game_cfg in entry.source["games"]:
            bar.set_postfix_str(game_cfg["game"])
            engine = get_engine(game_cfg["engine"])
            n_eps, n_frames = game_size(entry, game_cfg, size)
            for ep in engine.record(entry.runner_config(game_cfg), n_eps, n_frames, frame_size, seed):
                labels = {k: v for k, v in ep.labels.items() if k in entry.schema}
                writer.append(ep.frames, ep.game, ep.episode, ep.step, labels, source=ep.source)
                bar.update(n_frames)
    bar.close()
    return path


def _import(entry: CatalogEntry, path: Path, progress: bool) -> Path:
    source = entry.source
    importer = get_importer(source["format"])
    root = import_root()
    files = resolve_under(root, source["path"])
    if not files.exists():
        raise CatalogError(f"dataset {entry.id!r}: import path {files} does not exist")
    params = dict(source.get("params") or {})
    games = entry.games
    with confined_to(root):  # every file the importer opens must stay inside the import root
        try:
            episodes = importer.read(files, **params)
            first = next(episodes, None)
        except TypeError as exc:
            raise CatalogError(f"dataset {entry.id!r}: bad {source['format']} import parameters ({exc})") from None
        if first is None:
            raise CatalogError(f"dataset {entry.id!r}: no episodes found in {files}")
        try:
            native = entry.hud.apply(first.frames[:1], first.source).shape[1:3]  # after HUD removal
            frame_size = entry.frame_size or check_frame_size(native, f"frame size of {first.source}")
        except ValueError as exc:
            raise CatalogError(f"dataset {entry.id!r}: {exc}; resize with --frame-size HxW") from None
        if not games:
            games = [first.game]  # a multi-game import lists its games in the entry
        attrs = {**_base_attrs(entry), "variant": entry.variant(), "import_format": source["format"],
                 "import_path": str(files), "catalog_entry": _import_key(entry),
                 "versions": versions("h5py", "decord", "opencv-python-headless")}
        bar = tqdm(desc=f"import {entry.id}", unit="frame", disable=not progress)
        with StoreWriter(path, entry.schema, games, frame_size, attrs) as writer:
            for ep in _chain(first, episodes):
                labels = {k: v for k, v in ep.labels.items() if k in entry.schema}
                writer.append(prepare_frames(ep.frames, entry.hud, frame_size, ep.source or str(files)), ep.game,
                              ep.episode, ep.step, labels, source=ep.source or str(files))
                bar.update(len(ep.frames))
        bar.close()
    return path


def _import_key(entry: CatalogEntry) -> dict:
    """What an imported store's data depend on: the entry less its prose, path resolved (JSON form)."""
    key = {k: v for k, v in entry.to_dict().items() if k not in ("title", "domain", "description")}
    try:
        key["source"] = {**key["source"], "path": str(resolve_under(import_root(), entry.source["path"]))}
    except ValueError:
        pass  # a path that escapes the root describes nothing importable; compared as written
    return json.loads(json.dumps(key))


def _chain(first, rest):
    yield first
    yield from rest


def write_user_entry(entry: CatalogEntry) -> Path:
    """Save ``entry`` as YAML in the user catalog (atomically); refuses to shadow an existing id."""
    existing, _ = _scan(None)
    final = user_catalog_dir() / f"{entry.id}.yaml"
    if entry.id in existing and existing[entry.id].path != final:
        raise CatalogError(f"dataset id {entry.id!r} is already used by {existing[entry.id].path}")
    atomic_write(final, lambda tmp: Path(tmp).write_text(yaml.safe_dump(entry.to_dict(), sort_keys=False)))
    entry.path = final
    return final


def import_dataset(fmt: str, path: str, dataset_id: str, games: list[str] | None = None,
                   frame_size: tuple[int, int] | None = None, params: Mapping | None = None,
                   progress: bool = True, force: bool = False, hud: Mapping | None = None) -> Path:
    """Import files of a public dataset format as a user catalog entry and materialise it.

    Every argument is checked before anything is written; a built-in id is refused. The same
    files with the same settings under the same id reuse the store. An id that already holds
    other data is refused unless ``force``, which replaces the store atomically (and drops its
    now stale flow stores). The entry is written only once the store it describes is complete,
    and a failed import leaves no store, folder or entry behind.

    ``hud`` holds ``crop``/``mask`` settings (native pixels, :mod:`workbench.data.mask`) that
    remove a HUD, speedometer or minimap from every frame before resizing.
    """
    importer = get_importer(fmt)
    with _naming(f"{fmt} import"):
        check_id(dataset_id, "dataset id")
        frame_size = check_frame_size(frame_size, "frame size") if frame_size is not None else None
    if params is not None and not isinstance(params, Mapping):
        raise CatalogError(f"{fmt} import: params must be a mapping of importer parameters, got {params!r}")
    catalog, _ = _scan(None)
    old = catalog.get(dataset_id)
    entry_file = user_catalog_dir() / f"{dataset_id}.yaml"
    if old is not None and old.path != entry_file:
        raise CatalogError(f"dataset id {dataset_id!r} is already used by {old.path}; pick another --id")
    if old is None and entry_file.exists() and not force:
        raise CatalogError(f"{entry_file} exists but is not a valid entry for {dataset_id!r};"
                           " --force replaces it, or pick another --id")
    root = import_root()
    files = resolve_under(root, path)
    if not files.exists():
        raise CatalogError(f"import path {files} does not exist")
    try:  # some formats' labels depend on the data (Minari action spaces, CSV columns)
        with confined_to(root):
            schema = importer.label_schema(files, **dict(params or {}))
    except TypeError as exc:
        raise CatalogError(f"{fmt} import: bad parameters ({exc})") from None
    entry = CatalogEntry.from_dict({
        "id": dataset_id, "title": f"{fmt} import of {path}", "domain": "imported",
        "source": {"type": "import", "format": fmt, "path": str(path), "params": dict(params or {}),
                   **({"games": list(games)} if games else {})},
        "labels": schema.to_list(),
        **({"frame_size": list(frame_size)} if frame_size else {}),
        **dict(hud or {}),
    })
    store = entry.store_path()
    key = _import_key(entry)
    if not force:
        if old is not None and _import_key(old) != key:
            raise CatalogError(
                f"dataset {dataset_id!r} ({old.path}) already holds an import of {old.source['path']!r} with"
                " other files or settings; --force replaces it, or pick another --id")
        if is_complete(store):
            if open_store(store).attrs.get("catalog_entry") != key:
                raise CatalogError(f"{store} holds other data than this import; --force replaces it, or pick another --id")
            if old is None:
                write_user_entry(entry)
            return store  # the same files and settings: reuse
    created = [p for p in store.parents if not p.exists() and (p == cache_dir() or cache_dir() in p.parents)]
    try:
        materialise(entry, force=force, progress=progress)
    except BaseException:
        for folder in created:  # deepest first; only the folders this import made, if still empty
            try:
                folder.rmdir()
            except OSError:
                pass
        raise
    for derived in store.parent.glob("*.zarr"):  # flow of the replaced frames describes other data
        if derived != store:
            shutil.rmtree(derived, ignore_errors=True)
    write_user_entry(entry)
    return store


def open_catalog_dataset(dataset_id: str, size: str | None = None, seed: int | None = None,
                         derived="all") -> xr.Dataset:
    """Open a materialised catalog dataset (lazily), merged with its flow statistics."""
    entry = get_entry(dataset_id)
    path = entry.store_path(size, seed)
    if not is_complete(path):
        hint = f"workbench record {dataset_id}" if entry.kind == "record" else f"workbench import {dataset_id}"
        raise CatalogError(f"dataset {dataset_id!r} ({entry.variant(size, seed)}) is not materialised; run `{hint}`")
    return open_dataset(path, derived=derived)
