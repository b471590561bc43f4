"""What the dashboard reads, cached once per server process rather than per visitor.

Study tables, study records, the results of the registry (:mod:`workbench.study.results`: their
tables, computed text, static figures and headline numbers), seed 002 pictures, model cards and
catalog summaries are cached under their file's modification time, so a re-run study
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
from ..methods.worldmodel.report import pictures
from ..study import framework
from ..study.results import Scope, headline, spec
from ..viz.plots import save_figure

#: Projections a study may save as ``<study>/<domain>/points-<name>.csv``.
PROJECTIONS = ("tsne", "umap")
_embedding_lock = threading.Lock()
log = logging.getLogger(__name__)


def _mtime(path: Path) -> int:
    return path.stat().st_mtime_ns


# ----------------------------------------------------------------------------- studies


def list_studies(paper: str = "seed000") -> list[str]:
    """Ids of the studies of ``paper`` (seed 000 IDM studies, seed 002 world-model runs), newest first."""
    return [folder.name for folder in framework.list_studies(paper)]


def study_folder(study_id: str) -> Path:
    return studies_dir() / check_id(study_id, "study id")


def _record_file(study_id: str) -> Path:
    path = framework.record_file(study_folder(study_id))
    if path is None:
        raise FileNotFoundError(f"no study {study_id} under {studies_dir()}")
    return path


@lru_cache(maxsize=64)
def _read_json(path: str, mtime: int) -> dict:
    return json.loads(Path(path).read_text())


@lru_cache(maxsize=64)
def _record(folder: str, mtime: int) -> dict:
    return framework.read_record(Path(folder))


def study_record(study_id: str) -> dict:
    """The study's record in the framework's form (config, stages, per-domain dataset, store,
    games, model ids; :func:`workbench.study.framework.read_record`), read once per version."""
    return _record(str(study_folder(study_id)), _mtime(_record_file(study_id)))


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
    from ..study.results import ledger_table

    return ledger_table(ledger(Path(folder)), markdown=False)


def study_ledger(study_id: str) -> pd.DataFrame:
    """The claims ledger of a seed 000 study or seed 002 run as a table to read, computed once per
    version of its record (bootstraps take a second or two; visitors share the result)."""
    return _ledger(str(study_folder(study_id)), _mtime(_record_file(study_id)))


# ----------------------------------------------------------------------------- results of the registry


def _signature(study_id: str) -> tuple:
    """Changes when the study's record or any saved table changes (an atomic write replaces the
    file, which changes its folder's modification time)."""
    folder = study_folder(study_id)
    return (_mtime(_record_file(study_id)), *(_mtime(p) for p in (folder, *sorted(folder.iterdir())) if p.is_dir()))


def scope(study_id: str, part: str = "") -> Scope:
    """Where the results of a study (``part``: one domain of a seed 000 study) are read from."""
    return Scope(study_folder(study_id), study_record(study_id), check_id(part, "domain") if part else "")


@lru_cache(maxsize=256)
def _result(study_id: str, part: str, name: str, signature: tuple) -> tuple[pd.DataFrame | None, str | None]:
    where = scope(study_id, part)
    result = spec(where.record["paper"]).result(name)
    return (result.table(where) if result.table else None), (result.text(where) if result.text else None)


def result_parts(study_id: str, part: str, name: str) -> tuple[pd.DataFrame | None, str | None]:
    """The table and the computed text of the registry's result ``name`` for a study (and domain),
    built once per version of its files."""
    return _result(study_id, part, name, _signature(study_id))


@lru_cache(maxsize=32)
def _pngs(study_id: str, part: str, name: str, signature: tuple) -> dict[str, bytes]:
    where = scope(study_id, part)
    result = spec(where.record["paper"]).result(name)
    with tempfile.TemporaryDirectory() as tmp:
        return {stem: save_figure(fig, Path(tmp) / f"{stem}.png").read_bytes()
                for stem, fig in (result.figures(where) if result.figures else {}).items()}


def result_pngs(study_id: str, part: str, name: str) -> dict[str, bytes]:
    """The figures of a ``static`` result as PNG bytes by file stem, drawn once per version of the
    study's files (a HoloViews Layout on the page stalls the browser's URL sync)."""
    return _pngs(study_id, part, name, _signature(study_id))


@lru_cache(maxsize=32)
def _headline(study_id: str, signature: tuple) -> tuple[dict, ...]:
    return tuple(headline(study_folder(study_id)))


def study_headline(study_id: str, part: str = "") -> list[dict]:
    """The study's headline numbers (:func:`workbench.study.results.headline`), of one domain's
    scopes where ``part`` is given, computed once per version of its files."""
    rows = list(_headline(study_id, _signature(study_id)))
    if not part:
        return rows
    return spec(study_record(study_id)["paper"]).headline(scope(study_id, part))


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

#: A run's picture folders: transfer filmstrips (PNG + GIF per clip) and planning rollouts (PNG).
WM_PICTURES = ("filmstrips", "planning")


def list_wm_runs() -> list[str]:
    """Ids of the seed 002 world-model runs, newest first."""
    return list_studies("seed002")


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
    return _calibration(study_id, domain, float(np.round(percentile * 2) / 2), _mtime(_record_file(study_id)))


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
