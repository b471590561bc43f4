"""Notebooks as batch jobs: run the parameterised notebooks of ``notebooks/`` headless with
papermill, one at a time or as a sweep over a grid of parameters, and keep every executed
notebook as the record of its run.

* :func:`run_notebook` executes one notebook with parameters and returns the executed copy;
* :func:`run_sweep` runs a notebook for every combination of a grid (a YAML spec, see
  :func:`load_sweep`); a failing run is recorded and the sweep goes on;
* :func:`save_result`, :func:`prepare_dataset` and :func:`ensure_model` are what the notebooks
  themselves call, so the notebooks stay thin and a batch run can find what they produced.

Where records go. Every notebook takes a ``result_file`` parameter; the runner sets it, and the
notebook's :func:`save_result` calls write what it produced there (a model id, a store, a study
folder, headline numbers). The executed notebook ``<notebook>-<UTC timestamp>.ipynb`` and its
run record ``….json`` (parameters, status, error, duration, result) are then kept

* next to the model card, in ``model_path(model_id)/runs/``, when the run names a ``model_id``
  (it trained or analysed that model);
* else in ``<study folder>/runs/`` when it names a ``study``;
* else in ``output_dir`` (default ``<studies>/runs/``; a sweep uses ``<studies>/runs/<sweep name>/``,
  where its table ``sweep-<timestamp>.csv`` goes too).

Kernel: papermill starts the ``python3`` kernel, which jupyter_client resolves to the running
interpreter when its kernelspec is the generic one ipykernel installs into the virtualenv.
"""

from __future__ import annotations

import itertools
import json
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import yaml

from .core.errors import WorkbenchError
from .engine.library import load_card, model_path, plain
from .core.paths import REPO_ROOT, atomic_write_text, check_id
from .core.provenance import code_version, now_utc

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
KERNEL = "python3"
#: The parameter every notebook declares and the runner sets: where save_result writes.
RESULT_PARAM = "result_file"
SWEEP_KEYS = {"name", "description", "notebook", "parameters", "grid"}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class NotebookError(WorkbenchError, ValueError):
    """An unknown notebook, an unknown parameter, or a malformed sweep spec."""


class NotebookRunError(WorkbenchError, RuntimeError):
    """A notebook stopped with an error; ``record`` is the executed notebook kept (or None)."""

    def __init__(self, message: str, record: Path | None = None):
        super().__init__(message)
        self.record = record


# --------------------------------------------------------------------------- finding notebooks


def list_notebooks() -> list[str]:
    """Names (file stems) of the notebooks in ``notebooks/``, sorted."""
    return sorted(p.stem for p in NOTEBOOK_DIR.glob("[0-9]*.ipynb"))


def find_notebook(name_or_path: str | Path) -> Path:
    """A notebook by name (``02_train_idm``, ``02_train_idm.ipynb``, ``train_idm``, ``02``) or path."""
    path = Path(name_or_path)
    if path.suffix == ".ipynb" and path.is_file():
        return path.resolve()
    stem = path.name.removesuffix(".ipynb")
    for name in list_notebooks() if len(path.parts) == 1 else []:
        if stem in (name, name.split("_", 1)[0], name.split("_", 1)[-1]):
            return NOTEBOOK_DIR / f"{name}.ipynb"
    raise NotebookError(f"unknown notebook {str(name_or_path)!r}; notebooks: {', '.join(list_notebooks())}"
                        " (or give the path of an .ipynb file)")


def notebook_parameters(path: str | Path) -> dict[str, Any]:
    """The parameters a notebook declares in its ``parameters`` cell: name -> default (as source text)."""
    import papermill as pm

    return {name: spec["default"] for name, spec in pm.inspect_notebook(str(find_notebook(path))).items()}


def _check_parameters(path: Path, params: Mapping) -> None:
    declared = notebook_parameters(path)
    if RESULT_PARAM in params:
        raise NotebookError(f"{RESULT_PARAM!r} is set by the runner; do not pass it")
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise NotebookError(f"notebook {path.stem} has no parameter {', '.join(map(repr, unknown))};"
                            f" its parameters: {', '.join(k for k in declared if k != RESULT_PARAM)}")


# --------------------------------------------------------------------------- running one notebook


@dataclass
class RunRecord:
    """One executed notebook: what ran, how it ended, and where its executed copy is kept."""

    notebook: str
    parameters: dict
    status: str  # "ok" | "failed"
    started: str
    duration_s: float
    output: str | None
    error: str | None = None
    result: dict = field(default_factory=dict)
    code_version: str = field(default_factory=code_version)


