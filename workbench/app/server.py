"""Serving the dashboard: safe by default, authenticated when shared.

* Bound to ``127.0.0.1`` unless told otherwise; any other (non-loopback) address needs
  authentication, or the server refuses to start:

  - OAuth (``--oauth-provider github|google|azure|gitlab|okta|...`` or ``PANEL_OAUTH_PROVIDER``)
    with the client id and secret in ``PANEL_OAUTH_KEY`` / ``PANEL_OAUTH_SECRET`` and a cookie
    secret in ``PANEL_COOKIE_SECRET`` (never on the command line, where ``ps`` shows them);
  - basic auth: ``--basic-auth users.json``, a file of salted password hashes written by
    ``workbench users add NAME --file users.json`` (:mod:`workbench.app.users`), checked at start-up;
    or one shared password for everybody in ``WORKBENCH_PASSWORD`` (never on the command line).

* The browser may open the websocket only from the exact origin ``host:port`` it was served
  from (``--origin`` when a proxy or DNS name fronts it); ``*`` is refused.
* Panel's ``/components/`` route only serves resources of already-imported Panel, Bokeh and
  workbench modules, and only to logged-in users when auth is on (:mod:`workbench.app.auth`).
* One process; Panel handles events on ``threads`` worker threads.
* Nothing is written outside the workbench cache: exports go to ``<cache>/exports``, and the
  font cache of matplotlib and the compiled-function cache of numba (datashader) to
  ``<cache>/matplotlib`` and ``<cache>/numba`` unless ``MPLCONFIGDIR`` / ``NUMBA_CACHE_DIR``
  say otherwise.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from dataclasses import dataclass, field

from ..core.errors import WorkbenchError
from ..core.paths import cache_dir
from .users import SharedPassword, UsersFileLogin

LOOPBACK_NAMES = {"localhost"}
#: The environment variable holding one shared basic-auth password.
PASSWORD_ENV = "WORKBENCH_PASSWORD"


class ServeError(WorkbenchError, ValueError):
    """The server would be unsafe or could not be configured; the message says what to do."""


def is_loopback(address: str) -> bool:
    """True for ``localhost``, ``127.0.0.0/8`` and ``::1``; False for ``0.0.0.0``, ``::`` and the rest."""
    if address in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@dataclass
class ServeConfig:
    """Everything ``pn.serve`` needs, checked by :func:`plan`."""

    address: str
    port: int
    origins: list[str]
    threads: int
    auth: dict = field(default_factory=dict)
    #: who may log in with basic auth: a :class:`UsersFileLogin` or :class:`SharedPassword` (None: none)
    login: UsersFileLogin | SharedPassword | None = None

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}/"


def _free_port(address: str) -> int:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def _auth(basic_auth: str | None, oauth_provider: str | None,
          env) -> tuple[dict, UsersFileLogin | SharedPassword | None]:
    """The ``pn.serve`` auth keywords and the login check (None: OAuth or no auth) from the options
    and the environment; ({}, None) means no auth."""
    if env.get("PANEL_BASIC_AUTH"):
        raise ServeError("workbench serve does not read PANEL_BASIC_AUTH: pass a users file with --basic-auth"
                         " users.json (`workbench users add NAME --file users.json`) or put one shared password in"
                         " WORKBENCH_PASSWORD, and unset PANEL_BASIC_AUTH")
    password = env.get(PASSWORD_ENV)
    oauth_provider = oauth_provider or env.get("PANEL_OAUTH_PROVIDER")
    if sum(map(bool, (basic_auth, password, oauth_provider))) > 1:
        raise ServeError(f"choose one of --basic-auth, {PASSWORD_ENV} and OAuth, not several")
    if oauth_provider:
        missing = [k for k in ("PANEL_OAUTH_KEY", "PANEL_OAUTH_SECRET", "PANEL_COOKIE_SECRET") if not env.get(k)]
        if missing:
            raise ServeError(f"OAuth with {oauth_provider!r} needs {', '.join(missing)} in the environment"
                             " (the OAuth app's client id and secret, and a random cookie secret, e.g."
                             " `python -c 'import secrets; print(secrets.token_hex(32))'`)")
        auth = {"oauth_provider": oauth_provider, "oauth_key": env["PANEL_OAUTH_KEY"],
                "oauth_secret": env["PANEL_OAUTH_SECRET"], "cookie_secret": env["PANEL_COOKIE_SECRET"]}
        optional = {"oauth_redirect_uri": "PANEL_OAUTH_REDIRECT_URI", "oauth_encryption_key": "PANEL_OAUTH_ENCRYPTION"}
        return {**auth, **{key: env[name] for key, name in optional.items() if env.get(name)}}, None
    if not basic_auth and not password:
        return {}, None
    try:
        login = UsersFileLogin(basic_auth) if basic_auth else SharedPassword(password, PASSWORD_ENV)
    except ValueError as exc:  # UsersFileError, or a too short shared password
        raise ServeError(str(exc)) from None
    # Login cookies are signed; a fresh secret per start (logins end on restart) unless one is given.
    return {"cookie_secret": env.get("PANEL_COOKIE_SECRET") or secrets.token_hex(32)}, login


def plan(address: str = "127.0.0.1", port: int = 5006, origin: str | None = None, basic_auth: str | None = None,
         oauth_provider: str | None = None, threads: int = 4, env=None) -> ServeConfig:
    """Check the serving options and resolve them into a :class:`ServeConfig`.

    Raises :class:`ServeError` when a non-loopback address has no authentication, an origin is
    not an exact ``host:port``, or the auth settings are incomplete.
    """
    env = os.environ if env is None else env
    auth, login = _auth(basic_auth, oauth_provider, env)
    if not is_loopback(address) and not auth:
        raise ServeError(
            f"refusing to serve on {address}, which other machines can reach, without authentication. Either keep the"
            " default --address 127.0.0.1 (and use an SSH tunnel), or add auth: --basic-auth users.json (made with"
            f" `workbench users add NAME --file users.json`), one shared password in {PASSWORD_ENV}, or OAuth"
            " (--oauth-provider with PANEL_OAUTH_KEY, PANEL_OAUTH_SECRET and PANEL_COOKIE_SECRET in the environment).")
    if threads < 1:
        raise ServeError(f"threads must be at least 1, got {threads}")
    port = port or _free_port(address)
    if origin is None:
        if _is_unspecified(address):
            raise ServeError(f"--address {address} listens on every interface; pass --origin host:port, the exact"
                             " address browsers will use (e.g. workbench.lab.example:5006)")
        host = f"[{address}]" if ":" in address else address
        origins = [f"{host}:{port}"] + ([f"localhost:{port}"] if address == "127.0.0.1" else [])
    else:
        host, sep, origin_port = origin.rpartition(":")
        if "*" in origin or not sep or not host or not origin_port.isdigit() or "/" in origin:
            raise ServeError(f"--origin must be an exact host:port such as workbench.lab.example:5006, got {origin!r}")
        # Browsers send https://host without its default port, which Bokeh compares as host:80
        # (bokeh.server.util.check_allowlist): allow that form too for a TLS proxy on 443.
        origins = [origin] + ([f"{host}:80"] if origin_port == "443" else [])
    return ServeConfig(address=address, port=port, origins=origins, threads=threads, auth=auth, login=login)


def _is_unspecified(address: str) -> bool:
    """``0.0.0.0`` / ``::``: every interface, which no browser can use as an origin."""
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False


def serve(config: ServeConfig, show: bool = False) -> None:
    """Serve the dashboard until interrupted (blocking)."""
    os.environ.setdefault("MPLCONFIGDIR", str(cache_dir() / "matplotlib"))  # before matplotlib/numba load
    os.environ.setdefault("NUMBA_CACHE_DIR", str(cache_dir() / "numba"))
    import panel as pn

    from . import sources
    from .auth import LoginProvider, component_route_guarded, guard_component_route
    from .main import create_app

    pn.config.nthreads = config.threads
    if "oauth_provider" in config.auth:
        kind = f"OAuth via {config.auth['oauth_provider']}"
    else:
        kind = "basic auth" if config.login else "no auth: this machine only"
    login = {"auth_provider": LoginProvider(config.login)} if config.login else {}
    guard_component_route()
    sources.preload()
    # warm: one session is rendered before the port opens, so imports, compilation and cache fills
    # happen once per server instead of in the first visitors' page views
    server = pn.serve({"/": create_app}, address=config.address, port=config.port, websocket_origin=config.origins,
                      show=show, start=False, title="Latent Action Workbench", num_procs=1, warm=True,
                      **config.auth, **login)
    if not component_route_guarded(server):
        raise ServeError(f"could not guard Panel {pn.__version__}'s /components/ route (see workbench/app/auth.py);"
                         " refusing to serve")
    print(f"Latent Action Workbench dashboard at {config.url} ({kind}); Ctrl+C stops it.", flush=True)
    server.start()
    server.io_loop.start()
