"""Command-line options made from a config dataclass, so that a new config field is a new option.

:func:`config_options` gives a command one ``--field-name`` option per field of a config class,
with the field's type, default and help (the class's ``FIELD_HELP``, merged over its bases by
:func:`field_help`), and calls the command with ``fields``: the values the user gave on the
command line, over the fields of a ``--config`` YAML if the command has that parameter, over the
defaults the command itself sets (an :class:`Option` with a ``default``). Fields the user left
alone are not passed, so a preset or a study's budget table still fills them.

Types: ``int``, ``float``, ``str``, ``bool`` (``--x/--no-x``) and lists of them (a repeatable
option) map to themselves, ``None``-able ones to optional options; anything else (a mapping, a
list of lists) is given as YAML text, e.g. ``--targets '{steer: flow_steer}'``.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer
import yaml

from .core.errors import ConfigError

SCALARS = (bool, int, float, str)
#: An :class:`Option` without a default of its own (the field's applies).
UNSET = type("Unset", (), {"__repr__": lambda self: "UNSET"})()
#: Where a value may come from for it to count as given by the user (names of click's ParameterSource).
GIVEN = ("COMMANDLINE", "ENVIRONMENT")
#: The parameter through which typer hands a config command its context.
CONTEXT = "typer_context_"


@dataclass(frozen=True)
class Option:
    """How one field appears on a command when not as plain ``--field-name``: other ``flags``
    (``("--dataset", "-d")``), an ``argument`` instead of an option, the command's own
    ``default`` (passed even when the user gives nothing), other ``help``, and a CLI ``type``
    with a ``parse`` function (or ``"module:function"``) from what the user typed to the field's value."""

    flags: tuple[str, ...] = ()
    argument: bool = False
    default: Any = UNSET
    help: str | None = None
    type: Any = None
    parse: Callable[[Any], Any] | str | None = None


def field_help(cls) -> dict[str, str]:
    """Help of every field of ``cls``: the ``FIELD_HELP`` tables of the class and its bases merged,
    the most derived class winning."""
    merged: dict[str, str] = {}
    for base in reversed(cls.__mro__):
        merged.update(vars(base).get("FIELD_HELP", {}))
    return merged


