"""Helpers for the end-to-end tests: a project copy with its own names and ports, the real engine, load.

Each test project gets its own compose project, network, log volume and ports, so e2e runs never touch
another stack on the machine. Its policy data is a test copy: a 5 s metrics window (the article's 30 s
would make every gate wait 30 s) and a load limit these 2-core machines do not reach right after image
builds (ENVIRONMENT.md). The production values stay in policies/data.json and are tested by opa test.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import yaml

from projectkit import copy_project

WINDOW_SECONDS = 5


def require_engine() -> None:
    """Fail (never skip) when there is no engine: a skipped e2e test would hide it."""
    from swiftdeploy.engine.api import client
    from swiftdeploy.errors import SwiftDeployError

    try:
        client()
    except SwiftDeployError as err:
        pytest.fail(f"the e2e tests need a container engine: {err}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return sock.getsockname()[1]


def make_project(directory: Path, canary: dict | None = None) -> Path:
    project = copy_project(directory)
    name = f"sde2e{secrets.token_hex(3)}"
    manifest = project / "manifest.yaml"
    text = manifest.read_text()
    canary_lines = "".join(f"    {key}: {json.dumps(value)}\n" for key, value in (canary or {}).items())
    text = (text.replace("port: 8080", f"port: {free_port()}")
                .replace("name: swiftdeploy-net", f"name: {name}-net")
                .replace("  mode: stable\n", f"  mode: stable\n  canary:\n    window_seconds: {WINDOW_SECONDS}\n"
                                              f"{canary_lines}"))
    text += f"project: {name}\nopa:\n  port: {free_port()}\nvolumes:\n  logs: {name}-logs\n"
    manifest.write_text(text)
    data_file = project / "policies" / "data.json"
    data = json.loads(data_file.read_text())
    data["canary"]["min_window_seconds"] = WINDOW_SECONDS
    data["infra"]["max_load_1m"] = 64.0
    data_file.write_text(json.dumps(data, indent=2) + "\n")
    return project


def swiftdeploy(project: Path, *words: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """./swiftdeploy in the project, as an operator types it."""
    return subprocess.run([sys.executable, str(project / "swiftdeploy"), *words], cwd=project,
                          capture_output=True, text=True, timeout=timeout)


def doit(project: Path, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "doit", *args], cwd=project, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def at_once(*commands):
    """Run the commands (functions of no argument) side by side; their results, in order. Commands that
    each read a metrics window of their own then take one window together, not one each."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return [started.result() for started in [pool.submit(command) for command in commands]]


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def manifest_of(project: Path):
    from swiftdeploy.model.manifest import load_manifest

    return load_manifest(project / "manifest.yaml")


def public_url(project: Path) -> str:
    return f"http://127.0.0.1:{manifest_of(project).nginx.port}"


def history(project: Path) -> list[dict]:
    from swiftdeploy.evidence.history import History

    return History(project / "reports" / "history.jsonl").read()


def containers(project_name: str) -> list:
    from swiftdeploy.engine.api import client

    return client().containers.list(all=True, filters={"label": f"com.docker.compose.project={project_name}"})


def remove_everything(project: Path) -> None:
    """Last-resort cleanup after a test, whatever state it left (a manifest the test made invalid too)."""
    import yaml

    name = yaml.safe_load((project / "manifest.yaml").read_text())["project"]
    done = subprocess.run([*_compose(), "-p", name, "down", "--volumes", "--remove-orphans"], capture_output=True,
                          text=True, timeout=180, cwd=project)
    assert done.returncode == 0, f"compose down of {name} after the test failed: {done.stderr[-800:]}"


def _compose():
    from swiftdeploy.engine.tools import compose_binary

    return compose_binary()


class SteadyLoad:
    """Requests through nginx from a few threads until stopped; counts every outcome.

    Each request uses a fresh connection (`Connection: close`): nginx before 1.27.4 closes idle
    keep-alive connections when it reloads, and a client that reuses one at that instant sees a reset
    that no server-side ordering can prevent (docs/architecture.md, "Reloads and keep-alive").
    """

    def __init__(self, url: str, threads: int = 3, pause: float = 0.01, verify: bool | str = True):
        self.url, self.pause, self.verify = url, pause, verify
        self.outcomes: Counter = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self):
        while not self._stop.is_set():
            outcome = self.ask()
            with self._lock:
                self.outcomes[outcome] += 1
            time.sleep(self.pause)

    def ask(self):
        """One request's outcome: its status, or the kind of connection error."""
        try:
            return requests.get(f"{self.url}/", headers={"Connection": "close"}, timeout=10, verify=self.verify).status_code
        except requests.RequestException as err:
            return f"connection error: {type(err).__name__}"

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())

    def failures(self) -> dict:
        return {k: v for k, v in self.outcomes.items() if k != 200}


class TimedLoad(SteadyLoad):
    """SteadyLoad that also keeps when each failed request was sent."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.failed_at: list[float] = []

    def ask(self):
        sent = time.monotonic()
        outcome = super().ask()
        if outcome != 200:
            self.failed_at.append(sent)
        return outcome


def journal_steps(project) -> int:
    try:
        lines = (project / ".swiftdeploy" / "journal.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return 0
    return sum(1 for line in lines if '"kind": "step"' in line)


def kill_promote_stable_after(project, steps: int, delay: float) -> str:
    """Start `promote stable`, SIGKILL it `delay` seconds after its journal holds `steps` completed steps."""
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, str(project / "swiftdeploy"), "promote", "stable"], cwd=project,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    while journal_steps(project) < steps and process.poll() is None and time.monotonic() - started < 120:
        time.sleep(0.02)
    time.sleep(delay)
    finished = process.poll() is not None
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return (f"killed after {steps} steps + {delay:.2f} s ({journal_steps(project)} steps journaled"
            f"{'; it had finished before the kill' if finished else ''})")


def nginx_errors(project: Path, last: int = 12, levels=("error", "crit", "alert", "emerg")) -> list[str]:
    """The last error lines of the stack's nginx (its error_log is its stderr): why a request failed."""
    import yaml

    from swiftdeploy.engine.api import client

    name = yaml.safe_load((project / "manifest.yaml").read_text())["project"]
    lines = []
    for container in containers(name):
        if container.labels.get("com.docker.compose.service") == "nginx":
            text = client().api.logs(container.id, stdout=False, stderr=True).decode(errors="replace")
            lines += [line for line in text.splitlines() if any(f"[{level}]" in line for level in levels)]
    return lines[-last:]


def dropped(load: SteadyLoad, project: Path) -> str:
    """A failed zero-drop assertion's message: the outcomes and what nginx said about the failures."""
    return "\n".join([str(dict(load.outcomes)), "nginx's last errors:", *nginx_errors(project)])


def keep_private(path: Path, text: str) -> None:
    """A file the user keeps for SwiftDeploy (a secret, registry credentials): 0600 in a private folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent.parent, 0o700)
    path.write_text(text)
    os.chmod(path, 0o600)


def edit_services(project: Path, **services) -> None:
    """Set manifest keys under services: (a__b=v sets services.a.b)."""
    document = yaml.safe_load((project / "manifest.yaml").read_text())
    for key, value in services.items():
        node = document["services"]
        *parents, last = key.split("__")
        for parent in parents:
            node = node.setdefault(parent, {})
        node[last] = value
    (project / "manifest.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
