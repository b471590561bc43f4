"""One error base class: the CLI prints a user's error as one line (exit code 2) and a bug with its traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench.app.server import ServeError
from workbench.app.users import UsersFileError
from workbench.analysis.leaks import LeakError
from workbench.cli import app
from workbench.core.errors import ConfigError, DataError, WorkbenchError
from workbench.core.locks import LockError
from workbench.data.catalog import CatalogError
from workbench.data.store import StoreError
from workbench.engine.library import ModelLibraryError
from workbench.notebooks import NotebookError, NotebookRunError

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("cls", [CatalogError, StoreError, LockError, ModelLibraryError, UsersFileError, ServeError,
                                 NotebookError, NotebookRunError, LeakError, ConfigError, DataError])
def test_every_user_error_is_a_workbench_error(cls):
    assert issubclass(cls, WorkbenchError)


def test_config_and_data_errors_are_still_value_errors():
    """Callers (and tests) that caught ValueError for a bad value keep working."""
    from workbench.methods.idm.config import make_config

    with pytest.raises(ValueError, match="unknown preset"):
        make_config("no_such_preset")
    assert issubclass(DataError, ValueError) and issubclass(ConfigError, ValueError)


def test_a_user_error_is_one_line_with_exit_code_2(tmp_path):
    """A malformed config YAML names the file and line (before: yaml's error escaped as a traceback)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [1, 2\nseed: 0\n")
    result = runner.invoke(app, ["train", "joint_v1", "--config", str(bad)])
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"error: {bad}: not valid YAML at line 2 "
                                                  "(expected ',' or ']', but got ':')"], result.output
    result = runner.invoke(app, ["train", "no_such_preset"])
    assert result.exit_code == 2 and result.output.strip().splitlines() == [
        "error: unknown preset 'no_such_preset'; presets: " + result.output.split("presets: ", 1)[1].strip()]


@pytest.mark.parametrize("command", [["train", "joint_v1"], ["worldmodel", "train"]])
@pytest.mark.parametrize("text, message", [("steps: abc", "['steps'] must be positive"),
                                           ("split_fractions: [a, b, c]", "split_fractions must be three")])
def test_a_config_value_of_the_wrong_type_is_a_user_error(tmp_path, command, text, message):
    """Before: ``int('abc')`` inside the config's check escaped as a traceback."""
    path = tmp_path / "config.yaml"
    path.write_text(f"datasets: [racing]\n{text}\n")
    result = runner.invoke(app, [*command, "--config", str(path)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert f"error: {path}: " in result.output and message in result.output


def test_a_missing_path_is_a_user_error(tmp_path):
    result = runner.invoke(app, ["train", "joint_v1", "--config", str(tmp_path / "absent.yaml")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "absent.yaml" in result.output


@pytest.mark.parametrize("exc", [ValueError("a bug"), KeyError("a bug")])
def test_a_programming_error_keeps_its_traceback(monkeypatch, exc):
    """A ValueError or KeyError inside a command is a bug: no one-line ``error:``, the exception escapes."""
    import workbench.data.catalog as catalog

    def broken():
        raise exc

    monkeypatch.setattr(catalog, "load_catalog", broken)
    result = runner.invoke(app, ["catalog", "list"])
    assert result.exit_code == 1 and result.exception is exc
    assert "error:" not in result.output


def test_the_console_prints_a_bugs_traceback_and_a_user_errors_line(tmp_path):
    """Through the console entry point: the bug's traceback names the failing function on stderr."""
    script = textwrap.dedent("""
        import sys
        import workbench.data.catalog as catalog
        from workbench.core.errors import DataError
        from workbench.cli import main

        def load_catalog_with_a_bug():
            raise {exc}("oops")

        catalog.load_catalog = load_catalog_with_a_bug
        sys.argv = ["workbench", "catalog", "list"]
        main()
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    bug = subprocess.run([sys.executable, "-c", script.format(exc="ValueError")], capture_output=True, text=True,
                         env=env, timeout=120)
    assert bug.returncode == 1
    assert "Traceback (most recent call last)" in bug.stderr and "load_catalog_with_a_bug" in bug.stderr
    assert "ValueError: oops" in bug.stderr and "error: oops" not in bug.stderr
    user = subprocess.run([sys.executable, "-c", script.format(exc="DataError")], capture_output=True, text=True,
                          env=env, timeout=120)
    assert user.returncode == 2 and user.stderr.strip() == "error: oops", user.stderr
