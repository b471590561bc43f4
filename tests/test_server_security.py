"""Serving the dashboard to a team: the users file, the shared password and Panel's component route.

Hostile inputs are built here: mistyped and malformed users files, empty and plain-text passwords,
and a module whose import leaves a marker file, requested through ``/components/`` by anonymous
and logged-in clients of a real ``workbench serve``.
"""

from __future__ import annotations

import http.client
import json
import os
from pathlib import Path
from urllib.parse import urlencode

import pytest
from test_dashboard import _free_port, _start, _stop
from typer.testing import CliRunner

from workbench.app.server import ServeError, plan
from workbench.app.users import (MIN_ITERATIONS, SharedPassword, UsersFileError, UsersFileLogin, add_user,
                                 hash_password, load_users, remove_user, verify_password)
from workbench.cli import app

FAST = MIN_ITERATIONS  # hash rounds for users the tests make (the command uses ITERATIONS)


def _users(path: Path, **passwords: str) -> Path:
    for name, password in passwords.items():
        add_user(path, name, password, iterations=FAST)
    return path


def test_hashes_verify_only_their_password_and_differ_per_salt():
    first, second = hash_password("correct horse", FAST), hash_password("correct horse", FAST)
    assert first != second and first.startswith(f"pbkdf2_sha256${FAST}$")
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("correct horsf", first) and not verify_password("", first)
    with pytest.raises(ValueError, match="at least 8 characters"):
        hash_password("short")


@pytest.mark.parametrize("typo", ["users.jsn", "users"])
def test_a_mistyped_users_file_is_refused_not_taken_as_the_password(tmp_path, monkeypatch, typo):
    _users(tmp_path / "users.json", ana="s3cret-pass")
    monkeypatch.chdir(tmp_path)
    for address in ("127.0.0.1", "10.0.0.5"):
        with pytest.raises(ServeError, match=f"users file .*{typo} does not exist"):
            plan(address=address, basic_auth=typo, env={})


@pytest.mark.parametrize("content, problem", [
    ('{"ana": ', "is not valid JSON"),
    ('["ana", "s3cret-pass"]', "must be a JSON object"),
    ('{"ana": 12345678}', "must be a JSON object"),
    ("{}", "has no users"),
    ('{"ana": ""}', "'ana' has an empty password"),
    ('{"ana": "s3cret-pass"}', "'ana' has a plain-text or malformed password; replace it by a hash with "
                               "`workbench users add ana"),
    ('{"": "%s"}' % hash_password("s3cret-pass", FAST), "user name '' must be non-empty"),
    ('{"ana": "pbkdf2_sha256$1000$00$%s"}' % ("0" * 64), "hash of 1000 rounds"),
])
def test_bad_users_files_stop_the_server_before_it_starts(tmp_path, content, problem):
    users = tmp_path / "users.json"
    users.write_text(content)
    with pytest.raises(ServeError, match=f"users file {users}.*{problem}" if "JSON" not in problem else problem):
        plan(address="10.0.0.5", basic_auth=str(users), env={})


def test_shared_password_only_from_the_environment(tmp_path):
    cfg = plan(address="10.0.0.5", env={"WORKBENCH_PASSWORD": "a-long-shared-secret"})
    assert cfg.login.check("anyone", "a-long-shared-secret") and not cfg.login.check("anyone", "a-long-shared-secreT")
    assert not cfg.login.check("", "a-long-shared-secret")
    with pytest.raises(ServeError, match="WORKBENCH_PASSWORD must have at least 8"):
        plan(address="10.0.0.5", env={"WORKBENCH_PASSWORD": "short"})
    with pytest.raises(ServeError, match="does not read PANEL_BASIC_AUTH"):
        plan(address="10.0.0.5", env={"PANEL_BASIC_AUTH": "s3cret-pass"})
    users = _users(tmp_path / "users.json", ana="s3cret-pass")
    with pytest.raises(ServeError, match="not several"):
        plan(address="10.0.0.5", basic_auth=str(users), env={"WORKBENCH_PASSWORD": "a-long-shared-secret"})


def test_users_file_login_checks_hashes_and_follows_edits(tmp_path, caplog):
    users = _users(tmp_path / "users.json", ana="s3cret-pass", bo="other-pass")
    login = UsersFileLogin(users)
    assert login.check("ana", "s3cret-pass") and login.check("bo", "other-pass")
    assert not login.check("ana", "other-pass") and not login.check("nobody", "s3cret-pass")
    assert not login.check("ana", "")
    remove_user(users, "bo")
    _users(users, cy="third-pass")
    assert not login.check("bo", "other-pass") and login.check("cy", "third-pass")
    users.write_text('{"ana": "s3cret-pass"}')  # broken by hand while serving: nobody gets in
    assert not login.check("ana", "s3cret-pass") and "refusing logins" in caplog.text
    assert isinstance(SharedPassword("a-long-shared-secret", "X"), SharedPassword)


