"""Dashboard redraw latency at 100k embedding points (the datashaded geometry page).

* server: building the figure for a colour-by or game-filter change and rendering it to Bokeh
  models (datashader's aggregation happens here) — what the server does before the browser
  gets anything;
* browser (when Chromium is installed): a real ``workbench serve`` on a synthetic 100k-point
  study, driven by headless Chromium through Playwright — from the click on "game" (colour) or
  a game choice until the plot's canvas stops changing.

Figures are measured, never asserted. ``python -m benchmarks dashboard`` once registered.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
GAMES = ("Enduro", "CarRacing", "SpaceInvaders", "Asterix")
#: A cheap hash of a canvas' pixels, evaluated in the page.
CANVAS_HASH = """c => { const d = c.toDataURL(); let h = 0;
  for (let i = 0; i < d.length; i += 61) h = (h * 31 + d.charCodeAt(i)) | 0; return h + ':' + d.length; }"""


def synthetic_points(n: int = 100_000, seed: int = 0) -> pd.DataFrame:
    """A 2-D projection like a study's ``points-*.csv``: clusters by action, games interleaved."""
    rng = np.random.default_rng(seed)
    action = rng.choice(["LEFT", "NEUTRAL", "RIGHT"], n, p=[1 / 6, 2 / 3, 1 / 6])
    game = rng.choice(GAMES, n)
    centre = {"LEFT": (-6.0, 0.0), "NEUTRAL": (0.0, 3.0), "RIGHT": (6.0, 0.0)}
    xy = np.array([centre[a] for a in action]) + rng.normal(0, 1.6, (n, 2))
    xy += np.array([GAMES.index(g) for g in game])[:, None] * 0.4
    return pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1], "game": game, "action": action,
                         "source_frame": np.arange(n), "split": "test"})


def write_study(root: Path, points: pd.DataFrame) -> Path:
    """A study folder holding only a domain's projections (what the geometry page reads)."""
    folder = root / "bench-100k"
    (folder / "racing").mkdir(parents=True)
    for method in ("tsne", "umap"):
        points.to_csv(folder / "racing" / f"points-{method}.csv", index=False)
    record = {"config": {"size": "synthetic", "seed": 0, "steps": 0, "study_id": folder.name},
              "domains": {"racing": {"dataset": "racing", "store": str(root / "no-store"), "games": list(GAMES),
                                     "models": {}}}}
    (folder / "study.json").write_text(json.dumps(record))
    return folder


def server_redraw(points: pd.DataFrame, repeats: int = 5) -> dict:
    """Median seconds to build + render the figure for each widget change (after one warm-up)."""
    import holoviews as hv

    from workbench.viz.plots import embedding_view

    def draw(color: str, game: str) -> float:
        view = points if game == "all" else points[points.game == game]
        t = time.perf_counter()
        fig = embedding_view(view[["x", "y"]].to_numpy(), view.action, view.game, color_by=color,
                             hover={"source_frame": view.source_frame.to_numpy()})
        hv.render(fig, backend="bokeh")
        return time.perf_counter() - t

    warmup = draw("action", "all")
    changes = {"colour by game (100k points)": ("game", "all"), "colour by action (100k points)": ("action", "all"),
               f"filter to one game ({int((points.game == GAMES[0]).sum()):,} points)": ("action", GAMES[0])}
    return {"first draw (imports, numba compilation)": warmup,
            **{name: float(np.median([draw(*args) for _ in range(repeats)])) for name, args in changes.items()}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port: int, server: subprocess.Popen, timeout: float = 120.0) -> None:
    """Block until the server accepts connections (or fail with its output when it exits)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"workbench serve exited: {server.stdout.read()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"workbench serve did not listen on port {port}")


def _settle(locator, before: str, t0: float, timeout: float = 60.0, quiet: float = 0.6) -> float:
    """Seconds from ``t0`` until the canvas last changed, once it changed and then stayed put."""
    last, changed_at = before, None
    while time.perf_counter() - t0 < timeout:
        try:
            now = locator.first.evaluate(CANVAS_HASH, timeout=2000)
        except Exception:  # the figure is being replaced
            now = last
        if now != last:
            last, changed_at = now, time.perf_counter()
        elif changed_at and time.perf_counter() - changed_at > quiet:
            return changed_at - t0
        time.sleep(0.02)
    raise TimeoutError("the plot did not change after the widget change")


def browser_redraw(root: Path, repeats: int = 3) -> dict:
    """Click-to-updated-canvas latency in headless Chromium against a real server."""
    from playwright.sync_api import sync_playwright

    port = _free_port()
    env = {**os.environ, "WORKBENCH_STUDIES": str(root), "WORKBENCH_CACHE": str(root / "cache"),
           "WORKBENCH_MODELS": str(root / "models")}
    server = subprocess.Popen([sys.executable, "-m", "workbench", "serve", "--port", str(port)], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_for(port, server)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            t = time.perf_counter()
            page.goto(f"http://127.0.0.1:{port}/?page=geometry", timeout=120_000)
            canvas = page.locator(".bk-Canvas canvas")
            canvas.first.wait_for(timeout=120_000)
            first = _settle(canvas, "", t)
            out = {"page_load_to_plot_s": first, "colour_change_s": [], "game_filter_s": []}
            buttons = page.locator(".bk-btn-group .bk-btn")
            game = page.locator("select").last
            for i in range(repeats):
                before = canvas.first.evaluate(CANVAS_HASH)
                t = time.perf_counter()
                buttons.filter(has_text="game" if i % 2 == 0 else "action").first.click()
                out["colour_change_s"].append(_settle(canvas, before, t))
                before = canvas.first.evaluate(CANVAS_HASH)
                t = time.perf_counter()
                game.select_option(GAMES[i % len(GAMES)] if i % 2 == 0 else "all")
                out["game_filter_s"].append(_settle(canvas, before, t))
            browser.close()
        return {"page_load_to_plot_s": out["page_load_to_plot_s"],
                "colour_change_s": float(np.median(out["colour_change_s"])),
                "game_filter_s": float(np.median(out["game_filter_s"])),
                "samples": {k: out[k] for k in ("colour_change_s", "game_filter_s")}}
    finally:
        server.terminate()
        server.wait(timeout=30)


def run(workers: int | None = None, n: int = 100_000) -> dict:
    """Server-side and (with Chromium) in-browser redraw latency at ``n`` points."""
    points = synthetic_points(n)
    results = {"points": n, "cpus": os.cpu_count(), "server": server_redraw(points)}
    if Path(CHROMIUM).exists():
        root = Path(tempfile.mkdtemp(prefix="wb-dashboard-bench-"))
        try:
            write_study(root, points)
            results["browser"] = browser_redraw(root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    else:
        results["browser"] = f"skipped: no {CHROMIUM}"
    return results


def to_markdown(r: dict) -> str:
    lines = [f"## Dashboard redraw latency ({r['points']:,} points, datashaded; {r['cpus']} CPUs)", "",
             "| change | seconds |", "|---|---|"]
    lines += [f"| server: {k} | {v:.3f} |" for k, v in r["server"].items()]
    if isinstance(r["browser"], dict):
        b = r["browser"]
        lines += [f"| browser: page load → plot drawn | {b['page_load_to_plot_s']:.3f} |",
                  f"| browser: click colour-by → canvas updated (median) | {b['colour_change_s']:.3f} |",
                  f"| browser: choose game → canvas updated (median) | {b['game_filter_s']:.3f} |"]
    else:
        lines += ["", f"Browser: {r['browser']}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(to_markdown(run()))
