"""The view a visitor is looking at, kept in the page URL so that a link reproduces it.

``?study=seed000-demo-s0&domain=racing&page=geometry&projection=umap&color=game&game=Enduro&percentile=70``
opens that study and domain on the geometry page with those settings;
``?page=worldmodels&wm_run=seed002-demo-s0-first_person-<hash>`` opens a seed 002 world-model run. The dashboard's widgets
write into a :class:`ViewState`; :func:`sync_url` ties its parameters to the URL query.
"""

from __future__ import annotations

import panel as pn
import param

PAGES = ("geometry", "accuracy", "calibration", "worldmodels", "levels", "catalog", "library")
#: ViewState parameters kept in the URL query, under their own names.
SYNCED = ("study", "domain", "page", "projection", "color", "game", "percentile", "wm_run", "levels_run", "episode")


class ViewState(param.Parameterized):
    """Selections shared by the pages. ``study``/``domain``/``game``/``wm_run`` are free strings because
    their choices depend on the library; each page falls back to its first choice when a link
    names something that no longer exists."""

    study = param.String(default="", doc="study id")
    domain = param.String(default="", doc="domain (dataset id) within the study")
    page = param.Selector(default="geometry", objects=list(PAGES))
    projection = param.Selector(default="tsne", objects=["tsne", "umap"])
    color = param.Selector(default="action", objects=["action", "game"], doc="colour points by")
    game = param.String(default="all", doc="show one game's points, or all")
    percentile = param.Number(default=67.0, bounds=(1.0, 99.0), doc="zero-label neutral percentile")
    wm_run = param.String(default="", doc="seed 002 world-model run id (its own choice, not the study's)")
    levels_run = param.String(default="", doc="`workbench levels` run id (its own choice)")
    episode = param.String(default="", doc="episode of the levels run in the viewer: agent/game/k")


def sync_url(state: ViewState) -> None:
    """Apply the URL query to ``state`` now and mirror ``state`` into the URL from then on.

    Choices the app makes before the page has loaded (e.g. the first study when the link names
    none) are written into the URL once it has.
    """
    location = pn.state.location
    if location is None:
        return
    location.sync(state, {name: name for name in SYNCED}, on_error=lambda values: _apply_valid(state, values))
    pn.state.onload(lambda: location.update_query(
        **{name: state.param[name].serialize(getattr(state, name)) for name in SYNCED}))


def _apply_valid(state: ViewState, values: dict) -> None:
    """Apply the query values one by one, skipping those the state rejects (e.g. ``color=pink``)."""
    for name, value in values.items():
        try:
            setattr(state, name, value)
        except (ValueError, TypeError):
            pass


def choose(value: str, options: list[str]) -> str:
    """``value`` when it is one of ``options``, else the first option ("" when there is none)."""
    return value if value in options else (options[0] if options else "")


def run_picker(state: ViewState, name: str, runs: list[str], label: str) -> pn.widgets.Select:
    """A selector of ``runs`` kept in the URL as ``state.<name>``: it opens on the run the URL
    names (else the first), writes a choice into the URL, and follows a changed URL (the browser
    re-sends its address once loaded), putting the shown run back when the URL names none that exists."""
    setattr(state, name, choose(getattr(state, name), runs))
    pick = pn.widgets.Select(name=label, options=runs, value=getattr(state, name), width=420)
    pick.param.watch(lambda event: setattr(state, name, event.new), "value")

    def follow_url(event) -> None:
        if event.new in runs:
            pick.value = event.new
        else:
            setattr(state, name, pick.value)

    state.param.watch(follow_url, name)
    return pick