def cli_type(hint) -> tuple[Any, Callable[[Any], Any] | None]:
    """The typer annotation for a field's type hint and the parser from the typed value (None: as
    typed). ``int | None`` -> ``Optional[int]``; ``list[str]`` -> ``List[str]``; else YAML text."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        inner = [a for a in args if a is not type(None)]
        annotation, parse = cli_type(inner[0]) if len(inner) == 1 else (str, _yaml)
        return Optional[annotation], parse
    if hint in SCALARS:
        return hint, None
    if typing.get_origin(hint) is list and len(args) == 1 and args[0] in SCALARS:
        return List[args[0]], list
    return str, _yaml


def _yaml(text: str, what: str = "option"):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"{what}: {text!r} is not valid YAML (quote strings that contain ':' or brackets)") from None


def _default(field: dataclasses.Field):
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


def config_parameters(cls, options: dict[str, Option], hidden: dict[str, str]) -> dict[str, tuple]:
    """``{field: (inspect.Parameter, parse, command default)}`` for every field of ``cls`` not in
    ``hidden`` (field -> why it is not an option); refuses a field without help or default."""
    helps, hints = field_help(cls), typing.get_type_hints(cls)
    unknown = (set(options) | set(hidden)) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise TypeError(f"{cls.__name__} has no fields {sorted(unknown)}")
    made = {}
    for field in dataclasses.fields(cls):
        if field.name in hidden:
            continue
        opt = options.get(field.name, Option())
        text = opt.help or helps.get(field.name)
        if not text:
            raise TypeError(f"{cls.__name__}.{field.name} has no help: add it to FIELD_HELP")
        annotation, parse = (opt.type, opt.parse) if opt.type is not None else cli_type(hints[field.name])
        default = opt.default if opt.default is not UNSET else _default(field)
        if default is dataclasses.MISSING:
            raise TypeError(f"{cls.__name__}.{field.name} has no default: hide it or give the command one")
        shown = default is not None
        if parse is _yaml:  # typed as YAML text: the default is shown as YAML, and not parsed
            default, shown = None, shown and yaml.safe_dump(default, default_flow_style=True).strip()
            parse = functools.partial(_yaml, what=(opt.flags or ("--" + field.name.replace("_", "-"),))[0])
        if opt.argument:
            info = typer.Argument(default, help=text, show_default=shown)
        else:  # no flags: typer names it --field-name (a bool --field-name/--no-field-name)
            info = typer.Option(default, *opt.flags, help=text, show_default=shown)
        parameter = inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=annotation)
        made[field.name] = (parameter, _resolve(opt.parse) if opt.parse else parse, opt.default)
    return made


def config_options(cls, options: dict[str, Option] | None = None, hidden: dict[str, str] | None = None,
                   guard: Callable = lambda fn, *a, **k: fn(*a, **k)):
    """Decorator: the command ``fn(fields, **own)`` gets one typer parameter per field of ``cls``
    (a class or ``"module:Class"``, imported when the command is built: see :class:`LazyGroup`)
    beside its own parameters, and is called with ``fields`` = the command's defaults, then a
    ``--config`` YAML (when ``fn`` has a ``config`` parameter), then what the user gave. ``guard``
    runs the parsers and the YAML load (the CLI's one-line error handling). The decorated
    function's ``build()`` returns the command with that signature."""

    def decorate(fn):
        @functools.cache
        def build():
            config = _resolve(cls)
            made = config_parameters(config, options or {}, hidden or {})
            hints = typing.get_type_hints(fn)
            own = [p.replace(annotation=hints.get(p.name, p.annotation))
                   for p in list(inspect.signature(fn).parameters.values())[1:]]  # the first is ``fields``
            clash = {p.name for p in own} & set(made)
            if clash:
                raise TypeError(f"{fn.__name__}: parameters {sorted(clash)} are also fields of {config.__name__}")

            @functools.wraps(fn)
            def command(**kwargs):
                ctx = kwargs.pop(CONTEXT)
                given, defaults = {}, {}
                for name, (_, parse, default) in made.items():
                    value = kwargs.pop(name)
                    if ctx.get_parameter_source(name).name in GIVEN:
                        given[name] = guard(parse, value) if parse else value
                    elif default is not UNSET:
                        defaults[name] = guard(parse, default) if parse else default
                path = kwargs.get("config")
                base = guard(config.load, Path(path)).to_dict() if path else {}
                return fn({**defaults, **base, **given}, **kwargs)

            context = inspect.Parameter(CONTEXT, inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
            parameters = [*own, *(p for p, _, _ in made.values()), context]
            command.__signature__ = inspect.Signature(parameters)
            command.__annotations__ = {p.name: p.annotation for p in parameters}
            del command.__wrapped__  # typer reads the signature above, not fn's
            command.config_class, command.hidden_fields = config, dict(hidden or {})
            return command

        fn.build = build
        return fn

    return decorate


def _resolve(obj):
    """``obj``, or the object a ``"module:name"`` string names (imported now)."""
    if isinstance(obj, str):
        module, _, name = obj.partition(":")
        return getattr(importlib.import_module(module), name)
    return obj


class LazyCommand(typer.core.TyperCommand):
    """A command of a :class:`LazyGroup`: its name and short help are known at once; the typer
    command with every option is built (importing the config class) when it runs or shows help."""

    def __init__(self, name: str, fn: Callable):
        super().__init__(name, help=inspect.getdoc(fn))
        self.fn = fn

    def real(self):
        """The typer command, built now (importing the config class)."""
        app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        app.command(self.name)(self.fn.build())
        return typer.main.get_command(app)

    def make_context(self, info_name, args, parent=None, **extra):
        return self.real().make_context(info_name, args, parent=parent, **extra)


def lazy_group(commands: dict[str, Callable]) -> type:
    """A typer group class whose ``commands`` (name -> a function decorated by
    :func:`config_options`) are added as :class:`LazyCommand`: the config classes import torch and
    scikit-learn, which a command that needs none of them (``workbench catalog list``) should
    not wait for."""

    class LazyGroup(typer.core.TyperGroup):
        def list_commands(self, ctx):
            return [*super().list_commands(ctx), *commands]

        def get_command(self, ctx, name):
            return LazyCommand(name, commands[name]) if name in commands else super().get_command(ctx, name)

    return LazyGroup
