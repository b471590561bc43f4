"""The dashboard's Levels & agents page in headless Chromium (Playwright), against a tiny levels run
served by `workbench serve` in a subprocess (helpers and the browser from test_dashboard)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from test_dashboard import REPO, _free_port, _query, _shot, _start, _stop, needs_chromium
from workbench.app.levels import episode_pictures, levels_page
from workbench.app.state import ViewState


def test_levels_page_without_runs_says_how_to_make_one():
    assert "workbench levels" in levels_page(ViewState()).object


@pytest.fixture(scope="module")
def levels_server(tmp_path_factory):
    """A tiny levels run (random and scripted, two ViZDoom scenarios, two short episodes each), served."""
    root = tmp_path_factory.mktemp("levels-dashboard")
    env = {**os.environ, "WORKBENCH_CACHE": str(root / "cache"), "WORKBENCH_MODELS": str(root / "models"),
           "WORKBENCH_STUDIES": str(root / "studies"), "WORKBENCH_CATALOG": str(root / "catalog")}
    code = ("from workbench.play.levels import LevelsConfig, run_levels\n"
            "run_levels(LevelsConfig(games={'take_cover': 10, 'my_way_home': 8}, episodes=2, run_id='levels-tiny'),"
            " progress=False)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    port = _free_port()
    proc = _start(["--port", str(port)], env, root / "serve.log", "127.0.0.1", port)
    yield f"http://127.0.0.1:{port}/", env
    _stop(proc)


@pytest.mark.slow
@needs_chromium
def test_levels_page_tables_curves_maps_and_episode_viewer(page, levels_server, monkeypatch):  # noqa: F811
    server, env = levels_server
    monkeypatch.setenv("WORKBENCH_STUDIES", env["WORKBENCH_STUDIES"])
    page.goto(server + "?page=levels&levels_run=no-such-run")  # a stale link falls back to the run
    page.wait_for_function("() => window.location.search.includes('levels_run=levels-tiny')")
    page.get_by_text("Avg. Rank and Ratio@Top-3").wait_for()
    level = page.locator("table.wb-level-table")
    assert level.locator("tbody tr").count() == 4  # 2 agents x 2 games
    assert "take_cover" in level.inner_text() and "map cells" in level.inner_text()
    page.locator(".bk-Canvas canvas").nth(2).wait_for()  # Kaplan-Meier, magnitude, trajectory maps
    assert page.locator(".bk-Canvas").count() >= 3
    assert page.locator("table.wb-episodes tbody tr").count() == 8
    _shot(page, "levels")

    link = level.locator("a.wb-episode-link").nth(3)  # scripted / my_way_home, its first episode
    episode = link.inner_text()
    link.click()
    page.wait_for_function("() => window.location.search.includes('episode=')")
    assert _query(page)["episode"].replace("%2F", "/") == episode
    gif = page.locator("img.wb-episode-gif")
    gif.wait_for()
    deadline = time.monotonic() + 30
    while gif.get_attribute("alt") != episode:
        assert time.monotonic() < deadline, "the viewer does not show the linked episode"
        time.sleep(0.1)
    assert gif.get_attribute("src").startswith("data:image/gif;base64,") and gif.evaluate("i => i.naturalWidth") > 0
    assert page.locator(".wb-episode-strip img").evaluate("i => i.naturalWidth") > 0
    other = "random/take_cover/1"
    page.locator(".bk-input-group", has_text="episode").locator("select").select_option(other)
    while gif.get_attribute("alt") != other:
        assert time.monotonic() < deadline + 30, "choosing an episode does not show it"
        time.sleep(0.1)
    gif.scroll_into_view_if_needed()
    _shot(page, "levels-viewer")
    with pytest.raises(ValueError, match="invalid agent id"):
        episode_pictures("levels-tiny", "../take_cover/0")
    with pytest.raises(ValueError, match="agent/game/k"):
        episode_pictures("levels-tiny", "../../x/take_cover/0")
