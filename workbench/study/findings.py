"""Quotable findings: run both studies at one size over several seeds as a resumable batch, and
write their pooled claims ledgers to ``docs/findings/seed000.md`` and ``seed002.md``.

``run_findings`` skips every study whose record says it finished with the same config; an
interrupted one resumes (trained models are reused, interrupted trainings continue from their
checkpoints, embeddings come from the cache), so a killed run continues where it stopped.
``write_findings`` regenerates the documents from the ledgers alone (numbers from the runs,
their config, seeds, code versions and dates): nothing in them is written by hand.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pandas as pd

from ..core.errors import ConfigError
from ..core.paths import atomic_write_text
from ..core.provenance import REPO_ROOT, code_version, now_utc
from ..core.paths import studies_dir
from ..engine.library import list_models, load_card
from .files import markdown_table
from .framework import finished, read_record
from .ledger import REPLICATE_FIELDS, ledger, replicates_of
from .results import ledger_table, spec, write_report
from ..methods.idm.study import StudyConfig, run_study
from ..methods.worldmodel.study import WorldModelStudyConfig, run_worldmodel_study

FINDINGS_DIR = REPO_ROOT / "docs" / "findings"
#: Each paper's study: its config type and its runner.
STUDIES = {"seed000": (StudyConfig, run_study), "seed002": (WorldModelStudyConfig, run_worldmodel_study)}


def replicate_config(cfg_type, size: str, seed: int):
    """Seed replicate ``seed`` of a study at ``size``: every seed its config has (models, and data
    and label draws where separate) set to ``seed``."""
    names = {f.name for f in fields(cfg_type)}
    return cfg_type(size=size, **{k: seed for k in ("seed", "data_seed", "draw_seed") if k in names})


def run_findings(size: str = "quotable", seeds: Sequence[int] = (0, 1, 2), progress: bool = True,
                 studies: Sequence[str] = ("seed000", "seed002"),
                 log: Callable[[str], None] = print, rerun: Sequence[str] = ()) -> dict[str, list[Path]]:
    """Run (or resume, or skip when finished) each seed's seed 000 study and seed 002 batch run at
    ``size``, writing each report; returns the study folders per paper. ``rerun``: stages of the
    (one) study in ``studies`` to run again in every seed, finished or not."""
    if rerun and len(studies) != 1:
        raise ConfigError("rerunning stages needs one study (their stage names differ): "
                          f"choose one of {', '.join(studies)}")
    out: dict[str, list[Path]] = {s: [] for s in studies}
    for seed in seeds:
        for paper in studies:
            cfg_type, run = STUDIES[paper]
            cfg = replicate_config(cfg_type, size, seed)
            folder = studies_dir() / cfg.study_id
            if finished(folder, cfg) and not rerun:
                log(f"{cfg.study_id}: finished, skipped")
            else:
                log(f"{cfg.study_id}: running (resumes whatever an earlier run left"
                    + (f"; reruns {', '.join(rerun)})" if rerun else ")"))
                folder = run(cfg, progress=progress, rerun=rerun)
                write_report(folder)
            out[paper].append(folder)
    return out


def _models_of(record: Any, library: set[str], key: str = "") -> Iterator[tuple[str, str]]:
    """``(kind, model_id)`` of every model of ``library`` a study record names (as a value; the
    kind is the first part of the name the record gives it, e.g. ``single``, ``joint_v3``,
    ``free``, ``xattn``)."""
    if isinstance(record, dict):
        for k, v in record.items():
            yield from _models_of(v, library, str(k))
    elif isinstance(record, list):
        for v in record:
            yield from _models_of(v, library, key)
    elif isinstance(record, str) and record in library:
        yield key.split(":")[0].split("-")[0], record


def training_summary(records: Sequence[dict]) -> pd.DataFrame:
    """How each kind of model of the studies ``records`` stopped, read from the cards: stopped
    early, or ran to its step cap with early stopping still undecided (its best evaluation within
    the last ``patience`` evaluations, so it might have improved further), and how many of those
    had their best at the cap itself. One row per kind, models counted once over the seeds."""
    rows, library = {}, set(list_models())
    for record in records:
        for kind, model_id in _models_of(record, library):
            card = load_card(model_id)
            training, cfg = card["training"], card["config"]
            stop = training.get("early_stopping") or {}
            if not stop:
                continue
            window = stop["patience"] * cfg.get("eval_every", 0)
            at_cap = stop.get("stopped_step") is None
            rows[model_id] = {"kind": kind, "stopped early": not at_cap,
                              "at cap, undecided": at_cap and stop["best_step"] > training["steps"] - window,
                              "best at cap": at_cap and stop["best_step"] == training["steps"],
                              "steps": training["steps"]}
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows.values())

    def count(group: pd.DataFrame) -> pd.Series:
        flags = group[["stopped early", "at cap, undecided", "best at cap"]].sum()
        return pd.concat([pd.Series({"models": len(group)}), flags, pd.Series({"median steps": group["steps"].median()})])
    out = pd.DataFrame({kind: count(group) for kind, group in df.groupby("kind", sort=False)}).T
    out.loc["all"] = count(df)
    return out.rename_axis("kind").astype(int)


def findings_text(folder: Path, requested: Sequence[int] | None = None) -> str:
    """The findings document of a study and its seed replicates: what ran, then the ledger
    (``requested``: the seeds asked for, so a document of a batch still running says so)."""
    record = read_record(folder)
    kind = record["paper"]
    folders = replicates_of(folder)
    records = [read_record(f) for f in folders]
    df = ledger(folder)
    cfg = {k: v for k, v in record["config"].items() if k not in REPLICATE_FIELDS}
    counts = df["verdict"].str.replace(r" \(.*$", "", regex=True).value_counts()
    done = sorted(r["config"]["seed"] for r in records)
    pending = sorted(set(requested or ()) - set(done))
    status = (f"**Seeds:** {', '.join(map(str, done))} finished" +
              (f"; {', '.join(map(str, pending))} still to run (`workbench findings run` continues the batch), "
               "so the intervals below are over fewer seeds than asked for." if pending else "."))
    lines = [f"# Findings: seed {kind[4:]} — *{spec(kind).title}*", "",
             f"Generated by `workbench findings write` on {now_utc()} (code {code_version()}) from the claims "
             "ledgers of the studies below; regenerate it rather than editing it.", "",
             status, "", "**Verdicts:** " + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".", "",
             "## Runs", "",
             markdown_table(pd.DataFrame([{"study": r["config"]["study_id"], "seed": r["config"]["seed"],
                                           "code": r.get("code_version", ""), "started": r.get("started", ""),
                                           "finished": r.get("finished", "")} for r in records]).set_index("study")),
             "", "Config (the same for every seed): `" + json.dumps(cfg, sort_keys=True, default=str) + "`", "",
             "## Training", "",
             "How the runs' models stopped, from their cards: *stopped early* when the validation loss had not "
             "improved for `patience` evaluations; *at cap, undecided* when the step cap came first while the best "
             "evaluation was within the last `patience` (these might have improved further); *best at cap* when the "
             "last evaluation was the best.", "",
             markdown_table(training) if len(training := training_summary(records)) else
             "(the model library holds none of these runs' models)", "",
             "## Claims ledger", "",
             "Estimates are means over the seeds; 95 % intervals from a bootstrap over test blocks, clips or episodes "
             "within each seed and over seeds (`workbench.study.ledger` states the rules and the verdict rule).", "",
             markdown_table(ledger_table(df)), ""]
    return "\n".join(lines)


def write_findings(size: str = "quotable", seeds: Sequence[int] = (0, 1, 2), out: Path = FINDINGS_DIR) -> list[Path]:
    """Write ``<out>/seed000.md`` / ``seed002.md`` from the finished studies at ``size`` (the first
    finished of ``seeds`` and all its replicates); a paper without one is skipped (its document
    is left as it was), none at all is an error."""
    written = []
    for paper, (cfg_type, _) in STUDIES.items():
        configs = [replicate_config(cfg_type, size, s) for s in seeds]
        found = [studies_dir() / c.study_id for c in configs if finished(studies_dir() / c.study_id, c)]
        if found:
            written.append(atomic_write_text(Path(out) / f"{paper}.md", findings_text(found[0], seeds)))
    if not written:
        raise FileNotFoundError(f"no finished study at size {size!r} under {studies_dir()}: run "
                                f"`workbench findings run --size {size}` first")
    return written
