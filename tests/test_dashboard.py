"""The Panel dashboard in a real headless browser, against a real tiny study, and its serving rules.

A session fixture runs the seed 000 study on the tiny racing recordings and a tiny seed 002
world-model run on the first-person recordings, and serves them with ``workbench serve`` in a
subprocess (its own cache/models/studies environment); Playwright drives Debian's Chromium.
Screenshots land in ``test-artifacts/dashboard/``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from workbench.analysis.selection import points_in_region
from workbench.app import sources
from workbench.app.exports import export_selection, list_selections, load_selection
from workbench.app.results import PAGE_RESULTS
from workbench.app.server import ServeError, plan
from workbench.app.state import ViewState
from workbench.app.users import MIN_ITERATIONS, add_user
from workbench.app.worldmodels import worldmodels_page
from workbench.cli import app
from workbench.methods.idm.report import STUDY

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts" / "dashboard"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                    reason=f"no Chromium at {CHROMIUM} (`make test` installs Debian's chromium)")
#: A cheap hash of a canvas' pixels, evaluated in the page.
CANVAS_HASH = """c => { const d = c.toDataURL(); let h = 0;
  for (let i = 0; i < d.length; i += 61) h = (h * 31 + d.charCodeAt(i)) | 0; return h + ':' + d.length; }"""


# ----------------------------------------------------------------------------- serving rules (no browser)


def test_plan_binds_loopback_with_exact_origins():
    cfg = plan(port=5123, env={})
    assert cfg.address == "127.0.0.1" and cfg.auth == {}
    assert cfg.origins == ["127.0.0.1:5123", "localhost:5123"] and cfg.url == "http://127.0.0.1:5123/"
    assert plan(port=0, env={}).port > 0


@pytest.mark.parametrize("address", ["0.0.0.0", "192.168.1.20", "::", "workbench.lab.example"])
def test_exposing_without_auth_is_refused(address):
    with pytest.raises(ServeError, match="without authentication"):
        plan(address=address, env={})


def test_exposed_servers_need_exact_origins_and_complete_auth(tmp_path):
    users = tmp_path / "users.json"
    add_user(users, "ana", "s3cret-pass", iterations=MIN_ITERATIONS)
    cfg = plan(address="10.0.0.5", port=6000, basic_auth=str(users), env={})
    assert cfg.origins == ["10.0.0.5:6000"] and cfg.login.path == users.resolve() and cfg.auth["cookie_secret"]
    with pytest.raises(ServeError, match="--origin"):
        plan(address="0.0.0.0", basic_auth=str(users), env={})
    behind_proxy = plan(address="0.0.0.0", origin="lab.example:443", basic_auth=str(users), env={})
    assert behind_proxy.origins == ["lab.example:443", "lab.example:80"]  # https://lab.example, as Bokeh reads it
    from bokeh.server.util import check_allowlist
    assert check_allowlist("lab.example", behind_proxy.origins)  # the Origin header of https://lab.example/
    for bad in ("*", "*:5006", "lab.example", "http://lab.example:5006/x"):
        with pytest.raises(ServeError, match="exact host:port"):
            plan(address="0.0.0.0", origin=bad, basic_auth=str(users), env={})
    with pytest.raises(ServeError, match="does not exist"):
        plan(address="10.0.0.5", basic_auth=str(tmp_path / "missing.json"), env={})
    with pytest.raises(ServeError, match="PANEL_OAUTH_SECRET, PANEL_COOKIE_SECRET"):
        plan(address="10.0.0.5", oauth_provider="github", env={"PANEL_OAUTH_KEY": "id"})
    env = {"PANEL_OAUTH_KEY": "id", "PANEL_OAUTH_SECRET": "secret", "PANEL_COOKIE_SECRET": "c" * 64}
    cfg = plan(address="10.0.0.5", oauth_provider="github", env=env)
    assert cfg.auth["oauth_provider"] == "github" and cfg.auth["oauth_secret"] == "secret"
    assert plan(address="10.0.0.5", env={**env, "PANEL_OAUTH_PROVIDER": "gitlab"}).auth["oauth_provider"] == "gitlab"


def test_cli_refuses_to_expose_without_auth():
    result = CliRunner().invoke(app, ["serve", "--address", "0.0.0.0", "--port", "5999"])
    assert result.exit_code == 2
    assert "refusing to serve on 0.0.0.0" in result.output and "--basic-auth" in result.output


def test_selection_geometry_and_exports_round_trip():
    xy = np.array([[0, 0], [1, 1], [2, 2], [5, 0]], float)
    assert points_in_region(xy, bounds=(0.5, 0.5, 2, 2)).tolist() == [1, 2]
    assert points_in_region(xy, bounds=(2, 2, 0.5, 0.5)).tolist() == [1, 2]  # drag direction does not matter
    band = np.array([[-1, -0.5], [6, -0.5], [6, 0.5], [-1, 0.5]])
    assert points_in_region(xy, polygon=band).tolist() == [0, 3]
    assert points_in_region(xy).tolist() == []
    table = pd.DataFrame({"frame": [3, 9], "game": ["Enduro", "CarRacing"], "steer": ["LEFT", "NEUTRAL"]})
    path = export_selection(table, "turns")
    assert path.parent.name == "exports" and list_selections() == ["turns"]
    pd.testing.assert_frame_equal(load_selection("turns"), table)
    with pytest.raises(ValueError, match="selection name"):
        export_selection(table, "../outside")
    with pytest.raises(FileNotFoundError, match="exported: turns"):
        load_selection("nope")


def test_large_projections_are_datashaded_with_hover_and_selection_tools():
    import holoviews as hv
    from bokeh.models import BoxSelectTool, HoverTool, LassoSelectTool

    from workbench.viz.plots import DATASHADE_ABOVE, embedding_view

    n = DATASHADE_ABOVE + 5000
    rng = np.random.default_rng(0)
    fig = embedding_view(rng.normal(size=(n, 2)), rng.choice(["LEFT", "NEUTRAL", "RIGHT"], n),
                         rng.choice(["Enduro", "CarRacing"], n), color_by="game", hover={"source_frame": np.arange(n)})
    assert isinstance(fig, hv.DynamicMap)
    plot = hv.render(fig, backend="bokeh")
    tools = {type(t) for t in plot.tools}
    assert {HoverTool, BoxSelectTool, LassoSelectTool} <= tools
    small = embedding_view(rng.normal(size=(50, 2)), ["LEFT"] * 50, ["Enduro"] * 50)
    assert isinstance(small, hv.Overlay)


# ----------------------------------------------------------------------------- a real study, served


def _free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def _start(args: list[str], env: dict, log: Path, address: str, port: int) -> subprocess.Popen:
    """``workbench serve`` in a subprocess; returns once it accepts connections."""
    proc = subprocess.Popen([sys.executable, "-m", "workbench", "serve", *args], cwd=REPO, env=env,
                            stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"workbench serve exited {proc.returncode}:\n{log.read_text()}")
        try:
            socket.create_connection((address, port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"workbench serve did not listen on {address}:{port}:\n{log.read_text()}")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def study_env(tmp_path_factory):
    """Environment of a cache, model library and studies folder holding the tiny racing study and a
    tiny world-model run."""
    root = tmp_path_factory.mktemp("dashboard")
    env = {"WORKBENCH_CACHE": str(root / "cache"), "WORKBENCH_MODELS": str(root / "models"),
           "WORKBENCH_STUDIES": str(root / "studies"), "WORKBENCH_CATALOG": str(root / "catalog")}
    code = ("from workbench.methods.idm.study import StudyConfig, run_study\n"
            "from workbench.methods.worldmodel.study import WorldModelStudyConfig, run_worldmodel_study\n"
            "run_study(StudyConfig(size='tiny', domains=['racing'], steps=8, pairwise=False), progress=False)\n"
            "run_worldmodel_study(WorldModelStudyConfig(size='tiny'), progress=False)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return {**os.environ, **env}


@pytest.fixture(scope="session")
def server(study_env, tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("serve-log") / "serve.log"
    proc = _start(["--port", str(port)], study_env, log, "127.0.0.1", port)
    yield f"http://127.0.0.1:{port}/"
    _stop(proc)


def _open(tab, server: str, **query):
    """Load the dashboard with a URL query and wait until it has drawn a plot and synced the URL."""
    tab.goto(server + ("?" + urlencode(query) if query else ""))
    tab.locator(".bk-Canvas canvas").first.wait_for()
    tab.wait_for_function("() => window.location.search.includes('study=')")


def _slide_to(page, name: str, value: int, timeout: float = 60) -> None:
    """Move the first slider titled ``name`` to ``value`` with the keyboard.

    Each key press is checked against the slider's title rather than counted: on a loaded
    machine a press can land before the handle has focus and be lost.
    """
    title = page.get_by_text(re.compile(rf"^{name}: \d+$")).first
    handle = page.locator(".noUi-handle").first
    handle.click()
    deadline = time.monotonic() + timeout
    while (now := int(title.inner_text().split(":")[1])) != value and time.monotonic() < deadline:
        handle.press("ArrowRight" if now < value else "ArrowLeft")
        time.sleep(0.2)
    assert now == value, f"the {name} slider stayed at {now}, not {value}"


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _canvas(page, scope: str = ".bk-Canvas") -> str:
    return page.locator(f"{scope} canvas").first.evaluate(CANVAS_HASH)


def _wait_changed(page, before: str, scope: str = ".bk-Canvas", timeout: float = 30.0) -> str:
    """Wait until the first canvas in ``scope`` shows something else than ``before``; its new hash."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            now = _canvas(page, scope)
        except Exception:  # the figure is being replaced
            now = before
        if now != before:
            return now
        time.sleep(0.1)
    raise AssertionError("the plot did not redraw")


