"""Embedding geometry page: the study's claims ledger and headline numbers, its t-SNE/UMAP of the
joint model linked to its frames, and its geometry scores, under the registry's titles and
captions (:data:`workbench.app.results.PAGE_RESULTS`).

Colour by action or game, filter to one game; above :data:`~workbench.viz.plots.DATASHADE_ABOVE`
points the figure is datashaded on the server. Box- or lasso-select points to see up to
:data:`THUMBNAILS` of their frame pairs (rendered on the server, only for the selection) and a
table of the selected frames' labels, and export the selection for a notebook
(:func:`workbench.app.exports.load_selection`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn

from ..analysis.selection import frame_table, points_in_region
from ..data.store import StoreError
from ..viz.plots import embedding_view
from . import sources
from .exports import export_selection
from .layout import figure, table
from .results import PAGE_RESULTS, result_view, study_header
from .state import ViewState, choose

THUMBNAILS = 12
THUMBNAIL_HEIGHT = 72


class GeometryPage:
    """One visitor's geometry page for one study domain."""

    def __init__(self, state: ViewState, study: str, domain: str):
        self.state, self.study, self.domain = state, study, domain
        record = sources.domain_record(study, domain)
        self.store, self.dataset_id = record["store"], record["dataset"]
        methods = sources.projections(study, domain)
        games = ["all", *record["games"]]
        state.param.update(projection=choose(state.projection, methods) or state.projection,
                           game=choose(state.game, games))
        self.projection = pn.widgets.RadioButtonGroup(name="projection", options=methods, value=state.projection,
                                                      button_type="primary", button_style="outline")
        self.color = pn.widgets.RadioButtonGroup(name="colour by", options=["action", "game"], value=state.color,
                                                 button_type="primary", button_style="outline")
        self.game = pn.widgets.Select(name="game", options=games, value=state.game, width=180)
        self.plot = figure(None, "embedding", sizing_mode="stretch_width")
        self.summary = pn.pane.Markdown("Select points with the box or lasso tool to see their frames.",
                                        name="selection-summary")
        self.thumbnails = pn.FlexBox(name="thumbnails")
        self.frames = pn.Column(name="selection-table")
        self.export_name = pn.widgets.TextInput(name="selection name", value=f"{study}-{domain}-selection", width=260)
        self.export_button = pn.widgets.Button(name="Export selection", button_type="primary", disabled=True)
        self.export_message = pn.pane.Markdown(name="export-message")
        self.view = pd.DataFrame()
        self.selected = pd.DataFrame()
        for widget, name in ((self.projection, "projection"), (self.color, "color"), (self.game, "game")):
            widget.param.watch(lambda event, name=name: self._changed(name, event.new), "value")
        self.export_button.on_click(self._export)
        self.methods = methods
        if methods:
            self.redraw()

    def _changed(self, name: str, value) -> None:
        setattr(self.state, name, value)
        self.redraw()

    def redraw(self) -> None:
        """Rebuild the figure for the current projection / colour / game and clear the selection."""
        points = sources.points(self.study, self.domain, self.projection.value)
        if self.game.value != "all":
            points = points[points["game"] == self.game.value]
        self.view = points.reset_index(drop=True)
        title = f"{self.domain}: joint v3 embedding ({self.projection.value.upper()}, {len(self.view):,} frames)"
        fig = embedding_view(self.view[["x", "y"]].to_numpy(), self.view["action"], self.view["game"],
                             color_by=self.color.value, title=title,
                             hover={"source_frame": self.view["source_frame"].to_numpy()}, select=self.select)
        self.plot.object = fig
        self.select()

    def select(self, bounds=None, polygon=None) -> None:
        """Show the frames of the points inside a box (``bounds``) or lasso (``polygon``)."""
        xy = self.view[["x", "y"]].to_numpy() if len(self.view) else np.zeros((0, 2))
        self.selected = self.view.iloc[points_in_region(xy, bounds, polygon)]
        n = len(self.selected)
        self.export_button.disabled = n == 0
        self.export_message.object = ""
        if not n:
            self.summary.object = "Select points with the box or lasso tool to see their frames."
            self.thumbnails.objects, self.frames.objects = [], []
            return
        counts = lambda col: ", ".join(f"{k} {v}" for k, v in self.selected[col].value_counts().items())  # noqa: E731
        self.summary.object = (f"**{n} frames selected** — by game: {counts('game')}; by action: {counts('action')}."
                               + (f" Showing {THUMBNAILS} frame pairs (t, t+1) spread over the selection."
                                  if n > THUMBNAILS else " Frame pairs (t, t+1):"))
        pick = self.selected.iloc[np.unique(np.linspace(0, n - 1, min(n, THUMBNAILS)).round().astype(int))]
        self.thumbnails.objects = [self._thumbnail(row) for row in pick.itertuples()]
        shown = self.selection_table().drop(columns=["study", "domain", "dataset", "store", "projection"])
        self.frames.objects = [table(shown, "selected frames", index=False, max_rows=100)]

    def _thumbnail(self, row) -> pn.Column:
        caption = pn.pane.Markdown(f"{row.game} · frame {row.source_frame} · {row.action}",
                                   styles={"font-size": "11px"}, margin=(0, 5))
        try:
            png = sources.thumbnail(self.store, int(row.source_frame), THUMBNAIL_HEIGHT)
        except (StoreError, IndexError) as exc:  # the study's store was deleted or re-recorded
            return pn.Column(pn.pane.Markdown(f"*frame unavailable: {exc}*", styles={"font-size": "11px"}), caption)
        return pn.Column(pn.pane.PNG(png, height=THUMBNAIL_HEIGHT, css_classes=["wb-thumbnail"]), caption)

    def selection_table(self) -> pd.DataFrame:
        """The selected frames with where they live, their projection coordinates and labels."""
        sel = self.selected
        labels = frame_table(sources.dataset(self.store), sel["source_frame"].to_numpy())
        head = pd.DataFrame({"study": self.study, "domain": self.domain, "dataset": self.dataset_id,
                             "store": self.store, "projection": self.projection.value,
                             "x": sel["x"].to_numpy(), "y": sel["y"].to_numpy(), "action": sel["action"].to_numpy(),
                             "split": sel["split"].to_numpy() if "split" in sel else ""})
        return pd.concat([head, labels], axis=1)

    def _export(self, _event) -> None:
        name = self.export_name.value.strip()
        try:
            path = export_selection(self.selection_table(), name)
        except ValueError as exc:
            self.export_message.object = f"**Not exported:** {exc}"
            return
        self.export_message.object = (f"Saved {len(self.selected)} frames to `{path}`. In a notebook:\n\n"
                                      f"```python\nfrom workbench.app.exports import load_selection\n"
                                      f"sel = load_selection({name!r})\n```")

    def panel(self) -> pn.viewable.Viewable:
        """The claims ledger and headline numbers, then the page's results of the registry, the
        embeddings as this interactive figure (a notice where the study saved no projection)."""
        interactive = []
        if self.methods:
            controls = pn.Row(pn.Column("**Projection**", self.projection), pn.Column("**Colour by**", self.color),
                              self.game)
            export = pn.Row(self.export_name, self.export_button, align="end")
            selection = pn.Column(self.summary, self.thumbnails, width=420)  # the plot takes the rest of the page
            interactive = [controls, pn.Row(self.plot, selection), export, self.export_message, self.frames]
        results = [result_view(self.study, name, self.domain, figures=interactive if name == "embeddings" else None)
                   for name in PAGE_RESULTS["geometry"]]
        return pn.Column(*study_header(self.study, self.domain), *results, sizing_mode="stretch_width")


def geometry_page(state: ViewState, study: str, domain: str) -> pn.viewable.Viewable:
    return GeometryPage(state, study, domain).panel()
