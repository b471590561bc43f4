"""What the dashboard reads, cached once per server process rather than per visitor.

Study tables, study records, seed 002 world-model runs (their report tables and pictures), model
cards and catalog summaries are cached under their file's modification time, so a re-run study
shows up without a restart while repeated page views cost nothing. The study's joint model
embeddings are loaded once (from the on-disk cache that
:func:`workbench.methods.idm.extract_embeddings` keeps) and reused by every live calibration.
Projections are never recomputed here: they come from the study's saved ``points-*.csv``.

Returned DataFrames and datasets are shared between sessions: treat them as read-only.
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..analysis.calibration import percentile_calibration
from ..analysis.summary import dataset_summary
from ..data.catalog import CatalogEntry, load_catalog
from ..data.store import open_dataset
from ..engine.card import ModelCard
from ..engine.curves import CURVES, read_curves
from ..engine.library import load_card, model_path, read_library
from ..core.paths import check_id, studies_dir
from ..methods.worldmodel.report import (capacity_table, controller_table, cycle_table, headlines, health_table, leakage_table,
                               navigation_table, ood_table, pictures, planning_table, probe_table, strength_figure)
from ..methods.worldmodel.study import RECORD as WM_RECORD
from ..viz.plots import save_figure

#: Projections a study may save as ``<study>/<domain>/points-<name>.csv``.
PROJECTIONS = ("tsne", "umap")
_embedding_lock = threading.Lock()
log = logging.getLogger(__name__)


def _mtime(path: Path) -> int:
    return path.stat().st_mtime_ns


# ----------------------------------------------------------------------------- studies


def _folders_with(record: str) -> list[str]:
    """Ids of the folders of the studies dir holding ``record``, newest first."""
    root = studies_dir()
    if not root.is_dir():
        return []
    found = [p.parent for p in root.glob(f"*/{record}")]
    return [p.name for p in sorted(found, key=lambda p: _mtime(p / record), reverse=True)]


def list_studies() -> list[str]:
    """Ids of the seed 000 studies (those with a ``study.json``), newest first."""
    return _folders_with("study.json")


def study_folder(study_id: str) -> Path:
    return studies_dir() / check_id(study_id, "study id")


@lru_cache(maxsize=64)
def _read_json(path: str, mtime: int) -> dict:
    return json.loads(Path(path).read_text())


def study_record(study_id: str) -> dict:
    """The study's ``study.json`` (config, per-domain dataset, store, games, model ids)."""
    path = study_folder(study_id) / "study.json"
    return _read_json(str(path), _mtime(path))


def study_domains(study_id: str) -> list[str]:
    return list(study_record(study_id).get("domains", {}))


def domain_record(study_id: str, domain: str) -> dict:
    return study_record(study_id)["domains"][domain]


@lru_cache(maxsize=256)
def _read_csv(path: str, mtime: int, index_col) -> pd.DataFrame:
    return pd.read_csv(path, index_col=index_col)


def study_table(study_id: str, domain: str, name: str, index_col=None) -> pd.DataFrame | None:
    """``<study>/<domain>/<name>.csv`` as a DataFrame, or None when the study did not write it."""
    path = study_folder(study_id) / check_id(domain, "domain") / f"{check_id(name, 'table')}.csv"
    if not path.is_file():
        return None
    return _read_csv(str(path), _mtime(path), index_col)


@lru_cache(maxsize=16)
def _ledger(folder: str, mtime: int) -> pd.DataFrame:
    from ..study.ledger import ledger
    from ..methods.idm.report import ledger_table

    return ledger_table(ledger(Path(folder)), markdown=False)


def study_ledger(study_id: str) -> pd.DataFrame:
    """The claims ledger of a seed 000 study or seed 002 run as a table to read, computed once per
    version of its record (bootstraps take a second or two; visitors share the result)."""
    folder = study_folder(study_id)
    record = next(p for p in (folder / "worldmodels.json", folder / "study.json") if p.is_file())
    return _ledger(str(folder), _mtime(record))


def study_json(study_id: str, domain: str, name: str) -> dict | None:
    path = study_folder(study_id) / check_id(domain, "domain") / f"{check_id(name, 'file')}.json"
    return _read_json(str(path), _mtime(path)) if path.is_file() else None


