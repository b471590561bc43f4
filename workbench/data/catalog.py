"""The dataset catalog: one YAML entry per dataset, and materialising entries into zarr stores.

An entry says where a dataset comes from (a recorder playing real emulators, or an importer
reading a public dataset's native files), which games it holds, its label schema, its sizes and
its seed. Built-in entries live in ``data_catalog/`` of the checkout; entries written by
``workbench import`` live in :func:`workbench.paths.user_catalog_dir`. Entries are read with
``yaml.safe_load`` and importer paths are resolved inside :func:`workbench.paths.import_root`.

Materialised data are cached at ``<cache>/datasets/<id>/<variant>/frames.zarr`` where the variant
is ``<size>-seed<seed>`` for recordings and ``import`` for imports, followed by ``-mask<hash>``
when the entry removes a HUD (``crop``/``mask``, at entry level or per game: see
:mod:`workbench.data.mask`), so a store recorded under other settings is never reused.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import xarray as xr
import yaml
from tqdm.auto import tqdm

from ..paths import BUILTIN_CATALOG, check_id, import_root, resolve_under, user_catalog_dir
from ..provenance import versions
from .importers import get_importer
from .mask import FrameMask, mask_tag, prepare_frames
from .recorders import get_engine
from .schema import LabelSchema
from .store import StoreWriter, clean_stale_tmp, dataset_dir, frames_path, is_complete, open_dataset

ENTRY_KEYS = {
    "id", "title", "domain", "description", "source", "frame_size", "labels", "sizes",
    "default_size", "seed", "crop", "mask", "accept_cues",
}


class CatalogError(ValueError):
    """A catalog entry is missing or malformed."""


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
        where = f"catalog entry {path or d.get('id')}"
        if not isinstance(d, Mapping):
            raise CatalogError(f"{where}: expected a mapping at the top level")
        unknown = set(d) - ENTRY_KEYS
        if unknown:
            raise CatalogError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(ENTRY_KEYS)}")
        for key in ("id", "source", "labels"):
            if key not in d:
                raise CatalogError(f"{where}: missing required key {key!r}")
        try:
            check_id(d["id"], "dataset id")
            schema = LabelSchema.from_list(d["labels"])
        except (ValueError, TypeError, KeyError) as exc:
            raise CatalogError(f"{where}: {exc}") from None
        source = dict(d["source"])
        kind = source.get("type")
        if kind == "record":
            games = source.get("games") or []
            if not games:
                raise CatalogError(f"{where}: a recorded dataset needs a non-empty source.games list")
            for g in games:
                if "game" not in g or "engine" not in g:
                    raise CatalogError(f"{where}: every game needs 'game' and 'engine' keys, got {g}")
                try:
                    get_engine(g["engine"])
                    FrameMask.from_config(g, f"game {g['game']}")
                except ValueError as exc:
                    raise CatalogError(f"{where}: {exc}") from None
            sizes = dict(d.get("sizes") or {})
            if not sizes:
                raise CatalogError(f"{where}: a recorded dataset needs sizes (e.g. demo, full)")
            for name, s in sizes.items():
                check_id(name, "size name")
                if not {"episodes", "frames_per_episode"} <= set(s):
                    raise CatalogError(f"{where}: size {name!r} needs episodes and frames_per_episode")
        elif kind == "import":
            if "format" not in source or "path" not in source:
                raise CatalogError(f"{where}: an imported dataset needs source.format and source.path")
            try:
                get_importer(source["format"])
            except ValueError as exc:
                raise CatalogError(f"{where}: {exc}") from None
            sizes = {}
        else:
            raise CatalogError(f"{where}: source.type must be 'record' or 'import', got {kind!r}")
        frame_size = d.get("frame_size")
        try:
            hud = FrameMask.from_config(d, "entry")
        except ValueError as exc:
            raise CatalogError(f"{where}: {exc}") from None
        cues = d.get("accept_cues") or {}
        if not isinstance(cues, Mapping) or not all(isinstance(v, Mapping) for v in cues.values()):
            raise CatalogError(f"{where}: accept_cues maps games to {{region: reason}}, got {cues!r}")
        return cls(
            id=d["id"], source=source, schema=schema, title=str(d.get("title", "")),
            domain=str(d.get("domain", "")), description=str(d.get("description", "")).strip(),
            frame_size=tuple(int(v) for v in frame_size) if frame_size else None,
            sizes=sizes, default_size=d.get("default_size") or (next(iter(sizes)) if sizes else None),
            seed=int(d.get("seed", 0)), path=path, hud=hud,
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
        """Variants of this entry's current settings whose store is complete in the cache."""
        folder = dataset_dir(self.id, "x").parent
        if not folder.is_dir():
            return []
        return sorted(p.parent.name for p in folder.glob("*/frames.zarr")
                      if is_complete(p) and self.split_variant(p.parent.name) is not None)

    def n_frames(self, size: str | None = None) -> int | None:
        """Planned frame count of a recorded size (upper bound: episodes may end early)."""
        if self.kind != "record":
            return None
        s = self.sizes[size or self.default_size]
        return len(self.games) * int(s["episodes"]) * int(s["frames_per_episode"])


def _read_entry(path: Path) -> CatalogEntry:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CatalogError(f"catalog entry {path}: not valid YAML ({exc})") from None
    return CatalogEntry.from_dict(data, path)


