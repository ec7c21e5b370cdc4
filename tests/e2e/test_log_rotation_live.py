"""nginx's logs rotate by size under load, and the gate's window that spans rotations counts every request."""

import json
import subprocess
import sys
import threading
import time

import pytest
import requests
import yaml

from stackkit import (WINDOW_SECONDS, SteadyLoad, containers, make_project, ok, public_url, remove_everything,
                      require_engine, swiftdeploy)

# Docker Engine only: the rotation is a shell in the nginx container, the same on every engine, and the test
# writes about 200 MB of logs; the Podman run exercises the same nginx command in every other test.
pytestmark = [pytest.mark.e2e]

MAX_MB, KEEP = 10, 2
GATE_WINDOW = 40
# a 4 KB query (gunicorn refuses request lines over 4094 bytes): each request writes about 8.2 KB to the two
# logs (the access log's request line, the request log's uri), so a few hundred a second fill 10 MB in seconds
PADDED = "/?pad=" + "x" * 4000
LINE_BYTES = 8_200


@pytest.fixture
def project(tmp_path):
    require_engine()
    project = make_project(tmp_path / "project", canary={"version": "1.1.0"})
    manifest = project / "manifest.yaml"
    text = manifest.read_text().replace(f"window_seconds: {WINDOW_SECONDS}", f"window_seconds: {GATE_WINDOW}")
    manifest.write_text(text + f"logs:\n  max_mb: {MAX_MB}\n  keep: {KEEP}\nmetrics:\n  source: nginx\n")
    yield project
    remove_everything(project)


class Burst(SteadyLoad):
    """Requests with a padded URI from 6 keep-alive clients, no pause; an outcome is (status, track)."""

    def __init__(self, url: str):
        super().__init__(url, threads=6, pause=0)
        self._sessions = threading.local()

    def __enter__(self):
        self.started = time.monotonic()
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self.seconds = time.monotonic() - self.started

    def ask(self):
        session = getattr(self._sessions, "session", None) or requests.Session()
        self._sessions.session = session
        try:
            answer = session.get(self.url + PADDED, timeout=10)
            return answer.status_code, answer.headers.get("X-SwiftDeploy-Track")
        except requests.RequestException as err:
            return type(err).__name__


def log_volume(project) -> tuple[int, list[str]]:
    """Bytes in nginx's log volume and its files, read inside the nginx container."""
    name = yaml.safe_load((project / "manifest.yaml").read_text())["project"]
    (nginx,) = [c for c in containers(name) if c.labels.get("com.docker.compose.service") == "nginx"]
    listing = nginx.exec_run(["sh", "-c", "du -sb /var/tmp | cut -f1; ls /var/tmp"]).output.decode().split()
    return int(listing[0]), sorted(listing[1:])


def test_logs_stay_under_their_bound_and_a_window_across_rotations_counts_every_request(project):
    ok(swiftdeploy(project, "deploy"))
    ok(swiftdeploy(project, "promote", "canary"))  # weight 100: every new client's request is the canary's
    url = public_url(project)
    bound = 2 * (KEEP + 1) * MAX_MB * 2**20

    samples, problems = [], []

    def watch(stop):
        while not stop.is_set():
            try:
                samples.append(log_volume(project)[0])
            except Exception as err:  # noqa: BLE001 - reported below: a dead watcher must not pass the bound
                problems.append(repr(err))
            time.sleep(0.5)

    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(stop,), daemon=True)
    watcher.start()
    try:
        with Burst(url) as before:  # fills the logs past several rotations before the gate's window
            while sum(before.outcomes.values()) * LINE_BYTES < 120 * 2**20 and time.monotonic() - before.started < 300:
                time.sleep(1)
        gate = subprocess.Popen([sys.executable, "-m", "doit", "canary-gate", "--format", "json"], cwd=project,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(8)  # the gate's first read of the log is well behind us
        with Burst(url) as during:
            time.sleep(GATE_WINDOW - 8 - 10)
        out, err = gate.communicate(timeout=120)
    finally:
        stop.set()
        watcher.join(timeout=10)
    _, files = log_volume(project)
    peak = [max(samples, default=0)]
    logged = (sum(before.outcomes.values()) + sum(during.outcomes.values())) * LINE_BYTES
    in_window = sum(during.outcomes.values()) * LINE_BYTES
    rate = max(logged - in_window, 0) / before.seconds  # the faster burst's
    print(f"\n{sum(before.outcomes.values())} + {sum(during.outcomes.values())} padded requests (~{logged / 2**20:.0f} MB "
          f"of log lines, {rate / 2**20:.1f} MB/s in the first burst, {in_window / 2**20:.0f} MB in the window); log volume peak {peak[0] / 2**20:.1f} MB, bound "
          f"{bound / 2**20:.0f} MB + 2 s of lines per file ({len(samples)} samples, {len(problems)} failed "
          f"{problems[:1]}); files {files}")
    # the first burst alone writes 120 MB: six rotations of each log at least, however fast this machine is
    assert logged >= 120 * 2**20, "the run wrote 120 MB of log lines"
    assert {"swiftdeploy-requests.jsonl.1", "swiftdeploy-requests.jsonl.2", "swiftdeploy-access.log.2"} <= set(files)
    assert f"swiftdeploy-requests.jsonl.{KEEP + 1}" not in files
    # each file is rotated within a second or two of passing max_mb; `rate` is both logs' growth together
    assert len(samples) > 60 and len(problems) <= 3, (len(samples), problems[:3])  # a transient exec error or two
    assert peak[0] >= 2 * KEEP * MAX_MB * 2**20, "the watcher saw the rotated files fill the volume"
    assert peak[0] <= bound + (KEEP + 1) * 2 * rate, "the volume stays under 2 x (keep + 1) x (max_mb + 2 s of lines)"
    assert set(during.outcomes) == {(200, "canary")}, during.outcomes
    assert in_window / 2 >= MAX_MB * 2**20, "each log rotated at least once within the gate's window"
    answer = json.loads(out)
    assert answer.get("input"), (answer, err[-2000:])
    assert answer["input"]["requests"] == during.outcomes[(200, "canary")], (answer["input"], err[-2000:])
