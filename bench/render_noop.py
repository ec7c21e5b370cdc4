#!/usr/bin/env python3
"""How long `doit init` takes when nothing changed, beside the floors it cannot go under.

Runs in a throwaway copy of the project. Prints one row per command: median and max wall time over
--runs runs. Usage: .venv/bin/python bench/render_noop.py [--runs 15]
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from projectkit import copy_project  # noqa: E402


def timed(argv, cwd, runs, before=None):
    samples = []
    for _ in range(runs):
        if before:
            before()
        start = time.perf_counter()
        subprocess.run(argv, cwd=cwd, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), max(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        project = copy_project(Path(tmp) / "project")
        doit = [py, "-m", "doit"]
        subprocess.run([*doit, "init"], cwd=project, check=True, capture_output=True)

        def cold():
            shutil.rmtree(project / "generated", ignore_errors=True)
            (project / ".doit.db").unlink(missing_ok=True)

        rows = [
            ("python -c pass (floor)", timed([py, "-c", "pass"], project, runs)),
            ("python -c 'import doit' (floor)", timed([py, "-c", "import doit"], project, runs)),
            ("doit list", timed([*doit, "list"], project, runs)),
            ("doit init, nothing changed", timed([*doit, "init"], project, runs)),
            ("doit init, cold (no generated/, no db)", timed([*doit, "init"], project, runs, before=cold)),
        ]
    print(f"machine: {platform.node()}, {os.cpu_count()} cpus, {platform.platform()}, Python {platform.python_version()}")
    print(f"command: {' '.join(sys.argv)}  ({runs} runs each)")
    width = max(len(name) for name, _ in rows)
    print(f"{'':{width}}  median    max")
    for name, (median, worst) in rows:
        print(f"{name:{width}}  {median * 1000:5.0f} ms {worst * 1000:5.0f} ms")


if __name__ == "__main__":
    main()
