"""Run the benchmarks and write ``benchmarks/results/<suite>.json`` and ``.md``."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from . import (analysis, compute, concurrency, dashboard, flow, foundation, idm, levels, loader, play, projection_timing,
               worldmodel)

SUITES = {"foundation": foundation, "projection": projection_timing, "idm": idm, "dashboard": dashboard,
          "concurrency": concurrency, "worldmodel": worldmodel, "play": play, "flow": flow,
          "loader": loader, "levels": levels, "analysis": analysis, "compute": compute}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("suites", nargs="*", default=list(SUITES), help=f"suites to run: {', '.join(SUITES)}")
    parser.add_argument("--workers", type=int, default=None, help="processes for parallel steps (default: all cores)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--frames", type=int, default=None,
                        help=f"frames for the analysis suite (default {analysis.FRAMES:,}; fewer for a quick run)")
    parser.add_argument("--device", action="append", default=None,
                        help="device(s) the compute, idm, worldmodel and loader suites measure on (repeatable;"
                             " default: cpu, and cuda when available)")
    args = parser.parse_args()
    if args.device:
        os.environ[idm.DEVICES_ENV] = ",".join(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.suites:
        if name not in SUITES:
            parser.error(f"unknown suite {name!r}; known: {', '.join(SUITES)}")
        scale = {"frames": args.frames} if name == "analysis" and args.frames else {}
        results = SUITES[name].run(workers=args.workers, **scale)
        for suffix, text in ((".json", json.dumps(results, indent=2, default=float)),
                             (".md", SUITES[name].to_markdown(results))):
            fd, tmp = tempfile.mkstemp(dir=args.out, suffix=".tmp")
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(tmp, args.out / f"{name}{suffix}")
        print(SUITES[name].to_markdown(results))


if __name__ == "__main__":
    main()