def _describe(exc: Exception) -> str:
    """One line: the failing cell (papermill's ``In [n]`` and its first source line) and the error."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        first = next((line.strip() for line in (exc.source or "").splitlines() if line.strip()), "")
        first = first if len(first) <= 60 else first[:57] + "..."
        message = _ANSI.sub("", str(exc.evalue)).strip().splitlines()
        return f"cell In [{exc.exec_count}] `{first}`: {exc.ename}: {message[0] if message else ''}"
    return f"{type(exc).__name__}: {_ANSI.sub('', str(exc)).strip()}"


def _record_dir(result: Mapping, fallback: Path) -> Path:
    if result.get("model_id"):
        return model_path(result["model_id"]) / "runs"
    if result.get("study"):
        return Path(result["study"]) / "runs"
    return fallback


def _unique(folder: Path, stem: str) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path, n = folder / f"{stem}-{stamp}.ipynb", 1
    while path.exists():
        path, n = folder / f"{stem}-{stamp}-{n}.ipynb", n + 1
    return path


def _execute(path: Path, params: Mapping, output_dir: Path | None, progress: bool) -> RunRecord:
    """Run ``path`` with ``params``; never raises for a failing cell (the record says so)."""
    import papermill as pm

    from .core.paths import studies_dir

    _check_parameters(path, params)
    started, t0 = now_utc(), time.perf_counter()
    error = None
    with tempfile.TemporaryDirectory(prefix="workbench-run-") as tmp:
        executed, result_file = Path(tmp) / path.name, Path(tmp) / "result.json"
        try:
            # widget state is not stored: the plotly widgets would embed plotly.js (~5 MB) in every record
            pm.execute_notebook(str(path), str(executed), parameters={**params, RESULT_PARAM: str(result_file)},
                                kernel_name=KERNEL, progress_bar=progress, store_widget_state=False)
        except Exception as exc:  # a failing cell, a dead kernel, a timeout: recorded, the caller decides
            error = _describe(exc)
        result = json.loads(result_file.read_text()) if result_file.is_file() else {}
        output = None
        if executed.is_file():
            output = _unique(_record_dir(result, Path(output_dir or studies_dir() / "runs")), path.stem)
            atomic_write_text(output, executed.read_text())
    record = RunRecord(notebook=path.stem, parameters=plain(dict(params)), status="failed" if error else "ok",
                       started=started, duration_s=round(time.perf_counter() - t0, 2),
                       output=str(output) if output else None, error=error, result=result)
    if output:
        atomic_write_text(output.with_suffix(".json"), json.dumps(asdict(record), indent=2))
    return record


def run_notebook(name_or_path: str | Path, params: Mapping[str, Any] | None = None,
                 output_dir: str | Path | None = None, progress: bool = True) -> Path:
    """Execute a notebook with papermill; returns the executed notebook kept as the run's record
    (see the module docstring for where). Parameters must be declared by the notebook.

    Raises :class:`NotebookError` for an unknown notebook or parameter and
    :class:`NotebookRunError` (naming the failing cell and the exception) when a cell fails; the
    executed notebook, with the error in it, is kept in that case too.
    """
    path = find_notebook(name_or_path)
    record = _execute(path, dict(params or {}), Path(output_dir) if output_dir else None, progress)
    if record.status != "ok":
        where = f"; executed notebook: {record.output}" if record.output else ""
        raise NotebookRunError(f"{path.stem} failed at {record.error}{where}",
                               Path(record.output) if record.output else None)
    return Path(record.output)


# --------------------------------------------------------------------------- sweeps


@dataclass
class SweepSpec:
    """A notebook, a base parameter set and a grid: one run per combination of the grid's values."""

    name: str
    notebook: Path
    parameters: dict
    grid: dict[str, list]
    description: str = ""

    def combinations(self) -> list[dict]:
        """The grid's combinations (in spec order, last key fastest), each as parameter overrides."""
        keys = list(self.grid)
        return [dict(zip(keys, values)) for values in itertools.product(*self.grid.values())]


