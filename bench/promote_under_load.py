#!/usr/bin/env python3
"""Requests through nginx while the stack is promoted and rolled back: fresh-connection clients next to
keep-alive clients, counted side by side in one run on the real engine.

Every change is a graceful nginx reload; nginx before 1.27.4 closes idle keep-alive client connections
when its old workers exit, so a keep-alive client can see resets a fresh-connection client never sees.
Needs the engine (source .engine/env). Usage: .venv/bin/python bench/promote_under_load.py [--cycles 2]
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "e2e"), str(ROOT / "src")]
from stackkit import WINDOW_SECONDS, make_project, public_url, remove_everything  # noqa: E402


class Client(threading.Thread):
    def __init__(self, url: str, keep_alive: bool, stop: threading.Event):
        super().__init__(daemon=True)
        self.url, self.keep_alive, self.stop = url, keep_alive, stop
        self.outcomes: Counter = Counter()

    def run(self):
        session = requests.Session()
        while not self.stop.is_set():
            try:
                if self.keep_alive:
                    answer = session.get(self.url, timeout=10)
                else:
                    answer = requests.get(self.url, headers={"Connection": "close"}, timeout=10)
                self.outcomes[answer.status_code] += 1
            except requests.RequestException as err:
                self.outcomes[type(err).__name__] += 1
                session = requests.Session()
            time.sleep(0.01)


def swiftdeploy(project: Path, *words: str) -> None:
    result = subprocess.run([sys.executable, str(project / "swiftdeploy"), *words], cwd=project,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"./swiftdeploy {' '.join(words)} failed:\n{result.stdout}\n{result.stderr}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=2, help="promote canary, promote stable, canary, rollback")
    cycles = parser.parse_args().cycles
    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp) / "project", canary={"weight": 50})
        try:
            swiftdeploy(project, "deploy")
            stop = threading.Event()
            clients = [Client(public_url(project) + "/", keep, stop) for keep in (False, False, True, True)]
            for client in clients:
                client.start()
            reloads = 0
            for _ in range(cycles):
                swiftdeploy(project, "promote", "canary")
                time.sleep(WINDOW_SECONDS)
                swiftdeploy(project, "promote", "stable")
                swiftdeploy(project, "promote", "canary")
                swiftdeploy(project, "rollback")
                reloads += 4
            stop.set()
            for client in clients:
                client.join()
        finally:
            remove_everything(project)
    print(f"machine: {platform.node()}, {os.cpu_count()} cpus, {platform.platform()}, "
          f"engine: {os.environ.get('SWIFTDEPLOY_ENGINE', 'docker')}, nginx image: stand-in (Debian 1.22)")
    print(f"command: {' '.join(sys.argv)}  ({cycles} cycles, {reloads} promotions/rollbacks, 2 clients of each kind)")
    for keep, label in ((False, "fresh connection per request"), (True, "keep-alive (requests.Session)")):
        total = Counter()
        for client in clients:
            if client.keep_alive == keep:
                total.update(client.outcomes)
        failed = sum(v for k, v in total.items() if k != 200)
        print(f"{label:32} {sum(total.values()):6} requests, {failed:3} failed  {dict(total)}")


if __name__ == "__main__":
    main()
