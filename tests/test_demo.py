"""`workbench demo`, the main job (:mod:`workbench.main_job`): its named steps (the data, then
every study at the demo size), and a step that fails is reported without stopping the others or
the dashboard."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import workbench.cli as cli
import workbench.data.catalog as catalog
import workbench.flow as flow
import workbench.methods.idm.study as idm_study
import workbench.methods.worldmodel.study as wm_study
import workbench.main_job as main_job
import workbench.study.results as results
from workbench.core.errors import ConfigError, DataError
from workbench.main_job import Step, main_steps, run_steps


def _report(folder):
    """A finished study folder: its record, headline numbers and a report."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "study.json").write_text(json.dumps({"refused": {}}))
    (folder / "report.md").write_text("# report\n")
    return folder / "report.md"


@pytest.fixture
def demo_job(workbench_dirs, monkeypatch, tmp_path):
    """The demo with nothing recorded and both study runners replaced by fakes that log their
    config (``fail``: the study names whose runner raises); returns (calls, fail)."""
    calls, fail = [], set()
    monkeypatch.setattr(catalog, "materialise", lambda *a, **k: pytest.fail("nothing to record"))
    monkeypatch.setattr(catalog, "load_catalog", lambda: {})
    monkeypatch.setattr(flow, "compute_flow", lambda *a, **k: pytest.fail("nothing to compute"))

    def runner(name, error):
        def run(cfg, progress=True):
            calls.append((name, cfg.size, cfg.study_id))
            if name in fail:
                raise error(f"{name} broke")
            return tmp_path / name
        return run

    monkeypatch.setattr(idm_study, "run_study", runner("seed000", RuntimeError))  # unexpected: a traceback
    monkeypatch.setattr(wm_study, "run_worldmodel_study", runner("seed002", ConfigError))  # expected: one line
    monkeypatch.setattr(results, "write_report", _report)
    monkeypatch.setattr(results, "read_headline", lambda folder: [{"scope": "all", "numbers": []}])
    monkeypatch.setattr(main_job, "run_demo_levels",
                        lambda size, seed, log: calls.append(("levels", size)) or tmp_path / "levels")
    monkeypatch.setattr(cli, "serve", lambda **kw: calls.append(("serve", kw["address"], kw["port"])))
    return calls, fail


@pytest.mark.parametrize("failing", [(), ("seed000",), ("seed002",), ("seed000", "seed002")])
def test_demo_runs_every_study_and_serves_even_when_one_fails(demo_job, failing):
    calls, fail = demo_job
    fail.update(failing)
    result = CliRunner().invoke(cli.app, ["demo", "--port", "5099"])
    assert [c[:2] for c in calls] == [("seed000", "demo"), ("seed002", "demo"), ("levels", "demo"),
                                      ("serve", "127.0.0.1")]
    assert calls[1][2].startswith("seed002-demo-s0-first_person-") and calls[3][2] == 5099
    assert result.exit_code == (1 if failing else 0), result.output
    assert result.output.count("done in") == 4 - len(failing)  # the data step, the studies, the levels run
    assert result.output.count("FAILED in") == len(failing)
    assert result.output.count("report: ") == 2 - len(failing)
    if "seed000" in failing:
        assert "Traceback" in result.output and "RuntimeError: seed000 broke" in result.output
    if "seed002" in failing:
        assert "error: seed002 broke" in result.output
    if failing:
        assert "failed: " in result.output and "the dashboard shows the others" in result.output


def test_demo_without_studies_only_serves(demo_job):
    calls, _ = demo_job
    result = CliRunner().invoke(cli.app, ["demo", "--no-study"])
    assert result.exit_code == 0, result.output
    assert [c[0] for c in calls] == ["serve"]


def test_the_main_job_is_a_list_of_named_steps():
    names = [step.name for step in main_steps("demo")]
    assert names[0].startswith("data") and len(names) == 4 and names[-1].startswith("seed 003 levels")
    assert [s.name for s in main_steps("demo", studies=False)] == names[:1]


def test_a_failing_step_is_reported_and_the_next_runs():
    """A user's error is one line, a bug keeps its traceback; both are named among the failed."""
    log, errors, ran = [], [], []

    def fails(error):
        def run(_log):
            raise error
        return run

    steps = [Step("data", fails(DataError("broken store x.zarr"))), Step("bug", fails(KeyError("k"))),
             Step("study", lambda out: (ran.append("study"), out("report: r.md")))]
    assert run_steps(steps, log=log.append, error=errors.append) == ["data", "bug"]
    assert ran == ["study"] and "report: r.md" in log and "study: done in 0.0 min" in log
    assert errors[0] == "error: broken store x.zarr" and errors[1] == "data: FAILED in 0.0 min"
    assert errors[2].startswith("Traceback") and "KeyError: 'k'" in errors[2]


def test_the_data_step_failing_does_not_stop_the_studies(demo_job, monkeypatch):
    calls, _ = demo_job
    monkeypatch.setattr(catalog, "load_catalog", lambda: (_ for _ in ()).throw(DataError("catalog: bad entry")))
    result = CliRunner().invoke(cli.app, ["demo", "--no-serve"])
    assert result.exit_code == 1 and "error: catalog: bad entry" in result.output
    assert [c[0] for c in calls] == ["seed000", "seed002", "levels"]
