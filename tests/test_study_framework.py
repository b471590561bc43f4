"""The one study framework: ids, the record, the stage runner, old folders, and the results
registry that report, dashboard and notebooks render from."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest

from workbench.core.errors import ConfigError
from workbench.methods.idm.study import StudyConfig
from workbench.methods.worldmodel.study import WorldModelStudyConfig
from workbench.study import framework
from workbench.study.framework import BaseStudyConfig, read_record, run_stages
from workbench.study.results import (Scope, headline, headline_lines, read_headline, result_markdown, spec,
                                     write_report)

#: Folders written by the code before the framework (main at c3a3861, `tiny` sizes), trimmed to the
#: files these tests read: a seed 002 run (``worldmodels.json``) and a seed 000 study (``study.json``).
OLD = Path(__file__).parent / "fixtures" / "old_studies"
NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture
def studies(workbench_dirs, monkeypatch):
    root = workbench_dirs["cache"] / "studies"
    monkeypatch.setenv("WORKBENCH_STUDIES", str(root))
    return root


def test_one_id_rule_hashes_every_setting_that_changes_a_result():
    base = StudyConfig(size="tiny")
    for change in ({"finetune_steps": 11}, {"split_block": 8}, {"steps": 5}, {"percentile": 70.0}):
        assert StudyConfig(size="tiny", **change).study_id != base.study_id, change
    assert StudyConfig(size="tiny", finetune_steps=11).study_id != StudyConfig(size="tiny", finetune_steps=12).study_id
    assert StudyConfig(size="tiny", workers=1).study_id == StudyConfig(size="tiny", workers=2).study_id == base.study_id
    assert base.study_id.startswith("seed000-tiny-s0-d0-r0-")
    run = WorldModelStudyConfig(size="tiny")
    assert run.study_id.startswith("seed002-tiny-s0-first_person-")
    for change in ({"controllers": ["mlp"]}, {"n_clips": 4}, {"model": {"split_block": 16}}, {"seed": 1}):
        assert WorldModelStudyConfig(size="tiny", **change).study_id != run.study_id, change
    assert WorldModelStudyConfig(size="tiny", workers=1).study_id == run.study_id
    with pytest.raises(ValueError, match="size 'huge': unknown to seed000; sizes: tiny, demo, full, quotable"):
        StudyConfig(size="huge")


BUDGETS = {"small": {"steps": 2, "sweep": [1, 2]}, "big": {"steps": 5, "sweep": [1, 2, 3]}}
CALLS: list[str] = []


@dataclass
class ToyConfig(BaseStudyConfig):
    paper: ClassVar[str] = "toy"
    budgets: ClassVar[dict] = BUDGETS
    size: str = "small"
    seed: int = 0
    steps: int | None = None
    sweep: list | None = None
    fail_at: str = ""
    workers: int = 1
    study_id: str | None = None

    def identity(self) -> dict:  # where the toy fails is not part of what it finds
        return {k: v for k, v in super().identity().items() if k != "fail_at"}


def _stage(name: str, run: framework.StudyRun) -> None:
    CALLS.append(name)
    if run.cfg.fail_at == name:
        raise RuntimeError(f"killed in {name}")
    run.record.setdefault("made", []).append(name)


STAGES = [(n, lambda run, n=n: _stage(n, run)) for n in ("data", "train", "evaluate")]


def test_budget_rows_fill_unset_fields_and_are_never_shared():
    a, b = ToyConfig(), ToyConfig(size="big", steps=9)
    assert (a.steps, a.sweep, b.steps, b.sweep) == (2, [1, 2], 9, [1, 2, 3])
    a.sweep.append(7)
    assert BUDGETS["small"]["sweep"] == [1, 2] and ToyConfig().sweep == [1, 2]


def test_resume_skips_finished_stages_and_a_changed_config_starts_afresh(studies):
    CALLS.clear()
    with pytest.raises(RuntimeError, match="killed in train"):
        run_stages(ToyConfig(fail_at="train"), STAGES, progress=False)
    folder = studies / ToyConfig().study_id
    record = read_record(folder)
    assert {k: v["status"] for k, v in record["stages"].items()} == {"data": "done", "train": "failed"}
    assert "killed in train" in record["stages"]["train"]["error"] and "finished" not in record
    assert not framework.finished(folder, ToyConfig())

    assert run_stages(ToyConfig(workers=3), STAGES, progress=False) == folder  # workers: same study
    assert CALLS == ["data", "train", "train", "evaluate"]  # data was not run again
    record = read_record(folder)
    assert record["made"] == ["data", "train", "evaluate"] and "finished" in record and record["paper"] == "toy"
    assert all(s["status"] == "done" and s["code_version"] for s in record["stages"].values())
    assert framework.finished(folder, ToyConfig())

    CALLS.clear()
    run_stages(ToyConfig(), STAGES, progress=False)
    assert CALLS == []  # a finished study runs nothing
    run_stages(ToyConfig(steps=3, study_id=folder.name), STAGES, progress=False)  # same folder, other settings
    assert CALLS == ["data", "train", "evaluate"] and read_record(folder)["made"] == CALLS


def test_rerun_runs_named_finished_stages_again_and_only_those(studies):
    CALLS.clear()
    folder = run_stages(ToyConfig(), STAGES, progress=False)
    first = read_record(folder)["stages"]["train"]["finished"]
    CALLS.clear()
    run_stages(ToyConfig(), STAGES, progress=False, rerun=["train"])
    assert CALLS == ["train"]  # data and evaluate stay as they were
    record = read_record(folder)
    assert record["stages"]["train"]["rerun_of"] == first and "finished" in record
    assert "rerun_of" not in record["stages"]["evaluate"]
    with pytest.raises(ConfigError, match=r"no stage 'fit' to rerun; its stages: 'data', 'train', 'evaluate'"):
        run_stages(ToyConfig(), STAGES, progress=False, rerun=["fit"])


def _old_copy(studies: Path) -> dict[str, Path]:
    shutil.copytree(OLD, studies)
    return {p.name.split("-")[0]: p for p in studies.iterdir()}


def test_folders_of_the_old_code_still_load_list_and_render(studies):
    old = _old_copy(studies)
    wm, idm = read_record(old["seed002"]), read_record(old["seed000"])
    assert wm["paper"] == "seed002" and idm["paper"] == "seed000"
    assert wm["stages"]["world models"]["status"] == "done" and set(idm["stages"]) == {"racing"}
    assert [f.name for f in framework.list_studies("seed002")] == [old["seed002"].name]
    assert [f.name for f in framework.list_studies("seed000")] == [old["seed000"].name]

    text = write_report(old["seed002"]).read_text()
    assert text.index("## Claims ledger") < text.index("## Headline numbers") < text.index("## Capacity (§5)")
    leakage = pd.read_csv(old["seed002"] / "leakage.csv").set_index("model")
    saved = {row["scope"]: {n["label"]: n["value"] for n in row["numbers"]} for row in read_headline(old["seed002"])}
    for model, ratio in leakage["ratio"].items():  # the numbers are data, equal to the table's
        assert saved[model]["leakage ratio"] == pytest.approx(ratio)
    assert json.loads((old["seed002"] / "headline.json").read_text())["headline"] == headline(old["seed002"])
    assert headline_lines(read_headline(old["seed002"]))[0] in text
    text = write_report(old["seed000"]).read_text()
    assert "## Racing (`racing`: Enduro, CarRacing)" in text and "### The calibration gap (steer)" in text
    assert "figures/racing-tsne.png" in text and (old["seed000"] / "figures" / "racing-knn.png").is_file()


def test_report_dashboard_and_notebooks_use_the_registry_captions(studies):
    from workbench.app.results import result_view

    old = _old_copy(studies)
    scope = Scope(old["seed002"], read_record(old["seed002"]))
    notebook = _source("07_latent_action_world_models")
    shown = 0
    for result in spec("seed002").results:
        assert result.caption not in notebook and f'show(folder, "{result.name}")' in notebook
        view = result_view(old["seed002"].name, result.name)
        assert view.objects[0].object.startswith(f"### {result.title}\n{result.caption}")
        if len(view.objects) > 1 and "has no" not in str(getattr(view.objects[1], "object", "")):
            report = result_markdown(result, scope, studies / "figures")  # what the page shows, the report shows
            assert report[:3] == [f"## {result.title}", "", result.caption], result.name
            shown += 1
    assert shown >= 8
    notebook = _source("06_study")  # every result of the registry, each domain
    assert 'for result in spec("seed000").results:' in notebook and "show(folder, result.name, domain)" in notebook
    assert not any(result.caption in notebook for result in spec("seed000").results)


def _source(name: str) -> str:
    """The cells of a notebook, as a reader sees them."""
    return "\n".join("".join(c["source"]) for c in json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())["cells"])


def test_parallel_trainings_end_when_the_study_process_is_killed(tmp_path):
    """A killed study leaves no workers training on (they would compete with the resumed run)."""
    import contextlib
    import os
    import signal
    import subprocess
    import sys
    import time

    import psutil

    script = ("import time\n"
              "from workbench.study.files import train_in_processes\n"
              "train_in_processes(time.sleep, {'a': 600, 'b': 600}, workers=2)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    workers: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline:
            workers = [p for p in psutil.Process(parent.pid).children()
                       if "spawn_main" in " ".join(p.cmdline()) and "resource_tracker" not in " ".join(p.cmdline())]
            time.sleep(0.2)
        assert len(workers) == 2, "the two trainings never started in worker processes"
        time.sleep(1.0)  # the workers' initializer has run: they are inside time.sleep(600)
        assert all(w.is_running() for w in workers)
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=10)
        gone, alive = psutil.wait_procs(workers, timeout=15)
        alive = [w for w in alive if w.status() != psutil.STATUS_ZOMBIE]
        assert not alive, f"workers still running after their study was killed: {[w.pid for w in alive]}"
    finally:
        parent.kill()
        for w in workers:
            with contextlib.suppress(psutil.NoSuchProcess):
                w.kill()
