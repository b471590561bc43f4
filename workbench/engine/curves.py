"""Training curves in TensorBoard's event format, in ``<model folder>/curves/``.

The training engine (:mod:`.fit`) logs per step ``train/<stat>`` (``train/loss`` and the
method's other terms) and ``throughput/<unit>_per_s``, and per evaluation ``val/<metric>``;
``tensorboard --logdir <models_dir>`` shows them, and :func:`read_curves` turns them into a tidy
table. A resumed run opens a new event file whose first event purges the steps after its
checkpoint (TensorBoard's ``purge_step``), and :func:`read_curves` keeps the last value of a
repeated (step, tag), so a run interrupted between checkpoints has no duplicated steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

CURVES = "curves"


class CurveWriter:
    """Scalars of one training run into ``folder`` (created on first use), starting at
    ``start_step``; writes nothing when not ``enabled`` (ranks other than 0)."""

    def __init__(self, folder: Path, start_step: int = 0, enabled: bool = True):
        self._writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when training

            self._writer = SummaryWriter(str(folder), purge_step=start_step or None)

    def log(self, step: int, scalars: Mapping[str, float], prefix: str) -> None:
        """``scalars`` as ``<prefix>/<name>`` at ``step`` (non-numeric values skipped)."""
        if self._writer is None:
            return
        for name, value in scalars.items():
            if isinstance(value, (int, float)):
                self._writer.add_scalar(f"{prefix}/{name}", float(value), step)

    def flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _started(path: Path) -> tuple[int, int]:
    """Order of the runs' event files: the start second in the name
    (``events.out.tfevents.<seconds>.<host>.<pid>.<n>``), then the last write (runs in one second:
    their names' counter does not sort as text, ``.10`` < ``.9``)."""
    return int(path.name.split(".")[3]), path.stat().st_mtime_ns


def read_curves(folder: Path) -> pd.DataFrame:
    """The curves under ``folder`` (a model folder or its ``curves/``) as columns ``step``,
    ``tag``, ``value``, sorted; a repeated (step, tag) keeps its last-written value. Empty when
    there are none (a model trained before curves were logged)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    folder = Path(folder)
    folder = folder / CURVES if (folder / CURVES).is_dir() else folder
    columns = ["step", "tag", "value"]
    runs = []
    for path in sorted(folder.glob("events.out.tfevents.*"), key=_started):  # one file per run
        events = EventAccumulator(str(path), size_guidance={"scalars": 0})
        events.Reload()
        run = pd.DataFrame([(e.step, tag, e.value) for tag in events.Tags()["scalars"] for e in events.Scalars(tag)],
                           columns=columns)
        if len(run):  # a resumed run replaces what earlier runs logged from its first step on
            runs = [r[r.step < run.step.min()] for r in runs]
            runs.append(run)
    table = pd.concat(runs, ignore_index=True).drop_duplicates(["step", "tag"], keep="last") if runs else \
        pd.DataFrame(columns=columns)
    return table.sort_values(["tag", "step"]).reset_index(drop=True)[columns]
