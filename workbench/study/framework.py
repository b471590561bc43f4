"""What every study is: a config whose ``size`` picks a row of its budget table, one id rule, one
record file, and a runner that executes the study's named stages in order, skipping finished
ones when a run resumes.

**Config.** A study config is a dataclass that mixes in :class:`BaseStudyConfig`: it names its
``paper`` and its ``budgets`` (``{size: {field: value}}``); every field left ``None`` takes the
size's value. Its id is ``<paper>-<size>-s<seed>-<id_parts…>-<hash>``, the hash (8 hex digits)
over every field that changes a result: all fields but :data:`RUNTIME_FIELDS`.

**Record.** ``<studies>/<study_id>/study.json``, written atomically after every stage:
``paper``, ``config``, ``code_version``, ``started``, ``finished`` (once every stage is done),
``wall_s`` (the stages' seconds summed over every sitting) and ``stages`` (per stage:
``status`` running / done / failed, ``started``, ``finished``, ``seconds``, ``code_version``),
beside what the stages themselves record (model ids, domains …). Folders written before this
framework (a seed 000 ``study.json`` without ``paper``, a seed 002 ``worldmodels.json``) are
read by :func:`read_record`, which fills in ``paper`` and ``stages``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
import traceback
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Callable, ClassVar, Sequence

from tqdm.auto import tqdm

from ..core.errors import ConfigError, DataError
from ..core.paths import check_id, studies_dir
from ..core.provenance import code_version, now_utc
from ..engine.ids import ENGINE_VERSION
from .files import write_json

#: The record file of a study folder.
RECORD = "study.json"
#: Record files of folders written before the framework, by the paper they belong to.
OLD_RECORDS = {"worldmodels.json": "seed002"}
#: Config fields that change how a study runs, not what it finds: left out of the id's hash and
#: of the comparison that decides whether a folder holds the same study.
RUNTIME_FIELDS = ("workers", "study_id", "domains")
DONE, RUNNING, FAILED = "done", "running", "failed"


def digest(data: dict, n: int) -> str:
    """``n`` hex digits of a hash of ``data`` (JSON, sorted keys): equal settings, equal digest."""
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:n]


def _plain(data: dict) -> dict:
    """``data`` as it reads back from JSON (tuples become lists), for comparisons with a record."""
    return json.loads(json.dumps(data, default=str))


class BaseStudyConfig:
    """Mixin of every study config dataclass (module docstring). A subclass sets ``paper`` and
    ``budgets``, declares ``size``, ``seed``, ``workers`` and ``study_id`` fields, and may
    override :meth:`validate` and :meth:`id_parts`."""

    paper: ClassVar[str]
    budgets: ClassVar[dict[str, dict]]
    #: Help of the shared fields' command-line options (a study adds its own; :mod:`workbench.cli_options`).
    FIELD_HELP: ClassVar[dict[str, str]] = {
        "size": "Study size, a row of the budget table: tiny, demo, full, quotable.",
        "seed": "Model seed: initialisation and training batches.",
        "workers": "Models trained at a time (default: min(2, cores)).",
        "study_id": "Folder name under the studies folder (default: made from the settings by the id rule).",
        "data_size": "Catalog size recorded (default: the study's size).",
    }

    def __post_init__(self):
        if self.size not in self.budgets:
            raise ConfigError(f"size {self.size!r}: unknown to {self.paper}; sizes: {', '.join(self.budgets)}")
        names = {f.name for f in fields(self)}
        for key, value in self.budgets[self.size].items():
            if key in names and getattr(self, key) is None:
                setattr(self, key, copy.deepcopy(value))  # a run never shares (and mutates) the table's lists
        self.validate()
        if self.study_id is None:
            # the engine version too: a study of models trained under other semantics is another study
            self.study_id = "-".join([self.paper, self.size, f"s{self.seed}", *self.id_parts(),
                                      digest({**self.identity(), "engine_version": ENGINE_VERSION}, 8)])
        check_id(self.study_id, "study id")

    def validate(self) -> None:
        """Raise ``ValueError`` on settings the study cannot run (after the budget is applied)."""

    def id_parts(self) -> list[str]:
        """What the id names between ``s<seed>`` and the hash (other seeds, the dataset …)."""
        return []

    def identity(self) -> dict:
        """Every setting that changes a result (all fields but :data:`RUNTIME_FIELDS`)."""
        return {k: v for k, v in asdict(self).items() if k not in RUNTIME_FIELDS}


def same_study(record: dict, identity: dict) -> bool:
    """Whether ``record`` (a study's record) was written for a config of this ``identity``."""
    return _plain({k: record["config"].get(k) for k in identity}) == _plain(identity)


# ----------------------------------------------------------------------------- the record


def record_file(folder: Path) -> Path | None:
    """The record file of a study folder (``study.json``, or an old ``worldmodels.json``), or None."""
    for name in (RECORD, *OLD_RECORDS):
        if (Path(folder) / name).is_file():
            return Path(folder) / name
    return None


def is_study(folder: Path) -> bool:
    return record_file(folder) is not None


def normalise(record: dict, name: str) -> dict:
    """A record read from the file ``name``, in the framework's form: records of the old code get
    ``paper`` (seed 000 from ``study.json``, seed 002 from ``worldmodels.json``) and ``stages``
    (seed 000: one per recorded domain; seed 002: one per recorded timing), all done."""
    if "paper" in record:
        return record
    record = dict(record, paper=OLD_RECORDS.get(name, "seed000"))
    if record["paper"] == "seed000":
        done = [*record.get("domains", {}), *record.get("refused", {})]
        seconds = {d: sum(record["domains"].get(d, {}).get("timings", {}).values()) for d in done}
    else:
        seconds = {k.removesuffix("_s").replace("_", " "): v for k, v in record.get("timings", {}).items()}
    record["stages"] = {name: {"status": DONE, "seconds": s} for name, s in seconds.items()}
    return record


def read_record(folder: Path) -> dict:
    """The record of a study folder in the framework's form (:func:`normalise`)."""
    path = record_file(folder)
    if path is None:
        raise FileNotFoundError(f"{folder}: not a study folder (no {RECORD} or {', '.join(OLD_RECORDS)})")
    try:
        return normalise(json.loads(path.read_text()), path.name)
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{path}: not a study record ({exc})") from None


def list_studies(paper: str | None = None) -> list[Path]:
    """The study folders under the studies dir (of ``paper`` only, if given), newest record first."""
    root = studies_dir()
    found = [(path, folder) for folder in (root.iterdir() if root.is_dir() else [])
             if folder.is_dir() and (path := record_file(folder)) is not None]
    found.sort(key=lambda pair: pair[0].stat().st_mtime_ns, reverse=True)
    if paper is None:
        return [folder for _, folder in found]
    return [folder for path, folder in found if _paper_of(path) == paper]


def _paper_of(path: Path) -> str:
    if path.name in OLD_RECORDS:
        return OLD_RECORDS[path.name]
    try:
        return json.loads(path.read_text()).get("paper", "seed000")
    except (OSError, json.JSONDecodeError):
        return ""


def finished(folder: Path, cfg: BaseStudyConfig) -> bool:
    """Whether ``folder`` holds a finished study of exactly ``cfg`` (runtime fields aside)."""
    try:
        record = read_record(folder)
    except (FileNotFoundError, ValueError):
        return False
    return "finished" in record and same_study(record, cfg.identity())


# ----------------------------------------------------------------------------- the runner


@dataclass
class StudyRun:
    """One sitting of a study: its config, folder, record (which stages update) and progress bar.
    A study with state shared between stages subclasses it (e.g. cached properties that reuse
    what an earlier sitting trained)."""

    cfg: BaseStudyConfig
    folder: Path
    record: dict
    bar: tqdm

    def note(self, text: str) -> None:
        """Say on the progress bar what the stage is doing."""
        self.bar.set_postfix_str(text)


Stage = tuple[str, Callable[[StudyRun], None]]


def _start(cfg: BaseStudyConfig, folder: Path) -> dict:
    """The record to continue: the folder's, when it holds this study; else a fresh one."""
    if is_study(folder):
        record = read_record(folder)
        if same_study(record, cfg.identity()):
            record.pop("finished", None)
            record["config"] = _plain(asdict(cfg))
            return record
    return {"paper": cfg.paper, "config": _plain(asdict(cfg)), "code_version": code_version(), "started": now_utc(),
            "stages": {}}


def run_stages(cfg: BaseStudyConfig, stages: Sequence[Stage], progress: bool = True,
               run_type: type[StudyRun] = StudyRun, rerun: Sequence[str] = ()) -> Path:
    """Run the named ``stages`` of the study ``cfg`` in order in ``<studies>/<study_id>/``,
    skipping those a previous sitting finished for the same config; returns the folder.

    The record is written after each stage (and when one fails, with its error), so a killed or
    failed run continues at the first unfinished stage when started again. ``rerun`` names
    finished stages to run again (e.g. after a fix to an evaluation; trained models are reused);
    the stages after them are not rerun unless named. The record keeps when the replaced run
    finished (``rerun_of``)."""
    names = [name for name, _ in stages]
    unknown = [r for r in rerun if r not in names]
    if unknown:
        raise ConfigError(f"{cfg.study_id}: no stage {', '.join(map(repr, unknown))} to rerun; "
                          f"its stages: {', '.join(map(repr, names))}")
    folder = studies_dir() / cfg.study_id
    folder.mkdir(parents=True, exist_ok=True)
    record = _start(cfg, folder)
    with tqdm(total=len(stages), desc=cfg.paper, unit="stage", disable=not progress) as bar:
        run = run_type(cfg, folder, record, bar)
        for name, stage in stages:
            previous = record["stages"].get(name, {})
            if previous.get("status") == DONE and name not in rerun:
                bar.update(1)
                continue
            state = record["stages"][name] = {"status": RUNNING, "started": now_utc(), "code_version": code_version()}
            if previous.get("status") == DONE:
                state["rerun_of"] = previous.get("finished")
            write_json(record, folder / RECORD)
            t0 = time.perf_counter()
            try:
                stage(run)
            except BaseException as exc:
                state.update(status=FAILED, error="".join(traceback.format_exception_only(exc)).strip())
                write_json(record, folder / RECORD)
                raise
            state.update(status=DONE, finished=now_utc(), seconds=round(time.perf_counter() - t0, 1))
            write_json(record, folder / RECORD)
            bar.update(1)
    record["finished"] = now_utc()
    record["wall_s"] = round(sum(s.get("seconds", 0) for s in record["stages"].values()), 1)
    write_json(record, folder / RECORD)
    return folder
