"""The dashboard layout: a sidebar choosing the seed 000 study and domain, one tab per page (the
world-model page chooses its seed 002 run itself).

:func:`create_app` builds one visitor's session (``workbench serve`` calls it per session). Pages
are built when their tab is first shown for the current study and domain, from results cached
in :mod:`workbench.app.sources`, so opening the dashboard costs only the visible page.
"""

from __future__ import annotations

import panel as pn

from . import sources
from .calibration import calibration_page
from .catalog import catalog_page
from .geometry import geometry_page
from .layout import failure, notice
from .levels import levels_page
from .library import library_page
from .results import accuracy_page
from .state import PAGES, ViewState, choose, sync_url
from .worldmodels import worldmodels_page

TITLES = {"geometry": "Embedding geometry", "accuracy": "Accuracy & KNN", "calibration": "Calibration",
          "worldmodels": "World models", "levels": "Levels & agents", "catalog": "Catalog", "library": "Studies & models"}
STUDY_PAGES = ("geometry", "accuracy", "calibration")


class Dashboard:
    """One visitor's dashboard; its :class:`ViewState` is mirrored in the page URL."""

    def __init__(self):
        self.state = ViewState()
        sync_url(self.state)
        studies = sources.list_studies()
        self.state.study = choose(self.state.study, studies)
        self.study = pn.widgets.Select(name="Study", options=studies, value=self.state.study or None,
                                       sizing_mode="stretch_width")
        self.domain = pn.widgets.Select(name="Domain", sizing_mode="stretch_width")
        self.about = pn.pane.Markdown(name="study-about")
        self._set_domains()
        self.tabs = pn.Tabs(*[(TITLES[p], pn.Column(name=p, sizing_mode="stretch_width")) for p in PAGES],
                            active=PAGES.index(self.state.page), dynamic=True, sizing_mode="stretch_width")
        self.built: dict[str, tuple] = {}
        self.study.param.watch(self._study_changed, "value")
        self.domain.param.watch(self._domain_changed, "value")
        self.tabs.param.watch(self._tab_changed, "active")
        self.show()

    def _set_domains(self) -> None:
        domains = sources.study_domains(self.state.study) if self.state.study else []
        self.state.domain = choose(self.state.domain, domains)
        self.domain.param.update(options=domains, value=self.state.domain or None)
        if self.state.study:
            cfg = sources.study_record(self.state.study).get("config", {})
            games = sources.domain_record(self.state.study, self.state.domain)["games"] if self.state.domain else []
            self.about.object = (f"size `{cfg.get('size')}`, seed {cfg.get('seed')}, {cfg.get('steps')} steps  \n"
                                 f"games: {', '.join(games)}")

    def _study_changed(self, event) -> None:
        self.state.study = event.new or ""
        self._set_domains()
        self.show()

    def _domain_changed(self, event) -> None:
        if event.new and event.new != self.state.domain:
            self.state.domain = event.new
            self._set_domains()
            self.show()

    def _tab_changed(self, event) -> None:
        self.state.page = PAGES[event.new]
        self.show()

    def show(self) -> None:
        """Build the active page if it was not built yet for the current study and domain."""
        page = PAGES[self.tabs.active]
        scope = (self.state.study, self.state.domain) if page in STUDY_PAGES else ()
        if self.built.get(page) == scope:
            return
        self.built[page] = scope
        self.tabs[self.tabs.active].objects = [self._build(page)]

    def _build(self, page: str) -> pn.viewable.Viewable:
        study, domain = self.state.study, self.state.domain
        try:
            if page == "catalog":
                return catalog_page()
            if page == "library":
                return library_page()
            if page == "worldmodels":
                return worldmodels_page(self.state)
            if page == "levels":
                return levels_page(self.state)
            if not study or not domain:
                return notice("No studies yet. Run one with `workbench study --size tiny` (or `make demo`).")
            if page == "geometry":
                return geometry_page(self.state, study, domain)
            if page == "accuracy":
                return accuracy_page(study, domain)
            return calibration_page(self.state, study, domain)
        except Exception as exc:  # one broken study must not take the dashboard down
            return failure(f"{TITLES[page]} for {study}/{domain}", exc)

    def template(self) -> pn.template.BaseTemplate:
        sidebar = [self.study, self.domain, self.about,
                   pn.pane.Markdown("The address bar links to this view: study, domain, page, projection, "
                                    "colour, game, percentile and world-model run.", styles={"font-size": "12px"})]
        return _Template(title="Latent Action Workbench", sidebar=sidebar, main=[self.tabs], sidebar_width=280,
                         accent="#1f77b4")


class _Template(pn.template.FastListTemplate):
    """The FastListTemplate, attached to a visitor's document in one go: Bokeh re-indexes every model
    of a document each time a root is added unless it is frozen, and the template adds a root per
    area — with the embedding plot's thousands of points that re-indexing was most of a page view."""

    def server_doc(self, doc=None, title=None, location=True):
        doc = doc or pn.state.curdoc
        with doc.models.freeze():
            return super().server_doc(doc, title, location)


def create_app() -> pn.template.BaseTemplate:
    """A new dashboard session (what ``workbench serve`` serves at ``/``)."""
    return Dashboard().template()
