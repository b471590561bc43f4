"""Shared fixtures: every test runs against its own cache, user catalog and import root."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def workbench_dirs(tmp_path, monkeypatch):
    """Point the cache, the user catalog and the import root at a fresh temporary folder."""
    dirs = {name: tmp_path / name for name in ("cache", "catalog", "imports")}
    for d in dirs.values():
        d.mkdir()
    monkeypatch.setenv("WORKBENCH_CACHE", str(dirs["cache"]))
    monkeypatch.setenv("WORKBENCH_CATALOG", str(dirs["catalog"]))
    monkeypatch.setenv("WORKBENCH_IMPORT_ROOT", str(dirs["imports"]))
    return dirs


def record_tiny(tmp_path_factory, names, flow: bool = False):
    """The catalog entries ``names`` (one id or several) recorded at their ``tiny`` size into a
    fresh cache (with Farneback flow when ``flow``): the store path, or ``{id: path}`` for several.
    The tests' own ``WORKBENCH_CACHE`` is left as it was."""
    import os

    from workbench.data.catalog import get_entry, materialise
    from workbench.flow import compute_flow

    cache = tmp_path_factory.mktemp("tiny")
    old = os.environ.get("WORKBENCH_CACHE")
    os.environ["WORKBENCH_CACHE"] = str(cache)
    try:
        paths = {}
        for name in [names] if isinstance(names, str) else names:
            paths[name] = materialise(get_entry(name), size="tiny", progress=False)
            if flow:
                compute_flow(paths[name], workers=1, progress=False)
    finally:
        if old is None:
            os.environ.pop("WORKBENCH_CACHE")
        else:
            os.environ["WORKBENCH_CACHE"] = old
    return paths[names] if isinstance(names, str) else paths


@pytest.fixture(scope="session")
def recorded_cache(tmp_path_factory):
    """A cache holding the built-in catalog recorded at its ``tiny`` size, with Farneback flow.

    Session-scoped so the slow end-to-end tests record the real emulators once.
    """
    import os

    from workbench.data.catalog import load_catalog, materialise
    from workbench.flow import compute_flow

    cache = tmp_path_factory.mktemp("recorded")
    old = os.environ.get("WORKBENCH_CACHE")
    os.environ["WORKBENCH_CACHE"] = str(cache)
    try:
        paths = {}
        for entry in load_catalog().values():
            path = materialise(entry, size="tiny", progress=False)
            compute_flow(path, workers=1, progress=False)
            paths[entry.id] = path
    finally:
        if old is None:
            os.environ.pop("WORKBENCH_CACHE")
        else:
            os.environ["WORKBENCH_CACHE"] = old
    return cache, paths


@pytest.fixture(autouse=True)
def workbench_models(tmp_path, monkeypatch):
    """Point the model library at a fresh temporary folder, so no test writes into ``models/``."""
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("WORKBENCH_MODELS", str(folder))
    return folder


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium through Playwright, one per test session (every browser test shares it:
    a second sync Playwright in the same session would refuse to start)."""
    from pathlib import Path

    from test_dashboard import CHROMIUM, CHROMIUM_ARGS

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (`make test` installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    page = browser.new_page(viewport={"width": 1400, "height": 2000})  # tall: the template scrolls inside
    page.set_default_timeout(60_000)
    yield page
    page.close()


@pytest.fixture
def one_torch_thread():
    """Tiny models: one torch thread is fastest, and immune to a busy machine's other jobs
    (modules that train use it for every test: ``pytestmark = pytest.mark.usefixtures(...)``)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