def projections(study_id: str, domain: str) -> list[str]:
    """The projections saved for a domain (``tsne``, ``umap``)."""
    folder = study_folder(study_id) / domain
    return [m for m in PROJECTIONS if (folder / f"points-{m}.csv").is_file()]


def points(study_id: str, domain: str, projection: str) -> pd.DataFrame | None:
    """Saved 2-D projection: ``x``, ``y``, ``game``, ``action``, ``source_frame``, ``split``."""
    if projection not in PROJECTIONS:
        raise ValueError(f"projection must be one of {PROJECTIONS}, got {projection!r}")
    return study_table(study_id, domain, f"points-{projection}")


def preload() -> None:
    """Read every study's record and saved projections into the caches (once, when a server starts),
    so that no visitor waits for them; a study that cannot be read is logged and left to its page."""
    for study_id in list_studies():
        try:
            for domain in study_domains(study_id):
                for projection in projections(study_id, domain):
                    points(study_id, domain, projection)
        except Exception:  # its pages show the error to whoever opens them
            log.exception("could not preload study %s", study_id)


# ----------------------------------------------------------------------------- world-model runs (seed 002)

#: A run's tables as its report shows them (:mod:`workbench.methods.worldmodel.report`), by CSV name.
WM_TABLES = {"capacity": capacity_table, "leakage": leakage_table, "cycle": cycle_table, "health": health_table,
             "controllers": lambda df, run: controller_table(df), "planning": lambda df, run: planning_table(df),
             "navigation": lambda df, run: navigation_table(df), "probes": lambda df, run: probe_table(df)}
#: A run's picture folders: transfer filmstrips (PNG + GIF per clip) and planning rollouts (PNG).
WM_PICTURES = ("filmstrips", "planning")


def list_wm_runs() -> list[str]:
    """Ids of the seed 002 world-model runs (those with a ``worldmodels.json``), newest first."""
    return _folders_with(WM_RECORD)


def wm_record(run_id: str) -> dict:
    """The run's ``worldmodels.json`` (config, model ids, timings)."""
    path = study_folder(run_id) / WM_RECORD
    return _read_json(str(path), _mtime(path))


def wm_csv(run_id: str, name: str, folder: str = "") -> pd.DataFrame | None:
    """A saved CSV of the run (``capacity``, or ``samples/<model>`` with ``folder="samples"``), or
    None when the run has none or it is empty."""
    base = study_folder(run_id) / check_id(folder, "folder") if folder else study_folder(run_id)
    path = base / f"{check_id(name, 'table')}.csv"
    return _read_csv(str(path), _mtime(path), None) if path.is_file() and path.stat().st_size > 1 else None


@lru_cache(maxsize=64)
def _wm_table(path: str, mtime: int, name: str, run_id: str) -> pd.DataFrame:
    return WM_TABLES[name](_read_csv(path, mtime, None), run_id)


def wm_table(run_id: str, name: str) -> pd.DataFrame | None:
    """The report's table ``name`` (a key of :data:`WM_TABLES`) built once per CSV version, or None."""
    if name not in WM_TABLES or wm_csv(run_id, name) is None:
        return None
    path = study_folder(run_id) / f"{name}.csv"
    return _wm_table(str(path), _mtime(path), name, run_id)


@lru_cache(maxsize=16)
def _strength_png(path: str, mtime: int) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return save_figure(strength_figure(_read_csv(path, mtime, None)), Path(tmp) / "strength.png").read_bytes()


def wm_strength_png(run_id: str) -> bytes | None:
    """Figure 4 of the run (:func:`workbench.methods.worldmodel.report.strength_figure`) as PNG bytes, drawn
    once per ``capacity.csv`` version; None when the run swept no knob. A PNG, not a Bokeh layout:
    a HoloViews Layout on the page stalls the browser's URL sync."""
    capacity = wm_csv(run_id, "capacity")
    if capacity is None or "knob" not in capacity or not capacity["knob"].notna().any():
        return None
    path = study_folder(run_id) / "capacity.csv"
    return _strength_png(str(path), _mtime(path))


@lru_cache(maxsize=16)
def _ood(folder: str, study_id: str, mtimes: tuple) -> pd.DataFrame | None:
    return ood_table(Path(folder), study_id)