def load_sweep(spec: Mapping | str | Path) -> SweepSpec:
    """Validate a sweep spec (a mapping or a YAML file)::

        name: racing_variants        # folder <studies>/runs/<name>/ (default: the YAML file's name)
        notebook: 02_train_idm       # a name from notebooks/ or a path
        parameters: {datasets: [racing], size: tiny, split_block: 4}   # base parameters
        grid: {seed: [0, 1], preset: [joint_v1, joint_v3]}            # lists of values

    Every parameter must be one the notebook declares; nothing runs when the spec is wrong.
    """
    default_name = "sweep"
    if not isinstance(spec, Mapping):
        path = Path(spec)
        if not path.is_file():
            raise NotebookError(f"sweep spec {path} does not exist")
        try:
            spec = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise NotebookError(f"sweep spec {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
        default_name = path.stem
        if not isinstance(spec, Mapping):
            raise NotebookError(f"sweep spec {path}: expected a mapping with notebook, parameters and grid")
    unknown = set(spec) - SWEEP_KEYS
    if unknown:
        raise NotebookError(f"sweep spec: unknown keys {sorted(unknown)}; allowed: {sorted(SWEEP_KEYS)}")
    if "notebook" not in spec:
        raise NotebookError("sweep spec: missing 'notebook'")
    base, grid = spec.get("parameters") or {}, spec.get("grid") or {}
    if not isinstance(base, Mapping) or not isinstance(grid, Mapping):
        raise NotebookError("sweep spec: 'parameters' and 'grid' must be mappings")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise NotebookError(f"sweep spec: grid.{key} must be a non-empty list of values, got {values!r}")
    try:
        name = check_id(str(spec.get("name", default_name)), "sweep name")
    except ValueError as exc:
        raise NotebookError(f"sweep spec: {exc}") from None
    notebook = find_notebook(spec["notebook"])
    _check_parameters(notebook, {**base, **grid})
    return SweepSpec(name, notebook, dict(base), {k: list(v) for k, v in grid.items()},
                     str(spec.get("description", "")))


def run_sweep(spec: Mapping | str | Path | SweepSpec, progress: bool = True) -> pd.DataFrame:
    """Run the spec's notebook once per grid combination (see :func:`load_sweep`).

    A run whose cell fails is recorded (its executed notebook kept with the error) and the sweep
    goes on. Returns one row per run: the grid values, ``status`` (ok/failed), ``duration_s``,
    ``model_id`` (when the run names one), every other number or string the run's
    :func:`save_result` calls recorded (e.g. a test accuracy), ``output`` (the executed notebook)
    and ``error`` (failing cell and exception). The table is also written to
    ``<studies>/runs/<name>/sweep-<timestamp>.csv`` (its path in ``table.attrs["path"]``).
    """
    from tqdm.auto import tqdm

    from .core.paths import studies_dir

    sweep = spec if isinstance(spec, SweepSpec) else load_sweep(spec)
    folder = studies_dir() / "runs" / sweep.name
    rows = []
    combos = sweep.combinations()
    with tqdm(combos, desc=f"sweep {sweep.name}", unit="run", disable=not progress) as bar:
        for combo in bar:
            bar.set_postfix_str(", ".join(f"{k}={v}" for k, v in combo.items()))
            record = _execute(sweep.notebook, {**sweep.parameters, **combo}, folder, progress=False)
            scalars = {k: v for k, v in record.result.items() if isinstance(v, (bool, int, float, str))}
            rows.append({**combo, "status": record.status, "duration_s": record.duration_s,
                         "model_id": record.result.get("model_id"), **scalars,
                         "output": record.output, "error": record.error})
    table = pd.DataFrame(rows)
    path = folder / f"sweep-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.csv"
    atomic_write_text(path, table.to_csv(index=False))
    table.attrs["path"] = str(path)
    return table


# --------------------------------------------------------------------------- called by the notebooks


def save_result(result_file: str | Path | None, **values) -> dict:
    """Add ``values`` (JSON-safe after numpy/Path conversion) to the run's result file.

    The notebooks call this with what they produced (``model_id``, ``store``, ``study``, headline
    numbers); ``result_file`` is their parameter of that name, None when run interactively (then
    nothing is written). Returns the values as stored.
    """
    values = plain(values)
    if result_file is None:
        return values
    path = Path(result_file)
    merged = {**(json.loads(path.read_text()) if path.is_file() else {}), **values}
    atomic_write_text(path, json.dumps(merged, indent=2))
    return values


def prepare_dataset(dataset: str, size: str | None = None, seed: int | None = None,
                    flow_method: str = "farneback", workers: int | None = None, progress: bool = True) -> Path:
    """Record (or import) a catalog dataset and compute its optical flow, each only if missing;
    returns the frames store."""
    from .data.catalog import get_entry, materialise
    from .data.store import derived_path, is_complete
    from .flow import compute_flow

    store = materialise(get_entry(dataset), size=size, seed=seed, progress=progress)
    if not is_complete(derived_path(store, f"flow-{flow_method}")):
        compute_flow(store, method=flow_method, workers=workers, progress=progress)
    return store


def ensure_model(model_id: str | None = None, preset: str = "joint_v3", datasets: list[str] | str = "racing",
                 size: str = "demo", seed: int = 0, data_seed: int = 0, steps: int | None = None,
                 split_block: int | None = None, progress: bool = True, **overrides) -> str:
    """A finished model's id: ``model_id`` itself (checked to be in the library), or else the
    model of ``preset`` on ``datasets`` — taken from the library when it is there, trained now
    otherwise (recording data and flow first when missing).

    Unset ``steps`` / ``split_block`` take the seed 000 study's budget for ``size``
    (:data:`workbench.methods.idm.study.BUDGETS`; fine-tunes its ``finetune_steps``); evaluation runs
    once, at the end. ``overrides`` are further :class:`~workbench.methods.idm.TrainConfig` fields
    (``model_id`` among them: the default id names preset, data and seed but not the step count,
    so a second config of the same preset and data needs its own id).
    """
    from .methods.idm.study import BUDGETS
    from .methods.idm import make_config, train

    if model_id:
        load_card(model_id)
        return model_id
    datasets = [datasets] if isinstance(datasets, str) else list(datasets)
    budget = BUDGETS.get(size, BUDGETS["demo"])
    steps = steps or budget["finetune_steps" if preset.startswith("finetune") else "steps"]
    for dataset in datasets:
        prepare_dataset(dataset, size, data_seed, progress=progress)
    config = make_config(preset, datasets=datasets, size=size, data_seed=data_seed, seed=seed, steps=steps,
                         split_block=split_block or budget["split_block"], eval_every=steps, **overrides)
    return train(config, progress=progress).model_id
