#!/usr/bin/env python3
"""Wall time of the README's test command: each engine's pytest run and the whole of scripts/test.

Runs scripts/test (with the arguments given, passed to pytest) and prints, from its own
"==> pytest on ENGINE: exit N after S s" lines, each half's time and exit status, and the total
including setup, engine start/stop and image copies. The load average before and after is printed
too: these 2-vCPU machines are often shared, and the figures move with it.
Usage: .venv/bin/python bench/test_wall_time.py [pytest arguments]
"""

import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HALF = re.compile(r"^==> pytest on (\w+): exit (\d+) after (\d+) s$")


def main() -> int:
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    process = subprocess.Popen([str(ROOT / "scripts" / "test"), *sys.argv[1:]], cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    halves = []
    for line in process.stdout:
        sys.stdout.write(line)
        match = HALF.match(line.strip())
        if match:
            halves.append(match.groups())
    status = process.wait()
    total = time.perf_counter() - start
    print(f"\n{platform.node()}: {os.cpu_count()} CPUs, 1-min load {load_before:.1f} before, "
          f"{os.getloadavg()[0]:.1f} after")
    for engine, code, seconds in halves:
        print(f"pytest on {engine:<7} {int(seconds) / 60:5.1f} min  (exit {code})")
    print(f"scripts/test total {total / 60:5.1f} min  (exit {status})")
    return status


if __name__ == "__main__":
    sys.exit(main())
