"""The main job (``workbench demo``, ``make demo``): record the built-in catalog and compute its
optical flow, then run every study at one size, as a list of named steps. A step that fails is
reported (a user's error as one line, a bug with its traceback) and the others go on, so the
dashboard shows whatever finished.

Adding a study to the main job is one :class:`Step` in :func:`main_steps`.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from .analysis.summary import summary_report
from .core.errors import USER_ERRORS
from .core.paths import cache_dir
from .data import catalog
from . import flow
from .methods.idm import study as idm_study
from .methods.worldmodel import study as wm_study
from .play.levels import run_demo_levels
from .study.results import report_lines

Log = Callable[[str], None]


@dataclass(frozen=True)
class Step:
    """One step of the main job: its ``name`` and ``run(log)``, which logs what it made."""

    name: str
    run: Callable[[Log], None]


def prepare_data(size: str, seed: int | None, workers: int | None, log: Log) -> Path:
    """Record every recorded catalog entry that has ``size`` and compute its Farneback flow (both
    reused when cached); log each per-game summary and write it to ``<cache>/reports``."""
    reports = cache_dir() / "reports"
    for entry in catalog.load_catalog().values():
        if entry.kind != "record" or size not in entry.sizes:
            continue
        log(f"\n== {entry.id}: {entry.title}")
        path = catalog.materialise(entry, size=size, seed=seed)
        flow.compute_flow(path, method="farneback", workers=workers)
        text, warnings = summary_report(path, reports / f"{entry.id}-{entry.variant(size, seed)}-summary.csv")
        log("\n".join([text, *(f"warning: {w}" for w in warnings)]))
    log(f"\nsummaries written to {reports}")
    return reports


def run_and_report(run: Callable[[], Path], log: Log) -> Path:
    """Run a study, write its report and log :func:`~workbench.study.results.report_lines`; the study folder."""
    folder = run()
    log("\n".join(report_lines(folder)))
    return folder


def main_steps(size: str = "demo", seed: int | None = None, workers: int | None = None,
               studies: bool = True) -> list[Step]:
    """The main job's steps: the data, then (when ``studies``) seed 000's cross-game IDM study,
    seed 002's world-model batch run and seed 003's levels run (whose MPC agent uses seed 002's
    controller) at ``size``, on data recorded with ``seed`` (None: the entries')."""
    data_seed = seed or 0
    steps = [Step("data (recordings, optical flow, summaries)", lambda log: prepare_data(size, seed, workers, log))]
    if studies:
        steps += [
            Step("seed 000 study (cross-game IDMs)", lambda log: run_and_report(
                lambda: idm_study.run_study(idm_study.StudyConfig(size=size, seed=0, data_seed=data_seed)), log)),
            Step("seed 002 batch run (latent-action world models)", lambda log: run_and_report(
                lambda: wm_study.run_worldmodel_study(
                    wm_study.WorldModelStudyConfig(dataset="first_person", size=size, seed=data_seed)), log)),
            Step("seed 003 levels (agents in the real games)", lambda log: log(
                f"levels run: {run_demo_levels(size, data_seed, log=log)}")),
        ]
    return steps


def run_steps(steps: Sequence[Step], log: Log, error: Log) -> list[str]:
    """Run every step, timed; a failing one is reported on ``error`` (a user's error as one
    ``error:`` line, anything else with its traceback) and the next one runs. Returns the names of
    the steps that failed."""
    failed = []
    for step in steps:
        log(f"\n== {step.name}")
        started = time.perf_counter()
        try:
            step.run(log)
            ok = True
        except USER_ERRORS as exc:
            error(f"error: {exc}")
            ok = False
        except Exception:
            error(traceback.format_exc().rstrip())
            ok = False
        minutes = (time.perf_counter() - started) / 60
        (log if ok else error)(f"{step.name}: {'done' if ok else 'FAILED'} in {minutes:.1f} min")
        if not ok:
            failed.append(step.name)
    return failed
