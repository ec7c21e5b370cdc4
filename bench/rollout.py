#!/usr/bin/env python3
"""Time from a fault to all traffic on stable, for the rollout with the production window (30 s), next to what
Flagger's defaults give on paper for the same fault.

A stack on the real engine runs a rollout (steps 20/50/100, 30 s a step, judged every 10 s over the 30 s
window, failure limit 1: the manifest defaults). Once the first step serves, the canary is told to fail 20 %
of requests (chaos error 0.2). A prober sends fresh-connection requests and notes the last answer from the
canary; the figure is injection -> that last canary answer, and injection -> the rollback's record.
Needs the engine (source .engine/env). Usage: .venv/bin/python bench/rollout.py [--runs 3]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e"), str(ROOT / "src")]
from stackkit import history, make_project, public_url, remove_everything  # noqa: E402
from swiftdeploy.model.manifest_edit import set_fields  # noqa: E402

FLAGGER_INTERVAL, FLAGGER_THRESHOLD, FLAGGER_METRIC_WINDOW = 60, 5, 60


def swiftdeploy(project: Path, *words: str) -> None:
    result = subprocess.run([sys.executable, str(project / "swiftdeploy"), *words], cwd=project,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"./swiftdeploy {' '.join(words)} failed:\n{result.stdout}\n{result.stderr}")


class Prober(threading.Thread):
    """Fresh-connection requests through nginx; remembers when the canary last answered."""

    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.url, self.stop, self.last_canary, self.count = url, threading.Event(), None, 0

    def run(self):
        while not self.stop.is_set():
            try:
                answer = requests.get(self.url, headers={"Connection": "close"}, timeout=10)
                self.count += 1
                if answer.headers.get("X-Mode") == "canary":
                    self.last_canary = time.time()
            except requests.RequestException:
                pass
            time.sleep(0.005)


def production_window(project: Path) -> None:
    """The manifest's and policy's production timing (stackkit shortens both for the tests)."""
    manifest = project / "manifest.yaml"
    text = set_fields(manifest.read_text(), {"services.canary.window_seconds": 30})
    manifest.write_text(text)
    data_file = project / "policies" / "data.json"
    data = json.loads(data_file.read_text())
    data["canary"]["min_window_seconds"] = 30
    data_file.write_text(json.dumps(data, indent=2) + "\n")


def one_run(tmp: Path) -> tuple[float, float]:
    project = make_project(tmp, canary={"version": "1.1.0", "steps": [20, 50, 100]})
    production_window(project)
    try:
        swiftdeploy(project, "deploy")
        probers = [Prober(public_url(project) + "/") for _ in range(4)]
        for prober in probers:
            prober.start()
        rollout = subprocess.Popen([sys.executable, str(project / "swiftdeploy"), "rollout"], cwd=project,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        while not any(r["event"] == "rollout_step" for r in history(project)):
            time.sleep(0.2)
        swiftdeploy(project, "chaos", "error", "--rate", "0.2")
        injected = time.time()
        output, _ = rollout.communicate(timeout=600)
        for prober in probers:
            prober.stop.set()
            prober.join()
        if rollout.returncode == 0:
            raise SystemExit(f"the rollout promoted a failing canary:\n{output}")
        rollback = [r for r in history(project) if r["event"] == "rollback"][-1]
        recorded = datetime.fromisoformat(rollback["ts"].replace("Z", "+00:00")).timestamp() - injected
        last_canary = max(p.last_canary or injected for p in probers) - injected
        return last_canary, recorded
    finally:
        remove_everything(project)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    print(f"machine: {platform.node()}, {os.cpu_count()} cpus, {platform.platform()}; "
          f"engine: {os.environ.get('SWIFTDEPLOY_ENGINE', 'docker')}")
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(runs):
            figures.append(one_run(Path(tmp) / f"run{number}"))
            print(f"run {number + 1}: last canary answer {figures[-1][0]:.1f} s after injection, "
                  f"rollback recorded {figures[-1][1]:.1f} s after", flush=True)
    flagger = FLAGGER_INTERVAL * FLAGGER_THRESHOLD
    print()
    print(f"{'fault (chaos error 0.2) -> all traffic on stable':58} {'median':>8} {'max':>8}")
    print(f"{'SwiftDeploy rollout (window 30 s, interval 10 s, limit 1)':58}"
          f"{statistics.median(f[0] for f in figures):7.1f}s {max(f[0] for f in figures):7.1f}s")
    print(f"{'Flagger defaults on paper (interval 60 s x threshold 5)':58} {flagger:7.0f}s "
          f"{flagger + FLAGGER_INTERVAL:7.0f}s")
    print(f"  (Flagger: {FLAGGER_THRESHOLD} failed checks, one per {FLAGGER_INTERVAL} s analysis interval, over a "
          f"{FLAGGER_METRIC_WINDOW} s PromQL window; the max adds one interval for the first check's wait)")


if __name__ == "__main__":
    main()