def _data_url(name: str, data: bytes) -> str:
    """The ``src`` Panel gives a PNG or GIF pane of a saved picture."""
    return f"data:image/{name.rsplit('.', 1)[-1]};base64,{base64.b64encode(data).decode()}"


def _query(page) -> dict:
    return dict(re.findall(r"[?&]([^=&]+)=([^&]*)", page.url))


@pytest.mark.slow
@needs_chromium
def test_geometry_widgets_box_selection_thumbnails_and_export(page, server, study_env, monkeypatch):
    _open(page, server, page="geometry")
    _shot(page, "geometry")
    before = _canvas(page)
    page.locator(".bk-btn", has_text="umap").click()
    before = _wait_changed(page, before)
    page.locator(".bk-btn", has_text=re.compile("^game$")).click()
    before = _wait_changed(page, before)
    page.locator(".bk-input-group", has_text="game").locator("select").select_option("Enduro")
    before = _wait_changed(page, before)
    page.wait_for_function("() => window.location.search.includes('game=Enduro')")
    assert {"projection": "umap", "color": "game", "game": "Enduro"}.items() <= _query(page).items()
    page.locator(".bk-input-group", has_text="game").locator("select").select_option("all")
    _wait_changed(page, before)

    page.locator(".bk-tool-icon-box-select").first.click()
    box = page.locator(".bk-Canvas").first.bounding_box()
    page.mouse.move(box["x"] + 0.03 * box["width"], box["y"] + 0.08 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.62 * box["width"], box["y"] + 0.95 * box["height"], steps=8)
    page.mouse.up()
    summary = page.get_by_text("frames selected")
    summary.wait_for()
    n = int(re.search(r"(\d+) frames selected", summary.inner_text()).group(1))
    assert n > 0
    thumbnails = page.locator(".wb-thumbnail img")
    expect_count = min(n, 12)
    deadline = time.monotonic() + 30
    while thumbnails.count() < expect_count and time.monotonic() < deadline:
        time.sleep(0.1)
    assert thumbnails.count() == expect_count
    assert thumbnails.first.evaluate("img => img.naturalWidth") > 0  # a real PNG, rendered on the server
    page.locator("table", has_text="episode").wait_for()  # the selected frames' labels
    _shot(page, "geometry-selection")

    name = page.locator(".bk-input-group", has_text="selection name").locator("input")
    name.fill("pytest-selection")
    name.press("Enter")
    page.locator(".bk-btn", has_text="Export selection").click()
    page.get_by_text("load_selection('pytest-selection')").first.wait_for()
    monkeypatch.setenv("WORKBENCH_CACHE", study_env["WORKBENCH_CACHE"])
    selection = load_selection("pytest-selection")
    assert len(selection) == n and set(selection.game) <= {"Enduro", "CarRacing"}
    assert {"frame", "steer", "accel", "store", "projection", "x", "y"} <= set(selection.columns)
    assert set(selection.steer) <= {"LEFT", "NEUTRAL", "RIGHT"}