def wm_ood(run_id: str) -> pd.DataFrame | None:
    """The out-of-domain table of the run (:func:`workbench.methods.worldmodel.report.ood_table`), or None."""
    folder = study_folder(run_id) / "ood"
    files = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    return _ood(str(study_folder(run_id)), run_id, tuple((f.name, _mtime(f)) for f in files)) if files else None


@lru_cache(maxsize=16)
def _headlines(folder: str, mtimes: tuple) -> tuple[str, ...]:
    folder = Path(folder)
    return tuple(headlines(folder, json.loads((folder / WM_RECORD).read_text())))


def wm_headlines(run_id: str) -> str:
    """The report's headline numbers (Markdown), recomputed only when the run's files change."""
    folder = study_folder(run_id)
    files = [folder / f for f in (WM_RECORD, "leakage.csv", "cycle.csv", "controllers.csv", "planning.csv",
                                  "navigation.csv")]
    return "\n".join(_headlines(str(folder), tuple(_mtime(f) if f.is_file() else 0 for f in files)))


def wm_samples(run_id: str) -> list[str]:
    """Models with a Figure S1 projection (``samples/<model>.csv``)."""
    return sorted(p.stem for p in (study_folder(run_id) / "samples").glob("*.csv"))


@lru_cache(maxsize=32)
def _pictures(folder: str, kind: str, mtime: int) -> dict[str, tuple[str, ...]]:
    return {model: tuple(p.name for p in paths) for model, paths in pictures(Path(folder), kind).items()}


def wm_pictures(run_id: str, kind: str) -> dict[str, tuple[str, ...]]:
    """File names of the run's ``filmstrips`` or ``planning`` pictures by model, PNG before GIF."""
    if kind not in WM_PICTURES:
        raise ValueError(f"kind must be one of {WM_PICTURES}, got {kind!r}")
    folder = study_folder(run_id) / kind
    return _pictures(str(study_folder(run_id)), kind, _mtime(folder)) if folder.is_dir() else {}


@lru_cache(maxsize=256)
def _bytes(path: str, mtime: int) -> bytes:
    return Path(path).read_bytes()


def wm_picture(run_id: str, kind: str, name: str) -> bytes:
    """The bytes of one picture of :func:`wm_pictures` (read once per file version)."""
    if not any(name in names for names in wm_pictures(run_id, kind).values()):
        raise FileNotFoundError(f"run {run_id} has no {kind} picture {name!r}")
    path = study_folder(run_id) / kind / name
    return _bytes(str(path), _mtime(path))


# ----------------------------------------------------------------------------- datasets


@lru_cache(maxsize=16)
def _open(store: str, folder_mtime: int) -> xr.Dataset:
    return open_dataset(Path(store))


def _variant_mtime(store: Path) -> int:
    """Changes when a derived store (flow …) is added beside the frames store."""
    return _mtime(store.parent)


def dataset(store: str | Path) -> xr.Dataset:
    """The lazy dataset of a zarr store with its derived stores (frames stay on disk), opened once."""
    store = Path(store)
    return _open(str(store), _variant_mtime(store))


@lru_cache(maxsize=16)
def _summary(store: str, folder_mtime: int) -> pd.DataFrame:
    return dataset_summary(_open(store, folder_mtime))


def summary(store: str | Path) -> pd.DataFrame:
    """Per-game frames, episodes, label balance and flow-proxy agreement of a store."""
    store = Path(store)
    return _summary(str(store), _variant_mtime(store))


def catalog() -> dict[str, CatalogEntry]:
    return load_catalog()


def variant_store(entry: CatalogEntry, variant: str) -> Path:
    """The frames store of a materialised variant name (``tiny-seed0``, ``import``, ``…-mask<hash>``)."""
    return entry.store_path(*entry.split_variant(variant))


# ----------------------------------------------------------------------------- embeddings, calibration


@lru_cache(maxsize=8)
def _embeddings(model_id: str, dataset_id: str, size: str | None, seed: int | None, weights_mtime: int) -> xr.Dataset:
    from ..methods.idm import extract_embeddings

    return extract_embeddings(model_id, dataset_id, split="all", size=size, seed=seed, progress=False)


