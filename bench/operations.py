#!/usr/bin/env python3
"""Each operation's wall time beside its floor, measured in the same run on the real engine, and the ratio.

The floor of an operation is what the engine and nginx cannot avoid for it, each part measured here:
- a process's own work: a Python process that imports the engine client, lists the project's containers
  and asks nginx once (what a no-change `deploy` cannot do without);
- for the containers the operation started, the slowest one's time from `create` to `health_status: healthy`,
  from the engine's own events;
- when the operation changed nginx's config (the generation nginx serves changed), one validated reload
  (`nginx -t` and `nginx -s reload` in the nginx container, through the engine's exec);
- the confirmation's own requests: 15 requests through the public port, one after another;
- for promote stable, the canary gate's window (`canary.window_seconds`): it reads the canary's figures over it.
promote stable and the SIGKILLed one run under a light load (one client, a request every 50 ms), for the gate.
A container's removal is not in any floor: nobody has to wait for it.

Operations: deploy cold (stack down, images built) and with nothing changed, promote canary, rollback from
canary, promote stable, rollback from a half-done promotion (`promote stable` SIGKILLed after its first journaled
step). Needs the engine (source .engine/env after scripts/test-engine up). Runs in throwaway project copies
with their own names and ports.

Usage: .venv/bin/python bench/operations.py [--runs 3]
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
from stackkit import WINDOW_SECONDS, SteadyLoad, kill_promote_stable_after, make_project, manifest_of, public_url, remove_everything  # noqa: E402

from swiftdeploy.converge.proxy import CONFIG, served_generation  # noqa: E402
from swiftdeploy.engine.api import client  # noqa: E402
from swiftdeploy.model.manifest_edit import set_fields  # noqa: E402

PROCESS_FLOOR = """
import sys, docker, requests
docker.from_env().api.containers(all=True, filters={"label": f"com.docker.compose.project={sys.argv[1]}"})
requests.get(sys.argv[2], headers={"Connection": "close"}, timeout=10)
"""


def swiftdeploy(project: Path, *words: str) -> float:
    start = time.perf_counter()
    result = subprocess.run([sys.executable, str(project / "swiftdeploy"), *words], cwd=project,
                            capture_output=True, text=True, timeout=600)
    took = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"./swiftdeploy {' '.join(words)} failed:\n{result.stdout}\n{result.stderr}")
    return took


def generation(url: str) -> str | None:
    return served_generation(url)


def started_to_healthy(project_name: str, since: float, until: float) -> float:
    """The slowest create-to-healthy time of the containers created between since and until (0 if none)."""
    created, healthy = {}, {}
    events = client().api.events(since=int(since), until=int(until) + 2, decode=True,
                                 filters={"type": "container", "label": f"com.docker.compose.project={project_name}"})
    for event in events:
        moment = event["timeNano"] / 1e9
        if event["Action"] == "create" and since <= moment <= until:
            created[event["id"]] = moment
        elif event["Action"] == "health_status: healthy":
            healthy.setdefault(event["id"], moment)
    return max((healthy[c] - created[c] for c in created if c in healthy), default=0.0)


def nginx_container(project_name: str):
    [nginx] = client().containers.list(filters={"label": [f"com.docker.compose.project={project_name}",
                                                          "com.docker.compose.service=nginx"]})
    return nginx


def reload_seconds(project_name: str) -> float:
    nginx = nginx_container(project_name)
    start = time.perf_counter()
    code, output = nginx.exec_run(["sh", "-c", f"nginx -t -q -c {CONFIG} && nginx -s reload -c {CONFIG}"])
    took = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"nginx reload failed: {output.decode(errors='replace')}")
    return took


def confirm_seconds(url: str) -> float:
    import requests

    start = time.perf_counter()
    for _ in range(15):
        requests.get(url, headers={"Connection": "close"}, timeout=10)
    return time.perf_counter() - start


def process_seconds(project_name: str, url: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", PROCESS_FLOOR, project_name, url], check=True, timeout=60)
    return time.perf_counter() - start


class Run:
    """One throwaway project: each operation timed, with the parts of its floor measured right after it."""

    def __init__(self, project: Path):
        self.project = project
        self.name = manifest_of(project).project
        self.url = public_url(project)
        self.rows: dict[str, list[tuple[float, float]]] = {}

    def time(self, label: str, *words: str, kill_first: bool = False, window: float = 0.0) -> None:
        before = generation(self.url) if self.rows else None
        if kill_first:
            kill_promote_stable_after(self.project, 1, 0.0)
        since = time.time()
        took = swiftdeploy(self.project, *words)
        until = time.time()
        reloaded = generation(self.url) != before
        floor = (process_seconds(self.name, self.url) + started_to_healthy(self.name, since, until)
                 + (reload_seconds(self.name) if reloaded and before is not None else 0.0)
                 + confirm_seconds(self.url) + window)
        self.rows.setdefault(label, []).append((took, floor))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    # as on a user's machine: each project copy keeps the bytecode its first command compiled
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    doit = [sys.executable, "-m", "doit"]
    results: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for number in range(runs):
            project = make_project(Path(tmp) / f"p{number}", canary={"version": "1.1.0"})
            try:
                subprocess.run([*doit, "build", "init"], cwd=project, check=True, capture_output=True)
                run = Run(project)
                run.time("deploy, cold (stack down, images built)", "deploy")
                for _ in range(3):
                    run.time("deploy, nothing changed", "deploy")
                run.time("promote canary", "promote", "canary")
                run.time("rollback from canary", "rollback")
                swiftdeploy(project, "promote", "canary")
                with SteadyLoad(run.url, threads=1, pause=0.05):  # the canary gate reads a window of its traffic
                    run.time("promote stable", "promote", "stable", window=WINDOW_SECONDS)
                manifest = project / "manifest.yaml"
                manifest.write_text(set_fields(manifest.read_text(), {"services.canary.version": "1.2.0"}))
                swiftdeploy(project, "promote", "canary")
                with SteadyLoad(run.url, threads=1, pause=0.05):
                    run.time("rollback, promote stable SIGKILLed after step 1", "rollback", kill_first=True)
                for label, rows in run.rows.items():
                    results.setdefault(label, []).extend(rows)
            finally:
                remove_everything(project)
    print(f"machine: {platform.node()}, {os.cpu_count()} cpus, {platform.platform()}, "
          f"engine: {os.environ.get('SWIFTDEPLOY_ENGINE', 'docker')}, Python {platform.python_version()}")
    print(f"command: {' '.join(sys.argv)}  (medians of {runs} runs; 3 no-change deploys in each)")
    print(f"{'operation':<50} {'ours':>7} {'floor':>7} {'ratio':>6}")
    for label, rows in results.items():
        ours, floor = statistics.median(r[0] for r in rows), statistics.median(r[1] for r in rows)
        print(f"{label:<50} {ours:>6.2f}s {floor:>6.2f}s {ours / floor:>5.2f}x")


if __name__ == "__main__":
    main()
