"""What ``workbench serve`` puts in front of Panel: its own login check and a guarded component route.

* :class:`LoginProvider` is Panel's basic-auth login page checking the workbench's credentials
  (hashed users file or shared password, :mod:`workbench.app.users`) instead of Panel's
  plain-text comparison; the hash runs off the event loop so a login does not stall other visitors.
* :class:`GuardedComponentResourceHandler` replaces Panel's ``/components/<module>/…`` route.
"""

from __future__ import annotations

import sys

from panel.auth import BasicAuthProvider, BasicLoginHandler
from panel.io import server as panel_server
from tornado.ioloop import IOLoop
from tornado.web import HTTPError

#: Top-level packages whose components may serve resources through ``/components/``.
COMPONENT_PACKAGES = ("panel", "bokeh", "workbench")


class _LoginHandler(BasicLoginHandler):
    """Panel's login form and cookie handling; the password check is the server's ``credentials``."""

    credentials = None  # set on the per-server subclass made by LoginProvider

    async def post(self):
        name, password = self.get_argument("username", ""), self.get_argument("password", "")
        self._verdict = await IOLoop.current().run_in_executor(None, self.credentials.check, name, password)
        super().post()

    def _validate(self, username, password) -> bool:
        return self._verdict


class LoginProvider(BasicAuthProvider):
    """Panel's basic-auth provider (login and logout pages, signed ``user`` cookie) with ``credentials``
    (anything with ``check(name, password) -> bool``) deciding who logs in."""

    def __init__(self, credentials):
        self._credentials, self._handler = credentials, None
        super().__init__()  # validates, reading login_handler

    @property
    def login_handler(self):
        if self._handler is None:
            self._handler = type("WorkbenchLoginHandler", (_LoginHandler,), {
                "credentials": self._credentials, "_login_endpoint": self._login_endpoint,
                "_login_template": self._login_template})
        return self._handler


# Panel 1.9.4 (and earlier 1.x): ComponentResourceHandler.parse_url_path runs
# importlib.import_module(<module from the URL>) for any request, before and without any auth check,
# so an anonymous GET /components/<any installed module>/... imports that module (running its import
# side effects). Upstream should check the user and an allow-list before importing. Until then this
# subclass requires a logged-in user when auth is on (as Panel's AuthenticatedStaticFileHandler
# does) and only looks up already-imported modules of COMPONENT_PACKAGES, so a URL never imports.
class GuardedComponentResourceHandler(panel_server.ComponentResourceHandler,
                                      panel_server.AuthenticatedStaticFileHandler):
    """Panel's component resources, only of already-imported Panel/Bokeh/workbench modules, only
    for logged-in users when the server has auth."""

    def parse_url_path(self, path: str) -> str:
        module = path.split("/", 1)[0]
        if module.split(".")[0] not in COMPONENT_PACKAGES or module not in sys.modules:
            raise HTTPError(404, "Component not found")
        return super().parse_url_path(path)


def guard_component_route() -> None:
    """Make Panel's server use :class:`GuardedComponentResourceHandler` for ``/components/``
    (call before ``pn.serve``; :func:`component_route_guarded` checks that it did)."""
    panel_server.ComponentResourceHandler = GuardedComponentResourceHandler


def component_route_guarded(server) -> bool:
    """True when every ``/components/`` route of a started-or-not Panel ``server`` is guarded."""
    rules = [rule for rule in server._tornado.wildcard_router.rules
             if "components" in getattr(getattr(rule.matcher, "regex", None), "pattern", "")]
    return bool(rules) and all(rule.target is GuardedComponentResourceHandler for rule in rules)
