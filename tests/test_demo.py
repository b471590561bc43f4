"""`workbench demo`, the main job: it runs every study (seed 000, seed 002) at the demo size, and a
study that fails is reported without stopping the other study or the dashboard."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import workbench.cli as cli
import workbench.data.catalog as catalog
import workbench.flow as flow
import workbench.methods.idm.study as idm_study
import workbench.methods.worldmodel.study as wm_study
import workbench.study.results as results
from workbench.core.errors import ConfigError


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
    monkeypatch.setattr(cli, "serve", lambda **kw: calls.append(("serve", kw["address"], kw["port"])))
    return calls, fail


@pytest.mark.parametrize("failing", [(), ("seed000",), ("seed002",), ("seed000", "seed002")])
def test_demo_runs_every_study_and_serves_even_when_one_fails(demo_job, failing):
    calls, fail = demo_job
    fail.update(failing)
    result = CliRunner().invoke(cli.app, ["demo", "--port", "5099"])
    assert [c[:2] for c in calls] == [("seed000", "demo"), ("seed002", "demo"), ("serve", "127.0.0.1")]
    assert calls[1][2].startswith("seed002-demo-s0-first_person-") and calls[2][2] == 5099
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