@pytest.mark.slow
@needs_chromium
def test_calibration_slider_recomputes_and_deep_link_restores_view(page, server):
    _open(page, server, page="calibration", percentile=40)
    thresholds = page.get_by_text("Flow thresholds at p40")
    thresholds.wait_for()
    at_40 = thresholds.inner_text()
    handle = page.locator(".noUi-handle").first
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 230, box["y"] + box["height"] / 2, steps=6)
    page.mouse.up()
    page.wait_for_function("() => !window.location.search.includes('percentile=40')")
    percentile = float(_query(page)["percentile"])
    assert percentile > 60
    moved = page.get_by_text(f"Flow thresholds at p{percentile:g}")
    moved.wait_for()  # recomputed on the server from the joint model's embeddings
    assert moved.inner_text().split(":", 1)[1] != at_40.split(":", 1)[1]
    _shot(page, "calibration")

    # the URL now reproduces the view: a fresh visit lands on the same page and percentile
    page.goto(page.url)
    page.get_by_text(f"Flow thresholds at p{percentile:g}").wait_for()
    assert page.locator(".bk-tab.bk-active").inner_text().strip() == "Calibration"


@pytest.mark.slow
@needs_chromium
def test_accuracy_catalog_and_library_pages(page, server, study_env):
    _open(page, server, page="accuracy")
    page.get_by_text("Balanced accuracy on held-out test frames").wait_for()
    assert page.locator(".bk-Canvas").count() >= 2  # accuracy bars and the KNN heatmap
    assert "joint-helps-small-game" in page.locator("table").first.inner_text()  # the claims ledger on top
    assert "joint_v3" in page.locator("table").nth(2).inner_text()
    _shot(page, "accuracy")

    page.locator(".bk-tab", has_text="Catalog").click()
    page.locator(".bk-input-group", has_text="dataset").locator("select").select_option("racing")
    page.get_by_text("racing/tiny-seed0-mask").first.wait_for()  # the materialised racing variant
    labels = page.locator(".wb-frame-labels div").first
    labels.wait_for()
    before_labels, before = labels.inner_text(), _canvas(page, ".wb-frame-flow")
    _slide_to(page, "frame", 5)
    deadline = time.monotonic() + 30
    while labels.inner_text() == before_labels and time.monotonic() < deadline:
        time.sleep(0.1)
    assert labels.inner_text() != before_labels  # another frame's labels and flow
    _wait_changed(page, before, ".wb-frame-flow")
    time.sleep(1)  # let the last key press's frame arrive before the screenshot
    _shot(page, "catalog")

    page.locator(".bk-tab", has_text="Studies & models").click()
    (record,) = [r for p in Path(study_env["WORKBENCH_STUDIES"]).glob("*/study.json")
                 if (r := json.loads(p.read_text()))["paper"] == "seed000"]
    page.locator("table", has_text=record["domains"]["racing"]["models"]["joint_v3"]).wait_for()  # the model library
    assert record["config"]["study_id"] in page.locator("table").first.inner_text()  # the studies
    assert "world models (seed 002)" in page.locator("table").first.inner_text()
    page.locator("table", has_text="LatentActionWorldModel").wait_for()  # world-model cards have no accuracy
    _shot(page, "library")


