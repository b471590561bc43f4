"""Catalog page: the datasets, their materialised variants, label balance, the leak audit and a
frame/flow viewer.

The leak audit is computed once per store (on the first request, by a button) and kept in the
cache beside the store (:func:`workbench.analysis.leaks.cached_audit`); later visitors read it.

The viewer reads one frame (one zarr chunk) per slider move and draws its optical flow to the
next frame from the flow store's 4×4 grid (:func:`workbench.viz.plots.frame_flow`).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import panel as pn

from ..analysis.leaks import audit_path, audit_verdict, cached_audit
from ..analysis.selection import frame_table
from ..data.catalog import CatalogWarning
from ..viz.plots import frame_flow, grouped_bars
from . import sources
from .layout import figure, notice, table


def catalog_table() -> pd.DataFrame:
    rows = []
    for entry in sources.catalog().values():
        rows.append({"id": entry.id, "title": entry.title, "domain": entry.domain, "source": entry.kind,
                     "games": ", ".join(entry.games), "sizes": ", ".join(entry.sizes) or "-",
                     "materialised": ", ".join(entry.materialised()) or "no"})
    return pd.DataFrame(rows)


def _balance(store) -> pn.viewable.Viewable:
    summary = sources.summary(store)
    steer = [c for c in summary.columns if c.startswith("steer_")]
    parts = []
    if steer:
        long = summary[steer].rename(columns=lambda c: c.removeprefix("steer_")).rename_axis("game").reset_index().melt(
            "game", var_name="class", value_name="share")
        parts.append(figure(grouped_bars(long, "game", "class", "share", ylabel="share of labeled frames",
                                         title="Steering label balance"), "label-balance"))
    return pn.Column(*parts, table(summary, "dataset-summary"))


def _audit_view(audit: pd.DataFrame) -> pn.viewable.Viewable:
    verdict = audit_verdict(audit)
    regions = audit.pivot_table(index=["game", "head", "region"], columns="feature", values="balanced_accuracy",
                                sort=False)
    flagged = verdict[verdict.flagged != ""]
    head = ("**Leak audit: flagged** — " + "; ".join(
        f"{r.game} · {r.head}: {r.flagged}" + (f" (accepted: {r.accepted})" if r.accepted else "")
        + (" — **a leak**" if r.leak else "") for r in flagged.itertuples())
            if len(flagged) else "**Leak audit:** no region predicts the label from one frame as well as motion does.")
    return pn.Column(pn.pane.Markdown(head + " Single-frame probes (frame t+1, frame t) and frame-difference probes "
                                      "per region vs the motion signal (whole-frame difference or optical flow)."),
                     table(verdict, "leak-audit", index=False), table(regions, "leak-audit-regions"))


def _leak_audit(entry, store) -> pn.viewable.Viewable:
    ds, accepted = sources.dataset(store), entry.accepted_cues()
    if audit_path(store, ds, accepted=accepted).is_file():
        return _audit_view(cached_audit(store, ds, accepted=accepted))
    button = pn.widgets.Button(name="Run the leak audit (once for this store; about a minute per game)")
    out = pn.Column(notice("No leak audit for this variant yet (`workbench audit <dataset>` computes it too)."), button)

    def run(_event) -> None:
        button.disabled = True
        out[:] = [_audit_view(cached_audit(store, ds, accepted=accepted))]

    button.on_click(run)
    return out


def _frame(store, frame: int, show: str) -> pn.viewable.Viewable:
    ds = sources.dataset(store)
    info = frame_table(ds, [frame]).iloc[0]
    if "flow_grid" not in ds:
        return notice("No optical flow for this variant yet: run `workbench flow <dataset>`.")
    image = np.asarray(ds["frames"].isel(frame=frame).values)
    grid = np.asarray(ds["flow_grid"].isel(frame=frame).values)
    title = f"{info.get('game', '')} · episode {info.get('episode', '')} · step {info.get('step', '')}"
    labels = info.drop(labels=["frame", "game", "episode", "step"], errors="ignore")
    text = "  \n".join(f"**{k}**: {v:.3f}" if isinstance(v, (float, np.floating)) else f"**{k}**: {v}"
                       for k, v in labels.items())
    return pn.Row(figure(frame_flow(image, grid, show=show, title=title), "frame-flow", css_classes=["wb-frame-flow"]),
                  pn.pane.Markdown(text, css_classes=["wb-frame-labels"]))


def _variant(entry_id: str, variant: str) -> pn.viewable.Viewable:
    if not variant:
        return notice("Not materialised yet: `workbench record <dataset> --size tiny` (or `workbench import`).")
    store = sources.variant_store(sources.catalog()[entry_id], variant)
    try:
        return _variant_view(entry_id, store)
    except Exception as exc:  # a damaged store fails anywhere in the codec stack: name it, keep the page
        return notice(f"Cannot show `{store}`: {exc}")


def _variant_view(entry_id: str, store) -> pn.viewable.Viewable:
    n = int(sources.dataset(store).sizes["frame"])
    slider = pn.widgets.IntSlider(name="frame", start=0, end=max(n - 1, 0), value=0, width=420)
    show = pn.widgets.RadioButtonGroup(name="flow", options=["arrows", "magnitude"], value="arrows")
    return pn.Column(f"Store: `{store}` — {n:,} frames", _balance(store),
                     _leak_audit(sources.catalog()[entry_id], store),
                     pn.Row(slider, show), pn.panel(pn.bind(_frame, store, slider.param.value_throttled, show)))


def catalog_page() -> pn.viewable.Viewable:
    with warnings.catch_warnings(record=True) as caught:  # broken entries and stray stores: skipped, named
        warnings.simplefilter("always", CatalogWarning)
        entries = sources.catalog()
        recorded = [k for k, e in entries.items() if e.materialised()]
        listing = catalog_table()
    skipped = list(dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, CatalogWarning)))
    problems = [notice("Skipped:  \n" + "  \n".join(f"`{m}`" for m in skipped))] if skipped else []
    if not entries:
        return pn.Column(notice("The catalog is empty."), *problems)
    dataset = pn.widgets.Select(name="dataset", options=list(entries), value=(recorded or list(entries))[0], width=200)
    variant = pn.widgets.Select(name="materialised variant", width=200)

    def update_variants(dataset_id: str) -> None:
        options = entries[dataset_id].materialised()
        variant.options = options
        variant.value = options[0] if options else None

    dataset.param.watch(lambda event: update_variants(event.new), "value")
    update_variants(dataset.value)
    return pn.Column(*problems, table(listing, "catalog", index=False), pn.Row(dataset, variant),
                     pn.panel(pn.bind(_variant, dataset, variant)), sizing_mode="stretch_width")
