"""The registry of result specs: each study declares its results once, and the report, the
dashboard's study pages and the notebooks all render from it.

A :class:`Result` is a name, a title, a caption (written here once), and the functions that
build what it shows from the saved tables of one :class:`Scope` (a seed 002 run, or one domain
of a seed 000 study): a ``table``, ``figures`` (HoloViews objects from :mod:`workbench.viz.plots`,
by file stem), a computed sentence (``text``), saved ``pictures``. A :class:`StudySpec` lists a
paper's results in report order with its headline numbers, which are data (``headline.json``:
one entry per scope, each number with its label and format), never parsed back from Markdown.
Each method's report module declares its spec (``STUDY``); :func:`spec` finds it by paper.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..core.errors import ConfigError
from .files import markdown_table, write_json
from .framework import read_record

#: The module declaring each paper's :class:`StudySpec` (imported on first use: methods import the framework).
MODULES = {"seed000": "..methods.idm.report", "seed002": "..methods.worldmodel.report"}
HEADLINE = "headline.json"


@dataclass(frozen=True)
class Scope:
    """Where a result's tables are: ``folder`` (the study folder) or its ``part`` (a seed 000 domain)."""

    folder: Path
    record: dict
    part: str = ""

    @property
    def tables(self) -> Path:
        return self.folder / self.part if self.part else self.folder

    @property
    def study_id(self) -> str:
        return self.record["config"]["study_id"]

    @property
    def prefix(self) -> str:
        """The prefix of the scope's figure files (``racing-``), so domains do not overwrite each other."""
        return f"{self.part}-" if self.part else ""

    def csv(self, name: str, **kw) -> pd.DataFrame | None:
        """The saved table ``name`` (``capacity.csv``, ``ood/navigation.csv``), or None when the
        study has none (an older study, no planning without motion actions) or it is empty."""
        path = self.tables / name
        return pd.read_csv(path, **kw) if path.is_file() and path.stat().st_size > 1 else None


@dataclass(frozen=True)
class Result:
    """One result of a study (module docstring). ``table``, ``figures`` and ``text`` return None
    (or nothing) where the scope did not save what they need; ``pictures`` is a folder of saved
    pictures: ``(folder, selector label, caption)``; ``static`` figures are shown on the
    dashboard as PNGs (a HoloViews layout stalls the page's URL sync)."""

    name: str
    title: str
    caption: str
    table: Callable[[Scope], pd.DataFrame | None] | None = None
    figures: Callable[[Scope], dict[str, object]] | None = None
    text: Callable[[Scope], str | None] | None = None
    pictures: tuple[str, str, str] | None = None
    floatfmt: str = ".3f"
    static: bool = False


@dataclass(frozen=True)
class StudySpec:
    """A paper's study as its readers see it: title, the results in report order, the headline
    numbers (``headline(scope) -> [{"scope": …, "numbers": [{"label", "value", "format", "note"}]}]``),
    the report's heading (followed by the study id) and its opening and closing lines, all from the
    record and the saved tables."""

    paper: str
    title: str
    results: tuple[Result, ...]
    headline: Callable[[Scope], list[dict]]
    heading: str
    about: Callable[[dict], list[str]]
    provenance: Callable[[Scope], list[str]]
    part_heading: Callable[[Scope], str] | None = None
    parts: Callable[[dict], list[str]] = field(default=lambda record: [""])

    def result(self, name: str) -> Result:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"{self.paper} has no result {name!r}; results: {', '.join(r.name for r in self.results)}")

    def scopes(self, folder: Path, record: dict | None = None) -> list[Scope]:
        record = record or read_record(folder)
        return [Scope(Path(folder), record, part) for part in self.parts(record)]


def spec(paper: str) -> StudySpec:
    """The :class:`StudySpec` of ``paper`` (``seed000``, ``seed002``)."""
    if paper not in MODULES:
        raise ConfigError(f"unknown study paper {paper!r}; known: {', '.join(MODULES)}")
    return importlib.import_module(MODULES[paper], __package__).STUDY