def load_catalog(dirs: list[Path] | None = None) -> dict[str, CatalogEntry]:
    """All catalog entries, built-in first; a user entry may not reuse a built-in id."""
    dirs = dirs if dirs is not None else [BUILTIN_CATALOG, user_catalog_dir()]
    entries: dict[str, CatalogEntry] = {}
    for folder in dirs:
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.yaml")):
            entry = _read_entry(path)
            if entry.id in entries:
                raise CatalogError(f"duplicate dataset id {entry.id!r} in {path} and {entries[entry.id].path}")
            entries[entry.id] = entry
    return entries


def get_entry(dataset_id: str) -> CatalogEntry:
    catalog = load_catalog()
    if dataset_id not in catalog:
        raise CatalogError(f"unknown dataset {dataset_id!r}; the catalog has: {', '.join(catalog) or 'nothing'}")
    return catalog[dataset_id]


def materialise(entry: CatalogEntry, size: str | None = None, seed: int | None = None,
                force: bool = False, progress: bool = True) -> Path:
    """Record or import ``entry`` into its zarr store (skipped when already complete).

    Recording is deterministic: the same entry, size and seed give the same label bytes.
    """
    path = entry.store_path(size, seed)
    clean_stale_tmp(path.parent)
    if is_complete(path) and not force:
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
    spec = entry.sizes[size]
    n_eps, n_frames = int(spec["episodes"]), int(spec["frames_per_episode"])
    frame_size = entry.frame_size or (96, 96)
    engines = sorted({g["engine"] for g in entry.source["games"]})
    attrs = {**_base_attrs(entry), "variant": entry.variant(size, seed), "size": size, "seed": seed,
             "versions": versions(*[p for e in engines for p in get_engine(e).version()])}
    bar = tqdm(total=entry.n_frames(size), desc=f"record {entry.id} ({size})", unit="frame", disable=not progress)
    with StoreWriter(path, entry.schema, entry.games, frame_size, attrs) as writer:
        for game_cfg in entry.source["games"]:
            bar.set_postfix_str(game_cfg["game"])
            engine = get_engine(game_cfg["engine"])
            mask = entry.frame_mask(game_cfg["game"])
            for ep in engine.record(game_cfg, n_eps, n_frames, None, seed):  # native frames
                labels = {k: v for k, v in ep.labels.items() if k in entry.schema}
                writer.append(prepare_frames(ep.frames, mask, frame_size, ep.source), ep.game, ep.episode, ep.step,
                              labels, source=ep.source)
                bar.update(n_frames)
    bar.close()
    return path


def _import(entry: CatalogEntry, path: Path, progress: bool) -> Path:
    source = entry.source
    importer = get_importer(source["format"])
    files = resolve_under(import_root(), source["path"])
    if not files.exists():
        raise CatalogError(f"dataset {entry.id!r}: import path {files} does not exist")
    params = dict(source.get("params") or {})
    games = entry.games
    try:
        episodes = importer.read(files, **params)
        first = next(episodes, None)
    except TypeError as exc:
        raise CatalogError(f"dataset {entry.id!r}: bad {source['format']} import parameters ({exc})") from None
    if first is None:
        raise CatalogError(f"dataset {entry.id!r}: no episodes found in {files}")
    frame_size = entry.frame_size or tuple(entry.hud.apply(first.frames[:1], first.source).shape[1:3])
    if not games:
        games = [first.game]  # a multi-game import lists its games in the entry
    attrs = {**_base_attrs(entry), "variant": entry.variant(), "import_format": source["format"],
             "import_path": str(files), "versions": versions("h5py", "decord", "opencv-python-headless")}
    bar = tqdm(desc=f"import {entry.id}", unit="frame", disable=not progress)
    with StoreWriter(path, entry.schema, games, frame_size, attrs) as writer:
        for ep in _chain(first, episodes):
            labels = {k: v for k, v in ep.labels.items() if k in entry.schema}
            writer.append(prepare_frames(ep.frames, entry.hud, frame_size, ep.source or str(files)), ep.game,
                          ep.episode, ep.step, labels, source=ep.source or str(files))
            bar.update(len(ep.frames))
    bar.close()
    return path


def _chain(first, rest):
    yield first
    yield from rest


def write_user_entry(entry: CatalogEntry) -> Path:
    """Save ``entry`` as YAML in the user catalog (atomically); refuses to shadow an existing id."""
    existing = load_catalog()
    if entry.id in existing and existing[entry.id].path != user_catalog_dir() / f"{entry.id}.yaml":
        raise CatalogError(f"dataset id {entry.id!r} is already used by {existing[entry.id].path}")
    folder = user_catalog_dir()
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"{entry.id}.yaml"
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".yaml.tmp")
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(entry.to_dict(), fh, sort_keys=False)
    os.replace(tmp, final)
    entry.path = final
    return final


def import_dataset(fmt: str, path: str, dataset_id: str, games: list[str] | None = None,
                   frame_size: tuple[int, int] | None = None, params: Mapping | None = None,
                   progress: bool = True, force: bool = False, hud: Mapping | None = None) -> Path:
    """Import files of a public dataset format as a new catalog entry and materialise it.

    ``hud`` holds ``crop``/``mask`` settings (native pixels, :mod:`workbench.data.mask`) that
    remove a HUD, speedometer or minimap from every frame before resizing.
    """
    importer = get_importer(fmt)
    files = resolve_under(import_root(), path)  # fail before writing anything
    if not files.exists():
        raise CatalogError(f"import path {files} does not exist")
    try:  # some formats' labels depend on the data (Minari action spaces, CSV columns)
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
    store = materialise(entry, force=force, progress=progress)
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
