"""`workbench demo`, the main job: it runs every study (seed 000, seed 002) at the demo size, and a
study that fails is reported without stopping the other study or the dashboard."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import workbench.cli as cli
import workbench.data.catalog as catalog
import workbench.flow as flow
import workbench.methods.idm.report as idm_report
import workbench.methods.idm.study as idm_study
import workbench.methods.worldmodel.report as wm_report
import workbench.methods.worldmodel.study as wm_study


def _report(folder, record):
    """A finished study folder: its record and a report with headline numbers."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / record).write_text(json.dumps({"refused": {}}))
    (folder / "report.md").write_text("# report\n\n## Headline numbers\n\n- a number\n\n## Next\n")
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
    monkeypatch.setattr(wm_study, "run_worldmodel_study", runner("seed002", ValueError))  # expected: one line
    monkeypatch.setattr(idm_report, "write_report", lambda folder: _report(folder, "study.json"))
    monkeypatch.setattr(wm_report, "write_wm_report", lambda folder: _report(folder, "worldmodels.json"))
    monkeypatch.setattr(cli, "serve", lambda **kw: calls.append(("serve", kw["address"], kw["port"])))
    return calls, fail


@pytest.mark.parametrize("failing", [(), ("seed000",), ("seed002",), ("seed000", "seed002")])
def test_demo_runs_every_study_and_serves_even_when_one_fails(demo_job, failing):
    calls, fail = demo_job
    fail.update(failing)
    result = CliRunner().invoke(cli.app, ["demo", "--port", "5099"])
    assert [c[:2] for c in calls] == [("seed000", "demo"), ("seed002", "demo"), ("serve", "127.0.0.1")]
    assert calls[1][2] == "seed002-first_person-demo-s0" and calls[2][2] == 5099
    assert result.exit_code == (1 if failing else 0), result.output
    assert result.output.count("done in") == 2 - len(failing)
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
