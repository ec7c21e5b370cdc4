#!/usr/bin/env python3
"""Deploy wall time: `doit deploy` cold, a bare `docker compose up -d --wait` of the same generated file,
a no-change redeploy and a no-change `doit plan`, side by side in one run on the real engine.

Needs the engine (source .engine/env after scripts/test-engine up). Runs in throwaway project copies
with their own names and ports. Usage: .venv/bin/python bench/deploy.py [--runs 3]
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e"), str(ROOT / "src")]
from stackkit import make_project, manifest_of, remove_everything  # noqa: E402

from swiftdeploy.engine.tools import compose_binary  # noqa: E402


def timed(argv, cwd) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{result.stdout}\n{result.stderr}")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    doit = [sys.executable, "-m", "doit"]
    cold, bare, again, plan = ("doit deploy, cold (stack down, images built)",
                               "docker compose up -d --wait, same file, cold",
                               "doit deploy, nothing changed (stack up)", "doit plan, nothing changed (stack up)")
    rows = {cold: [], bare: [], again: [], plan: []}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(runs):
            project = make_project(Path(tmp) / f"p{run}")
            try:
                timed([*doit, "build", "init"], project)  # not timed: the image exists, as the row says
                rows[cold].append(timed([*doit, "deploy"], project))
                for _ in range(3):
                    rows[again].append(timed([*doit, "deploy"], project))
                    rows[plan].append(timed([*doit, "plan"], project))
                remove_everything(project)
                compose = [*compose_binary(), "-f", "generated/docker-compose.yml", "-p", manifest_of(project).project]
                rows[bare].append(timed([*compose, "up", "-d", "--wait"], project))
            finally:
                remove_everything(project)
    print(f"machine: {platform.node()}, {os.cpu_count()} cpus, {platform.platform()}, "
          f"engine: {os.environ.get('SWIFTDEPLOY_ENGINE', 'docker')}, Python {platform.python_version()}")
    print(f"command: {' '.join(sys.argv)}  ({runs} runs each)")
    width = max(map(len, rows))
    print(f"{'':{width}}  median     min     max   runs")
    for name, samples in rows.items():
        print(f"{name:{width}}  {statistics.median(samples):5.2f} s {min(samples):5.2f} s {max(samples):5.2f} s"
              f"   {len(samples)}")
    print(f"cold deploy / bare compose: {statistics.median(rows[cold]) / statistics.median(rows[bare]):.2f}x")


if __name__ == "__main__":
    main()
