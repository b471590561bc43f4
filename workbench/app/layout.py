"""Small Panel building blocks shared by the dashboard's pages."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import panel as pn

log = logging.getLogger(__name__)


def notice(text: str) -> pn.pane.Alert:
    """A grey note where a study lacks a result (e.g. an older study without few-shot curves)."""
    return pn.pane.Alert(text, alert_type="light")


def failure(what: str, exc: Exception) -> pn.pane.Alert:
    """A red note where ``what`` (a page, a run) could not be shown, logged with its traceback: one
    broken or half-written study must not take the dashboard down. Call it in an ``except`` block."""
    log.exception("could not show %s", what)
    return pn.pane.Alert(f"Could not show {what}: {exc}", alert_type="danger")


def table(df: pd.DataFrame, name: str, index: bool = True, max_rows: int = 200, digits: int = 3) -> pn.pane.DataFrame:
    """A DataFrame as an HTML table (no extra JavaScript), floats rounded, at most ``max_rows`` rows."""
    shown = df.head(max_rows).copy()
    for col in shown.columns:
        if pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].round(digits)
    return pn.pane.DataFrame(shown, name=name, index=index, sizing_mode="stretch_width", max_height=420,
                             styles={"overflow": "auto"}, escape=True, na_rep="–")


def figure(obj, name: str, **kw) -> pn.pane.HoloViews:
    """A HoloViews figure (from :mod:`workbench.viz.plots`) rendered with Bokeh."""
    return pn.pane.HoloViews(obj, name=name, backend="bokeh", linked_axes=False, **kw)


def fmt(value: float, digits: int = 3) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def ledger_pane(ledger: pd.DataFrame, scope: str | None = None) -> pn.viewable.Viewable:
    """The claims ledger (:func:`workbench.study.results.ledger_table`) at the top of a study page;
    ``scope`` keeps the rows of one domain."""
    if scope is not None:
        ledger = ledger[ledger["scope"].str.split(" / ").str[0] == scope]
    if ledger.empty:
        return notice("No claim of the paper could be measured on this study.")
    return pn.Column(pn.pane.Markdown("**Claims ledger**: each claim of the paper, the workbench's estimate with a "
                                      "95 % bootstrap interval, the control that would make it fail, the verdict."),
                     table(ledger, "claims-ledger"), sizing_mode="stretch_width")
