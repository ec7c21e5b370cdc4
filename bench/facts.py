#!/usr/bin/env python3
"""What measuring the infra facts on the engine's host costs, next to reading them on the CLI's machine.

Rows: psutil on this machine (what the gate did before, and what it would wrongly judge with a remote
engine); the probe container on the engine, first with the probe image absent (imported first), then warm.
Needs the engine (source .engine/env). Usage: .venv/bin/python bench/facts.py [--runs 10]
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src")]
from swiftdeploy.engine import api as engine
from swiftdeploy.engine import probe# noqa: E402


def timed(action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    import psutil

    data_path = engine.data_path()
    print(f"vm: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, {platform.platform()}; "
          f"engine at {os.environ.get('DOCKER_HOST', 'the default socket')} ({os.environ.get('SWIFTDEPLOY_ENGINE', '?')})")
    local = [timed(lambda: (psutil.disk_usage(data_path), psutil.getloadavg(), psutil.virtual_memory()))
             for _ in range(runs)]
    busybox, digest = probe._busybox()
    reference = f"{probe.PROBE_REPOSITORY}:{digest}"
    if engine.image_present(reference):
        engine.untag_image(reference)
    cold = timed(lambda: probe.engine_host_facts(data_path))
    warm = [timed(lambda: probe.engine_host_facts(data_path)) for _ in range(runs)]
    print(f"{'how':<44}{'median':>10}{'max':>10}")
    print(f"{'psutil on the CLI machine':<44}{statistics.median(local) * 1000:>8.2f}ms{max(local) * 1000:>8.2f}ms")
    print(f"{'probe, image imported first (once)':<44}{cold * 1000:>8.0f}ms{'':>10}")
    print(f"{'probe, image present':<44}{statistics.median(warm) * 1000:>8.0f}ms{max(warm) * 1000:>8.0f}ms")


if __name__ == "__main__":
    main()