def test_every_seed000_result_is_on_one_study_page():
    shown = [name for names in PAGE_RESULTS.values() for name in names]
    assert sorted(shown) == sorted(r.name for r in STUDY.results)


def _plain(caption: str) -> str:
    """The caption's opening words up to its first Markdown markup (as the browser shows them)."""
    return re.split(r"[`*(]", caption)[0].strip()[:70]


@pytest.mark.slow
@needs_chromium
@pytest.mark.parametrize("tab", ["calibration", "geometry"])
def test_study_pages_open_with_ledger_and_headline_and_show_registry_captions(page, server, tab):
    _open(page, server, page=tab)
    page.get_by_text("Headline numbers").wait_for()
    page.get_by_text("Claims ledger").first.wait_for()
    assert "joint-helps-small-game" in page.locator("table").first.inner_text()  # the ledger opens the page
    for name in PAGE_RESULTS[tab]:
        result = STUDY.result(name)
        page.get_by_text(result.title, exact=True).first.wait_for()
        page.get_by_text(_plain(result.caption)).first.wait_for()
    _shot(page, f"{tab}-registry")


def test_world_models_page_without_runs_says_how_to_make_one():
    assert "workbench worldmodel study" in worldmodels_page(ViewState()).object


@pytest.mark.slow
@needs_chromium
def test_world_models_page_tables_pictures_and_deep_link(page, server, study_env, monkeypatch):
    monkeypatch.setenv("WORKBENCH_STUDIES", study_env["WORKBENCH_STUDIES"])
    (run,) = sources.list_wm_runs()
    _open(page, server, page="worldmodels", wm_run="no-such-run")  # a stale link falls back to a run
    page.wait_for_function(f"() => window.location.search.includes('wm_run={run}')")
    page.get_by_text("Headline numbers").wait_for()
    for heading in ("Capacity (§5)", "Future leakage (Table 1)", "cycle consistency (Table 2)",
                    "Tables S1/S2, left", "Table S1, right", "Table S2, right", "Out of domain", "Model health",
                    "Probes on latent actions"):
        page.get_by_text(heading).first.wait_for()
    assert page.locator("table").count() == 11  # the ledger, the report's ten tables (the out-of-domain arm's two)
    assert "leakage-above-1" in page.locator("table").first.inner_text()  # the claims ledger on top
    assert "noisy-beta0.0001" in page.locator("table", has_text="ratio (pixels)").inner_text()  # Table 1 (tiny's Mid)
    assert "controller:xattn" in page.locator("table", has_text="Δ forward").inner_text()  # planning
    assert page.locator(".bk-Canvas").count() >= 2  # the capacity curve and the latent samples
    assert page.locator(".wb-strength img").count() == 1  # Figure 4
    _shot(page, "worldmodels")

    for kind, label in (("filmstrips", "filmstrips of model"), ("planning", "planning rollouts of model")):
        # the page promises each model's own saved files, whatever an untrained model drew in them
        groups = sources.wm_pictures(run, kind)
        models = list(groups)
        shown = page.locator(f".wb-{kind} img")
        shown.first.wait_for()
        assert shown.first.evaluate("img => img.naturalWidth") > 0  # a saved PNG, sent from the server
        for model in (models[0], models[-1]):  # the first model as the page opens, then another one chosen
            page.locator(".bk-input-group", has_text=label).locator("select").select_option(model)
            deadline = time.monotonic() + 30
            while shown.evaluate_all("imgs => imgs.map(i => i.alt)") != list(groups[model]):
                assert time.monotonic() < deadline, f"{kind} of {model} not shown"
                time.sleep(0.1)
            assert shown.evaluate_all("imgs => imgs.map(i => i.src)") == [
                _data_url(name, sources.wm_picture(run, kind, name)) for name in groups[model]]
    shown.first.scroll_into_view_if_needed()
    _shot(page, "worldmodels-pictures")
    assert page.locator(".wb-filmstrips img").nth(1).get_attribute("src").startswith("data:image/gif")
    with pytest.raises(FileNotFoundError, match="no filmstrips picture"):
        sources.wm_picture(run, "filmstrips", "../worldmodels.json")
    with pytest.raises(ValueError, match="invalid study id"):
        sources.result_parts("../elsewhere", "", "capacity")


@pytest.mark.slow
def test_exposed_server_without_auth_does_not_start(study_env):
    port = _free_port()
    done = subprocess.run([sys.executable, "-m", "workbench", "serve", "--address", "0.0.0.0", "--port", str(port)],
                          cwd=REPO, env=study_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "without authentication" in done.stderr
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
