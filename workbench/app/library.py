"""Library page: every study (seed 000 IDM studies and seed 002 world-model runs) and every model
of the model library, with a model card viewer and the selected model's training curves."""

from __future__ import annotations

import pandas as pd
import panel as pn
import yaml

from ..viz import plots
from . import sources
from .layout import figure, notice, table


def studies_table() -> pd.DataFrame:
    """One row per study: the seed 000 IDM studies, then the seed 002 world-model runs."""
    rows = []
    for kind, ids, read, datasets in (
            ("IDM (seed 000)", sources.list_studies(), sources.study_record, lambda r: list(r.get("domains", {}))),
            ("world models (seed 002)", sources.list_wm_runs(), sources.study_record, lambda r: [r.get("dataset", "")])):
        for study_id in ids:
            record = read(study_id)
            cfg = record.get("config", {})
            rows.append({"study": study_id, "kind": kind, "size": cfg.get("size"), "seed": cfg.get("seed"),
                         "steps": cfg.get("steps"), "domains": ", ".join(datasets(record)),
                         "started": record.get("started", ""),
                         "finished": record.get("finished", "running or interrupted")})
    return pd.DataFrame(rows)


def curve_panels(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The model's curves to plot, by title: the training loss per step, then the validation
    metrics per evaluation (one line per metric); empty groups left out."""
    groups = [("training loss", table[table.tag == "train/loss"]),
              ("validation metrics", table[table.tag.str.startswith("val/")])]
    return [(title, part) for title, part in groups if len(part)]


def _curves(model_id: str) -> pn.viewable.Viewable:
    panels = curve_panels(sources.model_curves(model_id))
    if not panels:
        return notice("No training curves: this model was trained before curves were logged.")
    return pn.Row(*(figure(plots.curves(part, "step", "value", "tag", title=title, ylabel=title), f"curves-{i}")
                    for i, (title, part) in enumerate(panels)), name="model-curves")


def _card(model_id: str | None) -> pn.viewable.Viewable:
    if not model_id:
        return notice("No model selected.")
    text = yaml.safe_dump(sources.model_card(model_id).to_dict(), sort_keys=False, allow_unicode=True)
    return pn.Column(_curves(model_id),
                     pn.pane.Markdown(f"```yaml\n{text}```", name="model-card", max_height=600,
                                      styles={"overflow": "auto"}), sizing_mode="stretch_width")


def library_page() -> pn.viewable.Viewable:
    studies, models = studies_table(), sources.models_table()
    parts = [pn.pane.Markdown(f"### Studies ({len(studies)})"),
             table(studies, "studies", index=False) if len(studies)
             else notice("No studies yet: `workbench study`, `workbench worldmodel study`."),
             pn.pane.Markdown(f"### Models ({len(models)})"),
             *(pn.pane.Alert(line, alert_type="warning") for line in models.attrs["skipped"])]
    if not len(models):
        return pn.Column(*parts, notice("The model library is empty: `workbench train`."))
    pick = pn.widgets.Select(name="model card", options=list(models["model"]), width=420)
    return pn.Column(*parts, table(models, "models", index=False), pick, pn.panel(pn.bind(_card, pick)),
                     sizing_mode="stretch_width")