def study_spec(folder: Path) -> tuple[StudySpec, dict]:
    """The spec and (normalised) record of a study folder."""
    record = read_record(folder)
    return spec(record["paper"]), record


def ran(record: dict) -> str:
    """What ran when, for a report's opening lines: ``Code <version>; started <time>, <n> min wall time.``"""
    return (f"Code {record.get('code_version')}; started {record.get('started')}"
            + (f", {record['wall_s'] / 60:.1f} min wall time." if "wall_s" in record else " (running or interrupted)."))


# ----------------------------------------------------------------------------- headline numbers


def number(label: str, value, fmt: str = ".3f", note: str = "") -> dict:
    """One headline number: ``label``, ``value`` (a float; NaN when not measured), how to print it."""
    return {"label": label, "value": float(value) if value is not None else np.nan, "format": fmt, "note": note}


def headline(folder: Path) -> list[dict]:
    """The headline numbers of a study folder, computed from its saved tables (every scope)."""
    study, record = study_spec(folder)
    return [row for scope in study.scopes(Path(folder), record) for row in study.headline(scope)]


def read_headline(folder: Path) -> list[dict]:
    """The headline numbers :func:`write_report` saved (``headline.json``), or computed when not saved."""
    path = Path(folder) / HEADLINE
    return json.loads(path.read_text())["headline"] if path.is_file() else headline(folder)


def headline_lines(rows: list[dict]) -> list[str]:
    """The headline numbers as Markdown bullets: ``- **scope**: label value (note); …``."""
    def text(n: dict) -> str:
        value = n["value"]
        shown = "–" if value is None or not np.isfinite(value) else format(value, n["format"])
        return f"{n['label']} {shown}" + (f" ({n['note']})" if n.get("note") else "")
    return [f"- **{row['scope']}**: " + "; ".join(text(n) for n in row["numbers"]) for row in rows if row["numbers"]]


# ----------------------------------------------------------------------------- the claims ledger


def ledger_table(df: pd.DataFrame, markdown: bool = True) -> pd.DataFrame:
    """A ledger (:func:`workbench.study.ledger.ledger`) as a table to read: the claim quoted with
    its section, the estimate with its 95 % interval, units and seeds, the control and the verdict
    (in bold with ``markdown``)."""
    bold = "**" if markdown else ""

    def num(v: float, digits: int = 3) -> str:
        return "–" if not np.isfinite(v) else f"{v:.{digits}g}"

    def estimate(e: float, lo: float, hi: float, rule_low: float, rule_high: float) -> str:
        """``e [lo, hi]`` with 3 significant digits, more (up to 6) where fewer would print two
        different numbers alike, e.g. a bound 1.0002 beside the rule's 1 ("1 [1, 1]" reproduced)."""
        values = [v for v in (e, lo, hi, rule_low, rule_high) if np.isfinite(v)]
        digits = next((d for d in range(3, 7) if all(num(a, d) != num(b, d) for a in values for b in values
                                                     if a != b)), 6)
        return f"{num(e, digits)} [{num(lo, digits)}, {num(hi, digits)}]"

    out = pd.DataFrame({
        "scope": df["scope"],
        "paper says": [f"“{q}” ({s})" for q, s in zip(df["quote"], df["section"])],
        "estimate [95 % CI]": [estimate(*row) for row in zip(df["estimate"], df["ci_low"], df["ci_high"],
                                                                 df["rule_low"], df["rule_high"])],
        "claim holds if": df["rule"],
        "units · seeds": [f"{n} {u}s · {s}" if n else f"– · {s}" for n, u, s in zip(df["n_units"], df["unit"], df["seeds"])],
        "control (its number)": [f"{c} ({num(v)})" for c, v in zip(df["control"], df["control_estimate"])],
        "verdict": [f"{bold}{v}{bold}" + (f" ({n})" if n else "") for v, n in zip(df["verdict"], df["note"])],
    })
    repeat = df["claim"].duplicated().to_numpy()  # the quote and control once per claim
    out.loc[repeat, ["paper says", "control (its number)"]] = "″"
    out["control (its number)"] = np.where(repeat, [f"″ ({num(v)})" for v in df["control_estimate"]],
                                           out["control (its number)"])
    out.index = pd.Index(df["claim"], name="claim")
    return out


