"""Options made from config dataclasses (workbench/cli_options.py): every field of each command's
config is an option (or hidden for a stated reason) with the field's help, and a command gets only
what the user gave, over a --config file, over the command's own defaults."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import ClassVar

import pytest
import typer
from typer.testing import CliRunner

import workbench.cli as cli
from workbench.cli_options import Option, config_options, field_help, lazy_group
from workbench.core.errors import ConfigError
from workbench.engine.config import ConfigIO

#: Every command whose options come from a config class: its words on the command line.
COMMANDS = {("workbench", "train"): ["train"], ("workbench", "study"): ["study"],
            ("workbench", "levels"): ["levels"], ("worldmodel", "train"): ["worldmodel", "train"],
            ("worldmodel", "controller"): ["worldmodel", "controller"],
            ("worldmodel", "study"): ["worldmodel", "study"]}


def _flat(text: str) -> str:
    """Help output without rich's box characters and line breaks: one line of words."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_every_config_command_is_listed_here():
    assert {(g, n) for g, commands in cli.CONFIG_COMMANDS.items() for n in commands} == set(COMMANDS)


@pytest.mark.parametrize("key", list(COMMANDS), ids=" ".join)
def test_every_field_is_an_option_with_its_help(key):
    command = cli.CONFIG_COMMANDS[key[0]][key[1]].build()
    cls, hidden = command.config_class, command.hidden_fields
    assert all(why.strip() for why in hidden.values())
    names = {f.name for f in dataclasses.fields(cls)}
    params = set(command.__signature__.parameters)
    assert names - set(hidden) <= params, f"fields without an option: {names - set(hidden) - params}"
    helps = field_help(cls)
    assert names <= set(helps), f"{cls.__name__} fields without help: {names - set(helps)}"
    result = CliRunner().invoke(cli.app, [*COMMANDS[key], "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    shown = _flat(result.output)
    for name in names - set(hidden):
        info = command.__signature__.parameters[name].default
        assert _flat(info.help) in shown, f"--help of {' '.join(COMMANDS[key])} lacks the help of {name}"
        if info.help != helps[name]:  # the command words it its own way: only where the form differs
            assert key in {("worldmodel", "study")} and name in {"sweeps", "ood_train_games"}


@dataclass
class Toy(ConfigIO):
    """A config with one field of each kind the options support."""

    steps: int = 10
    rate: float | None = None
    games: list[str] = field(default_factory=lambda: ["a"])
    mapping: dict[str, int] = field(default_factory=dict)
    flag: bool = False
    kind: str = "x"

    FIELD_HELP: ClassVar[dict[str, str]] = {"rate": "A rate.", "games": "Games.", "mapping": "A mapping.",
                                            "flag": "A flag.", "kind": "A kind."}


def _toy_app(**kwargs):
    seen = []

    @config_options(Toy, **kwargs)
    def run(fields: dict, config: str = typer.Option(None, "--config")) -> None:
        seen.append(fields)

    commands = {"run": run}
    app = typer.Typer(cls=lazy_group(commands))

    @app.callback()
    def group() -> None:
        """A group (a typer app of one command would be that command)."""

    return app, seen


def test_a_command_gets_what_was_given_over_a_file_over_its_defaults(tmp_path):
    app, seen = _toy_app(options={"kind": Option(flags=("--kind", "-k"), default="y")})
    runner = CliRunner()
    assert runner.invoke(app, ["run"]).exit_code == 0
    assert seen[-1] == {"kind": "y"}  # nothing given: only the command's own default
    result = runner.invoke(app, ["run", "--steps", "3", "--games", "b", "--games", "c", "--mapping", "{u: 1}",
                                 "--flag", "-k", "z", "--rate", "0.5"])
    assert result.exit_code == 0, result.output
    assert seen[-1] == {"steps": 3, "games": ["b", "c"], "mapping": {"u": 1}, "flag": True, "kind": "z", "rate": 0.5}
    path = tmp_path / "toy.yaml"
    Toy(steps=7, kind="file").save(path)
    assert runner.invoke(app, ["run", "--config", str(path), "--rate", "2"]).exit_code == 0
    assert seen[-1] == {**Toy(steps=7, kind="file").to_dict(), "rate": 2.0}  # the file over "y", the option over both


def test_a_new_field_is_a_new_option_and_needs_help():
    @dataclass
    class Grown(Toy):
        depth: int = 2
        FIELD_HELP: ClassVar[dict[str, str]] = {"depth": "Blocks."}

    @config_options(Grown)
    def run(fields: dict) -> None:
        """Run."""

    assert run.build().__signature__.parameters["depth"].default.help == "Blocks."

    @dataclass
    class Undocumented(Toy):
        width: int = 2

    @config_options(Undocumented)
    def bare(fields: dict) -> None:
        """Run."""

    with pytest.raises(TypeError, match="width has no help"):
        bare.build()


def test_bad_yaml_in_an_option_is_a_user_error():
    app, _ = _toy_app(guard=cli._guard)
    result = CliRunner().invoke(app, ["run", "--mapping", "{u: [1"])
    assert result.exit_code == 2 and "error: --mapping: '{u: [1' is not valid YAML" in result.output
    app, _ = _toy_app()  # without the CLI's guard the ConfigError itself comes out
    assert isinstance(CliRunner().invoke(app, ["run", "--mapping", "{u: [1"]).exception, ConfigError)


def test_the_config_commands_are_built_only_when_used():
    """`workbench --help` lists them without importing their configs (torch, scikit-learn)."""
    import subprocess
    import sys

    code = ("import sys, workbench.cli as c; from typer.testing import CliRunner; "
            "r = CliRunner().invoke(c.app, ['--help']); assert 'train' in r.output and 'levels' in r.output; "
            "print(sorted(m for m in ('torch', 'sklearn', 'workbench.methods.idm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_old_options_keep_their_meaning(monkeypatch):
    """The options the README and tests use: short flags, --sweep, --ood-train none, levels --game."""
    import workbench.methods.worldmodel.study as wm_study
    import workbench.play.levels as levels

    made = []
    monkeypatch.setattr(wm_study, "run_worldmodel_study", lambda cfg: made.append(cfg) or "folder")
    monkeypatch.setattr(cli, "_report", lambda folder: None)
    monkeypatch.setattr(wm_study.WorldModelStudyConfig, "validate", lambda self: None)
    result = CliRunner().invoke(cli.app, ["worldmodel", "study", "-s", "tiny", "--sweep", "noisy=1e-3,5e-5",
                                          "--sweep", "discrete=16", "--ood-train", "none", "--steps", "4"])
    assert result.exit_code == 0, result.output
    cfg = made[-1]
    assert cfg.size == "tiny" and cfg.sweeps == {"noisy": [1e-3, 5e-5], "discrete": [16]}
    assert cfg.ood_train_games == [] and cfg.steps == 4 and cfg.dataset == "first_person"
    result = CliRunner().invoke(cli.app, ["worldmodel", "study", "--sweep", "noisy"])
    assert result.exit_code == 2 and "--sweep takes FAMILY=V1,V2" in result.output

    runs = []
    monkeypatch.setattr(levels, "run_levels", lambda cfg, log: runs.append(cfg) or (_ for _ in ()).throw(
        ConfigError("stop here")))
    result = CliRunner().invoke(cli.app, ["levels", "random", "--game", "take_cover", "--max-steps", "5", "-n", "2",
                                          "--reference", "none"])
    assert result.exit_code == 2 and "stop here" in result.output
    assert runs[-1].games == {"take_cover": 5} and runs[-1].agents == ["random"] and runs[-1].episodes == 2
    assert runs[-1].reference is None
    CliRunner().invoke(cli.app, ["levels", "--set", "doom", "--max-steps", "9"])
    assert runs[-1].agents == ["random", "scripted"] and set(runs[-1].games.values()) == {9}
    assert runs[-1].run_id == "levels-doom-n3-s0-cap9"
