"""Serving the dashboard: safe by default, authenticated when shared.

* Bound to ``127.0.0.1`` unless told otherwise; any other (non-loopback) address needs
  authentication, or the server refuses to start:

  - OAuth (``--oauth-provider github|google|azure|gitlab|okta|...`` or ``PANEL_OAUTH_PROVIDER``)
    with the client id and secret in ``PANEL_OAUTH_KEY`` / ``PANEL_OAUTH_SECRET`` and a cookie
    secret in ``PANEL_COOKIE_SECRET`` (never on the command line, where ``ps`` shows them);
  - basic auth for a trusted network: ``--basic-auth users.json`` (``{"user": "password"}``,
    Panel's format) or ``PANEL_BASIC_AUTH`` (a shared password or such a file).

* The browser may open the websocket only from the exact origin ``host:port`` it was served
  from (``--origin`` when a proxy or DNS name fronts it); ``*`` is refused.
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
from pathlib import Path

from ..paths import cache_dir

LOOPBACK_NAMES = {"localhost"}


class ServeError(ValueError):
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

    @property
    def url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"http://{host}:{self.port}/"


def _free_port(address: str) -> int:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def _auth(basic_auth: str | None, oauth_provider: str | None, env) -> dict:
    """The ``pn.serve`` auth keywords from the options and the environment ({} = no auth)."""
    basic_auth = basic_auth or env.get("PANEL_BASIC_AUTH")
    oauth_provider = oauth_provider or env.get("PANEL_OAUTH_PROVIDER")
    if basic_auth and oauth_provider:
        raise ServeError("choose one of basic auth and OAuth, not both")
    if oauth_provider:
        missing = [k for k in ("PANEL_OAUTH_KEY", "PANEL_OAUTH_SECRET", "PANEL_COOKIE_SECRET") if not env.get(k)]
        if missing:
            raise ServeError(f"OAuth with {oauth_provider!r} needs {', '.join(missing)} in the environment"
                             " (the OAuth app's client id and secret, and a random cookie secret, e.g."
                             " `python -c 'import secrets; print(secrets.token_hex(32))'`)")
        auth = {"oauth_provider": oauth_provider, "oauth_key": env["PANEL_OAUTH_KEY"],
                "oauth_secret": env["PANEL_OAUTH_SECRET"], "cookie_secret": env["PANEL_COOKIE_SECRET"]}
        optional = {"oauth_redirect_uri": "PANEL_OAUTH_REDIRECT_URI", "oauth_encryption_key": "PANEL_OAUTH_ENCRYPTION"}
        return {**auth, **{key: env[name] for key, name in optional.items() if env.get(name)}}
    if basic_auth:
        looks_like_file = basic_auth.endswith(".json") or os.sep in basic_auth
        if looks_like_file and not Path(basic_auth).is_file():
            raise ServeError(f"basic auth file {basic_auth} does not exist (expected JSON: {{\"user\": \"password\"}})")
        # Login cookies are signed; a fresh secret per start (logins end on restart) unless one is given.
        return {"basic_auth": str(Path(basic_auth).resolve()) if looks_like_file else basic_auth,
                "cookie_secret": env.get("PANEL_COOKIE_SECRET") or secrets.token_hex(32)}
    return {}


def plan(address: str = "127.0.0.1", port: int = 5006, origin: str | None = None, basic_auth: str | None = None,
         oauth_provider: str | None = None, threads: int = 4, env=None) -> ServeConfig:
    """Check the serving options and resolve them into a :class:`ServeConfig`.

    Raises :class:`ServeError` when a non-loopback address has no authentication, an origin is
    not an exact ``host:port``, or the auth settings are incomplete.
    """
    env = os.environ if env is None else env
    auth = _auth(basic_auth, oauth_provider, env)
    if not is_loopback(address) and not auth:
        raise ServeError(
            f"refusing to serve on {address}, which other machines can reach, without authentication. Either keep the"
            " default --address 127.0.0.1 (and use an SSH tunnel), or add auth: --basic-auth users.json (a trusted"
            " network) or OAuth (--oauth-provider with PANEL_OAUTH_KEY, PANEL_OAUTH_SECRET and PANEL_COOKIE_SECRET"
            " in the environment).")
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
        origins = [origin]
    return ServeConfig(address=address, port=port, origins=origins, threads=threads, auth=auth)


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

    from .main import create_app

    pn.config.nthreads = config.threads
    if "oauth_provider" in config.auth:
        kind = f"OAuth via {config.auth['oauth_provider']}"
    else:
        kind = "basic auth" if config.auth else "no auth: this machine only"
    print(f"Latent Action Workbench dashboard at {config.url} ({kind}); Ctrl+C stops it.", flush=True)
    pn.serve({"/": create_app}, address=config.address, port=config.port, websocket_origin=config.origins,
             show=show, start=True, title="Latent Action Workbench", num_procs=1, **config.auth)