def joint_embeddings(study_id: str, domain: str) -> xr.Dataset:
    """Embeddings of the study's joint v3 model over the domain's frames (``split="all"``).

    Read from the embedding cache the study filled (computed there once if it is missing),
    then held in memory; one load at a time so concurrent first visitors do not repeat it.
    """
    record = study_record(study_id)
    model_id = domain_record(study_id, domain)["models"]["joint_v3"]
    cfg = record["config"]
    weights = model_path(model_id) / "weights.pt"
    with _embedding_lock:
        return _embeddings(model_id, domain_record(study_id, domain)["dataset"], cfg.get("size"),
                           cfg.get("data_seed", cfg.get("seed")),
                           _mtime(weights) if weights.exists() else 0)


def flow_signs(study_id: str, domain: str) -> dict:
    """Per-game sign relating flow direction to steering, as recorded on the dataset."""
    return dict(dataset(domain_record(study_id, domain)["store"]).attrs.get("flow_sign", {}))


@lru_cache(maxsize=512)
def _calibration(study_id: str, domain: str, percentile: float, record_mtime: int) -> pd.DataFrame:
    cfg = study_record(study_id)["config"]
    seed = cfg.get("draw_seed", cfg.get("seed", 0))  # the study's calibration frames
    return percentile_calibration(joint_embeddings(study_id, domain), head="steer", percentile=percentile,
                                  flow_sign=flow_signs(study_id, domain), seed=seed)


def live_calibration(study_id: str, domain: str, percentile: float) -> pd.DataFrame:
    """Per-game zero-label calibration at ``percentile`` (rounded to 0.5), memoised."""
    path = study_folder(study_id) / "study.json"
    return _calibration(study_id, domain, float(np.round(percentile * 2) / 2), _mtime(path))


# ----------------------------------------------------------------------------- thumbnails, models


@lru_cache(maxsize=2048)
def thumbnail(store: str, frame: int, size: int) -> bytes:
    """PNG of the frame pair ``frame`` → ``frame + 1`` (reads only those two frames)."""
    from ..data.thumbnails import frame_pair_png

    return frame_pair_png(Path(store), int(frame), size=size)


@lru_cache(maxsize=1024)
def _card(model_id: str, mtime: int) -> ModelCard:
    return load_card(model_id)


def model_card(model_id: str) -> ModelCard:
    return _card(model_id, _mtime(model_path(model_id) / "card.yaml"))


@lru_cache(maxsize=64)
def _curves(model_id: str, mtimes: tuple) -> pd.DataFrame:
    return read_curves(model_path(model_id))


def model_curves(model_id: str) -> pd.DataFrame:
    """The model's training curves (step, tag, value; :mod:`workbench.engine.curves`), memoised
    until an event file changes; empty for a model trained before curves were logged."""
    folder = model_path(model_id) / CURVES
    files = sorted(folder.glob("events.out.tfevents.*")) if folder.is_dir() else []
    return _curves(model_id, tuple((p.name, _mtime(p)) for p in files))


def models_table() -> pd.DataFrame:
    """One row per model of the library: id, architecture, preset, datasets, games, steps, mean test
    balanced accuracy of its main head over its games (IDMs only), and when it was created.

    World-model cards (``LatentActionWorldModel``, ``FrameAutoencoder``, controllers) have no
    balanced accuracy and may name their data only under ``data``. A model whose card does not load
    is left out, with a line saying why in ``attrs["skipped"]``."""
    rows = []
    cards, skipped = read_library(model_card)
    for model_id, card in cards.items():
        cfg = card.config
        head = card.extras.get("main_head", "steer")
        test = card.metrics.get("test", {}).get(head, {})
        scores = [m.get("balanced_accuracy") for m in test.values() if isinstance(m, dict)]
        scores = [s for s in scores if s is not None]
        datasets = cfg.get("datasets") or list(dict.fromkeys(d.get("dataset_id") for d in card.data or []))
        rows.append({"model": model_id, "architecture": card.architecture, "preset": cfg.get("name"),
                     "datasets": ", ".join(d for d in datasets if d),
                     "games": ", ".join(card.extras.get("games") or []), "steps": card.steps,
                     f"test bal. acc. ({head})": float(np.mean(scores)) if scores else np.nan,
                     "created": card.provenance.get("created", "")})
    table = pd.DataFrame(rows)
    table.attrs["skipped"] = skipped
    return table