def test_users_command_stores_only_a_hash_atomically(tmp_path):
    users = tmp_path / "team" / "users.json"
    runner = CliRunner()
    result = runner.invoke(app, ["users", "add", "ana", "--file", str(users)], input="s3cret-pass\ns3cret-pass\n")
    assert result.exit_code == 0, result.output
    assert "added ana" in result.output and "s3cret-pass" not in users.read_text()
    assert verify_password("s3cret-pass", load_users(users)["ana"]) and users.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in users.parent.iterdir()] == ["users.json"]  # no temporary left behind
    result = runner.invoke(app, ["users", "add", "bad name", "--file", str(users)], input="s3cret-pass\ns3cret-pass\n")
    assert result.exit_code == 2 and "without spaces" in result.output
    result = runner.invoke(app, ["users", "add", "bo", "--file", str(users)], input="short\nshort\n")
    assert result.exit_code == 2 and "at least 8 characters" in result.output and "bo" not in load_users(users)
    users.write_text('{"ana": "s3cret-pass", "bo": "plain-pass"}')  # Panel's plain-text format, converted per user
    for name in ("ana", "bo"):
        assert runner.invoke(app, ["users", "add", name, "--file", str(users)],
                             input="new-pass-1\nnew-pass-1\n").exit_code == 0
    assert set(load_users(users)) == {"ana", "bo"}
    users.write_text('{"ana": ')
    result = runner.invoke(app, ["users", "add", "cy", "--file", str(users)], input="s3cret-pass\ns3cret-pass\n")
    assert result.exit_code == 2 and "not valid JSON" in result.output and users.read_text() == '{"ana": '
    with pytest.raises(UsersFileError, match="no user 'zed'"):
        remove_user(_users(tmp_path / "u2.json", ana="s3cret-pass"), "zed")


def test_cli_refuses_bad_users_file_with_one_line(tmp_path):
    users = tmp_path / "users.json"
    users.write_text('{"ana": ""}')
    result = CliRunner().invoke(app, ["serve", "--address", "10.0.0.5", "--basic-auth", str(users)])
    assert result.exit_code == 2 and "'ana' has an empty password" in result.output
    assert len(result.output.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- a real server


MARKER_MODULE = "wb_import_marker"


@pytest.fixture
def marker(tmp_path):
    """A module on the server's path that leaves ``imported.txt`` when imported; (folder, marker file)."""
    folder = tmp_path / "site"
    folder.mkdir()
    flag = tmp_path / "imported.txt"
    (folder / f"{MARKER_MODULE}.py").write_text(
        f"from pathlib import Path\nPath({str(flag)!r}).write_text('imported')\n"
        "class Widget:\n    __css__ = ['x.css']\n")
    (folder / "x.css").write_text("body {}")
    return folder, flag


def _serve_env(tmp_path: Path, site: Path) -> dict:
    root = tmp_path / "served"
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
            **{f"WORKBENCH_{name.upper()}": str(root / name) for name in ("cache", "models", "studies", "catalog")}}


def _get(conn, path: str, cookies: str = "") -> http.client.HTTPResponse:
    conn.request("GET", path, headers={"Cookie": cookies} if cookies else {})
    response = conn.getresponse()
    response.read()
    return response


def _login(conn, name: str, password: str) -> str:
    """The cookies a login sets ("" when it fails)."""
    conn.request("POST", "/login", body=urlencode({"username": name, "password": password}),
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    cookies = "; ".join(c.split(";")[0] for c in response.headers.get_all("Set-Cookie") or [])
    return cookies if "user=" in cookies else ""


COMPONENT_URLS = [f"/components/{MARKER_MODULE}/Widget/__css__/x.css", "/components/antigravity/x/__css__/x.css",
                  "/components/this/x/__css__/x.css"]


@pytest.mark.slow
def test_logins_and_component_route_of_a_team_server(tmp_path, marker):
    site, flag = marker
    users = _users(tmp_path / "users.json", ana="s3cret-pass")
    address, log = "127.0.0.2", tmp_path / "serve.log"
    port = _free_port(address)
    proc = _start(["--address", address, "--port", str(port), "--basic-auth", str(users)], _serve_env(tmp_path, site),
                  log, address, port)
    try:
        conn = http.client.HTTPConnection(address, port, timeout=60)
        assert _get(conn, "/").status in (302, 401, 403)
        for url in COMPONENT_URLS:  # anonymous: refused before anything is imported
            assert _get(conn, url).status in (302, 401, 403, 404)
        assert not flag.exists()
        assert not _login(conn, "ana", "wrong-pass") and not _login(conn, "ana", "")
        assert not _login(conn, "", "") and not _login(conn, "nobody", "s3cret-pass")
        cookies = _login(conn, "ana", "s3cret-pass")
        assert cookies
        response = _get(conn, "/", cookies)
        assert response.status == 200
        for url in COMPONENT_URLS:  # logged in: still only Panel's, Bokeh's and the workbench's own modules
            assert _get(conn, url, cookies).status == 404
        assert not flag.exists() and "Beautiful is better" not in log.read_text()  # `import this` prints
        _users(users, bo="other-pass")  # added while serving
        assert _login(conn, "bo", "other-pass")
    finally:
        _stop(proc)
    assert "basic auth" in log.read_text()


@pytest.mark.slow
def test_a_local_server_never_imports_modules_named_in_urls(tmp_path, marker):
    site, flag = marker
    port = _free_port()
    proc = _start(["--port", str(port)], _serve_env(tmp_path, site), tmp_path / "serve.log", "127.0.0.1", port)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for url in COMPONENT_URLS:
            assert _get(conn, url).status == 404
        assert _get(conn, "/").status == 200
    finally:
        _stop(proc)
    assert not flag.exists()


def test_users_file_written_by_the_command_serves(tmp_path):
    users = _users(tmp_path / "users.json", ana="s3cret-pass")
    cfg = plan(address="0.0.0.0", origin="lab.example:443", basic_auth=str(users), env={})
    assert cfg.login.check("ana", "s3cret-pass") and cfg.auth["cookie_secret"] and json.loads(users.read_text())