LEDGER_CAPTION = ("Each claim of the paper against this study's tables: the estimate with a 95 % bootstrap interval "
                  "(units resampled within each game; pooled over ≥ 3 seed replicates where they exist), the control "
                  "that would make it fail, and a verdict computed from the interval (`workbench.study.ledger`).")


# ----------------------------------------------------------------------------- the report


def result_markdown(result: Result, scope: Scope, figures_dir: Path, level: str = "##") -> list[str]:
    """One result as report lines (heading, caption, computed text, table, figures, pictures);
    nothing when the scope saved nothing for it. Figures are saved under ``figures_dir``."""
    from ..viz.plots import save_figure

    table = result.table(scope) if result.table else None
    text = result.text(scope) if result.text else None
    figures = result.figures(scope) if result.figures else {}
    pictures = sorted((scope.tables / result.pictures[0]).glob("*.png")) if result.pictures else []
    if table is None and not text and not figures:
        return []
    out = [f"{level} {result.title}", "", result.caption, ""]
    out += [text, ""] if text else []
    out += [markdown_table(table, result.floatfmt), ""] if table is not None else []
    for stem, fig in figures.items():
        name = f"{scope.prefix}{stem}.png"
        save_figure(fig, figures_dir / name)
        out += [f"![{stem}](figures/{name})", ""]
    if pictures:
        out += [result.pictures[2], "", *[f"![{p.stem}]({result.pictures[0]}/{p.name})" for p in pictures], ""]
    return out


def write_report(folder: Path) -> Path:
    """Write ``report.md`` (with ``figures/*.png``) and ``headline.json`` for a study folder of
    any paper: the heading and what ran, the claims ledger, the headline numbers, every result of
    the registry per scope, the provenance. Returns the report's path."""
    from ..engine.library import atomic_write_text
    from .ledger import ledger

    folder = Path(folder)
    study, record = study_spec(folder)
    scopes = study.scopes(folder, record)
    claims = ledger(folder)
    rows = headline(folder)
    write_json({"headline": rows}, folder / HEADLINE)
    lines = [f"# {study.heading} — `{record['config']['study_id']}`", "", *study.about(record), "",
             "## Claims ledger", "", LEDGER_CAPTION, "",
             markdown_table(ledger_table(claims)) if len(claims) else "No claims could be measured.", "",
             "## Headline numbers", "", *headline_lines(rows), ""]
    for scope in scopes:
        level = "##"
        if study.part_heading:
            lines += [study.part_heading(scope), ""]
            level = "###"
        for result in study.results:
            lines += result_markdown(result, scope, folder / "figures", level)
    lines += study.provenance(Scope(folder, record))
    return atomic_write_text(folder / "report.md", "\n".join(lines) + "\n")


def report_lines(folder: Path) -> list[str]:
    """Write a finished study's report (:func:`write_report`); the lines saying why domains were
    refused, its headline numbers (from ``headline.json``) and where the report is."""
    report = write_report(folder)
    refused = [f"refused: {why}" for why in read_record(folder).get("refused", {}).values()]
    return [*refused, "Headline numbers", *headline_lines(read_headline(folder)), "", f"report: {report}"]


# ----------------------------------------------------------------------------- notebooks


def show(folder: Path, name: str, part: str = ""):
    """Display one result in a notebook as the report shows it (title, caption, computed text,
    table, figures); returns the table (or None) for further use."""
    from IPython.display import Markdown, display

    study, record = study_spec(folder)
    result, scope = study.result(name), Scope(Path(folder), record, part)
    table = result.table(scope) if result.table else None
    text = result.text(scope) if result.text else None
    display(Markdown(f"### {result.title}\n\n{result.caption}" + (f"\n\n{text}" if text else "")))
    if table is not None:
        display(table)
    for fig in (result.figures(scope) if result.figures else {}).values():
        display(fig)
    return table
