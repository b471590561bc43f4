"""Dashboard main page under concurrent visitors: p50/p95 seconds for 1, 10 and 50 clients.

A real ``workbench serve`` on 127.0.0.1 (loopback only) serves a synthetic study of ``n`` points
(the size of a demo study's racing domain: the geometry page draws every point); each client
opens new connections and GETs ``/`` — the server builds that visitor's session: the dashboard's
objects and their Bokeh models (the browser then pulls the document over the websocket, which is
not timed here) — until the level's request count is done or its time limit passes. The first request after start-up is
reported on its own. Figures are measured, never asserted; the server stops with the run.
``python -m benchmarks concurrency``.
"""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import psutil

from .dashboard import REPO, _free_port, _wait_for, synthetic_points, write_study

#: (concurrent clients, requests in all) per level.
LEVELS = ((1, 10), (10, 30), (50, 50))
#: Seconds a level may run before its remaining requests are dropped (and counted as not sent).
LEVEL_LIMIT = 300.0


def _get(port: int, timeout: float = 180.0) -> float:
    """Seconds to GET the main page on a fresh connection (raises on anything but 200)."""
    t = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200 or b"Latent Action Workbench" not in body:
        raise RuntimeError(f"GET / answered {response.status}")
    return time.perf_counter() - t


def _cpu(process: psutil.Process) -> float:
    """CPU seconds (user + system) the server has used so far."""
    times = process.cpu_times()
    return times.user + times.system


def load_level(port: int, clients: int, requests: int, server: psutil.Process, limit: float = LEVEL_LIMIT) -> dict:
    """``requests`` GETs of ``/`` by ``clients`` concurrent clients: latency percentiles, errors, and the
    server's CPU seconds per completed request (what a page view costs, whatever else the machine runs)."""
    lock, left, stop = threading.Lock(), [requests], time.perf_counter() + limit
    latencies, errors = [], []

    def client() -> None:
        while time.perf_counter() < stop:
            with lock:
                if not left[0]:
                    return
                left[0] -= 1
            try:
                latencies.append(_get(port))
            except Exception as exc:  # recorded, not raised: the figure is how many failed
                errors.append(repr(exc))

    t, cpu = time.perf_counter(), _cpu(server)
    with ThreadPoolExecutor(clients) as pool:
        for _ in range(clients):
            pool.submit(client)
    wall, cpu = time.perf_counter() - t, _cpu(server) - cpu
    lat = np.array(latencies)
    return {"clients": clients, "requests": requests, "completed": len(lat), "errors": len(errors),
            "not_sent": left[0], "wall_s": wall, "server_cpu_per_request_s": cpu / max(len(lat), 1),
            "p50_s": float(np.percentile(lat, 50)) if len(lat) else None,
            "p95_s": float(np.percentile(lat, 95)) if len(lat) else None,
            "max_s": float(lat.max()) if len(lat) else None, "first_errors": errors[:3]}


def run(workers: int | None = None, n: int = 10_000) -> dict:
    """Start a server on a synthetic ``n``-point study, then load it level by level."""
    root = Path(tempfile.mkdtemp(prefix="wb-concurrency-bench-"))
    port = _free_port()
    env = {**os.environ, "WORKBENCH_STUDIES": str(root), "WORKBENCH_CACHE": str(root / "cache"),
           "WORKBENCH_MODELS": str(root / "models"), "WORKBENCH_CATALOG": str(root / "catalog")}
    env.pop("WORKBENCH_PASSWORD", None)
    results = {"points": n, "cpus": os.cpu_count(), "load_average": os.getloadavg()[0]}
    try:
        write_study(root, synthetic_points(n))
        t = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-m", "workbench", "serve", "--port", str(port)], cwd=REPO,
                                  env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            _wait_for(port, server, timeout=300)
            results["start_to_listening_s"] = time.perf_counter() - t
            results["first_request_s"] = _get(port)
            process = psutil.Process(server.pid)
            results["levels"] = [load_level(port, clients, requests, process) for clients, requests in LEVELS]
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    results["load_average_after"] = os.getloadavg()[0]
    return results


def to_markdown(r: dict) -> str:
    lines = [f"## Dashboard main page under concurrent clients ({r['points']:,}-point study, {r['cpus']} CPUs, "
             f"load average {r['load_average']:.1f} before, {r['load_average_after']:.1f} after)", "",
             f"Server start to listening: {r['start_to_listening_s']:.1f} s; first request: "
             f"{r['first_request_s']:.2f} s.", "",
             "| clients | requests (completed / errors / not sent) | p50 s | p95 s | max s | wall s "
             "| server CPU s per request |", "|---|---|---|---|---|---|---|"]
    fmt = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
    for lv in r["levels"]:
        lines.append(f"| {lv['clients']} | {lv['requests']} ({lv['completed']} / {lv['errors']} / {lv['not_sent']}) | "
                     f"{fmt(lv['p50_s'])} | {fmt(lv['p95_s'])} | {fmt(lv['max_s'])} | {lv['wall_s']:.1f} | "
                     f"{lv['server_cpu_per_request_s']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(to_markdown(run()))
