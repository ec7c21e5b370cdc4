"""The real server: gunicorn with app/gunicorn.conf.py, app/healthcheck and app/scrape (SPEC A-7, C-2)."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from app_testkit import APP_DIR, REPO, TOKEN, VENV_PYTHON
from prometheus_client.parser import text_string_to_metric_families

GUNICORN = REPO / ".venv" / "bin" / "gunicorn"
CONFIG = APP_DIR / "gunicorn.conf.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None, timeout=10):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def app_env(port: int, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN", "MODE", "CHAOS", "APP_"))}
    env.update(APP_PORT=str(port), **extra)
    return env


class Server:
    def __init__(self, port: int, proc: subprocess.Popen, log: Path):
        self.port, self.proc, self.log = port, proc, log

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=35)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_gunicorn(tmp_path: Path, **env) -> Server:
    """Start gunicorn on a free port; retry with another port if one was taken meanwhile."""
    for attempt in range(3):
        port = free_port()
        log = tmp_path / f"gunicorn-{attempt}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(GUNICORN), "--config", str(CONFIG)],
                env=app_env(port, **env),
                cwd=tmp_path,  # not app/: the config must find the package on its own
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        server = Server(port, proc, log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if request(port, "GET", "/healthz", timeout=2)[0] == 200:
                    return server
            except OSError:
                pass
            time.sleep(0.1)
        server.stop()
    raise AssertionError(f"gunicorn did not become healthy:\n{log.read_text()}")


@pytest.fixture
def server(tmp_path):
    srv = start_gunicorn(tmp_path, MODE="canary", CHAOS_TOKEN=TOKEN, APP_VERSION="4.5.6")
    yield srv
    srv.stop()
    assert srv.proc.returncode == 0, srv.log.read_text()


def run_script(name: str, port: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_PYTHON), str(APP_DIR / name)],
        env=app_env(port),
        capture_output=True,
        timeout=30,
    )


def chaos(port: int, body: dict, token: str = TOKEN):
    return request(
        port, "POST", "/chaos", json.dumps(body).encode(), {"Content-Type": "application/json", "X-Chaos-Token": token}
    )


def total(text: str, name: str, **labels) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def counter(text: str, method: str, path: str, status: str) -> float:
    return total(text, "http_requests_total", method=method, path=path, status_code=status)


def test_gunicorn_serves_the_app_with_one_consistent_chaos_state(server):
    port = server.port
    status, headers, body = request(port, "GET", "/")
    assert status == 200 and headers["X-Mode"] == "canary"
    assert json.loads(body)["version"] == "4.5.6"

    # slow chaos: 8 concurrent requests each sleep 1 s; done in ~1 s, so several threads served them
    assert chaos(port, {"mode": "slow", "duration": 1})[0] == 200
    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: request(port, "GET", "/")[0], range(8)))
    elapsed = time.monotonic() - started
    assert results == [200] * 8
    assert 1.0 <= elapsed < 6.0, f"8 slow requests took {elapsed:.2f} s: not served concurrently"

    # error chaos set through one thread is seen by every thread
    status, _, body = chaos(port, {"mode": "error", "rate": 1.0})
    assert status == 200 and json.loads(body)["previous"] == {"mode": "slow", "duration": 1.0}
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: request(port, "GET", "/"), range(64)))
    assert [r[0] for r in results] == [500] * 64
    assert all(r[1]["X-Mode"] == "canary" for r in results)
    assert request(port, "GET", "/healthz")[0] == 200

    healthcheck = run_script("healthcheck", port)
    assert healthcheck.returncode == 0, healthcheck.stderr
    scrape = run_script("scrape", port)
    assert scrape.returncode == 0, scrape.stderr
    text = scrape.stdout.decode()
    assert counter(text, "GET", "/", "500") == 64
    assert counter(text, "GET", "/", "200") == 9
    assert "chaos_active 2.0" in text and "app_mode 1.0" in text

    assert chaos(port, {"mode": "recover"})[0] == 200
    assert request(port, "GET", "/")[0] == 200


def test_gunicorn_rejects_bad_input_with_json(server):
    port = server.port
    status, headers, body = chaos(port, {"mode": "error", "rate": 1.0}, token="nope")
    assert status == 401 and headers["X-Mode"] == "canary"
    status, headers, body = request(
        port, "POST", "/chaos", b'{"mode": "slow", "duration": 61}',
        {"Content-Type": "application/json", "X-Chaos-Token": TOKEN},
    )  # fmt: skip
    assert status == 400 and json.loads(body)["field"] == "duration"
    # oversized, with a Content-Length and chunked (no Content-Length)
    big = json.dumps({"mode": "recover", "pad": "x" * 10_000}).encode()
    hdrs = {"Content-Type": "application/json", "X-Chaos-Token": TOKEN}
    status, headers, body = request(port, "POST", "/chaos", big, hdrs)
    assert status == 413 and json.loads(body)["code"] == 413 and headers["X-Mode"] == "canary"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/chaos", body=iter([big[:5000], big[5000:]]), headers=hdrs, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 413, response.read()
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    small = json.dumps({"mode": "recover"}).encode()
    conn.request("POST", "/chaos", body=iter([small[:5], small[5:]]), headers=hdrs, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 200, response.read()  # a chunked body under the limit is read whole
    conn.close()
    status, headers, body = request(port, "GET", "/does-not-exist")
    assert status == 404 and json.loads(body) == {"error": "no route for /does-not-exist", "code": 404}


def test_invalid_mode_stops_gunicorn_with_one_line(tmp_path):
    result = subprocess.run(
        [str(GUNICORN), "--config", str(CONFIG)],
        env=app_env(free_port(), MODE="blue"),
        cwd=tmp_path,
        capture_output=True,
        timeout=30,
    )
    assert result.returncode != 0
    err = result.stderr.decode()
    assert err.strip() == "swiftdeploy-app: MODE must be 'stable' or 'canary', got 'blue'"


def test_healthcheck_and_scrape_fail_when_nothing_listens():
    port = free_port()
    healthcheck = run_script("healthcheck", port)
    assert healthcheck.returncode == 1
    assert healthcheck.stderr.decode().startswith("unhealthy:")
    scrape = run_script("scrape", port)
    assert scrape.returncode == 1 and scrape.stdout == b""
    assert scrape.stderr.decode().startswith("scrape:")


def test_healthcheck_gives_up_after_two_seconds():
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(5)
        started = time.monotonic()
        result = run_script("healthcheck", listener.getsockname()[1])
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert 1.9 <= elapsed < 5, elapsed


def test_healthcheck_fails_on_a_non_200_answer():
    import http.server
    import threading

    class Unhealthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Unhealthy)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        result = run_script("healthcheck", httpd.server_address[1])
        scraped = run_script("scrape", httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert result.returncode == 1 and "503" in result.stderr.decode()
    assert scraped.returncode == 1 and "503" in scraped.stderr.decode()


# --- workers: one process per core, one chaos setting and one set of counts for them all (SPEC A-7) ---


def worker_pids(server: Server) -> set[int]:
    return {int(pid) for pid in Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()}


def await_workers(server: Server, count: int) -> set[int]:
    """The worker pids once `count` workers have started the app (gunicorn answers as soon as the first has)."""
    deadline = time.monotonic() + 20
    while True:
        pids = worker_pids(server)
        try:
            ready = {pid for pid in pids if any(os.readlink(fd).endswith("/chaos.state")
                                               for fd in Path(f"/proc/{pid}/fd").iterdir())}
        except FileNotFoundError:  # a worker gone meanwhile
            ready = set()
        if len(ready) >= count or time.monotonic() > deadline:
            return ready
        time.sleep(0.05)


def shared_dir(server: Server) -> Path:
    """Where the workers keep what they share: the folder of the chaos file a worker holds open (the master set
    it in its os.environ, which /proc/PID/environ does not show)."""
    worker = min(worker_pids(server))
    chaos_file = next(Path(os.readlink(fd)) for fd in Path(f"/proc/{worker}/fd").iterdir()
                      if os.readlink(fd).endswith("/chaos.state"))
    return chaos_file.parent


def per_worker(server: Server, name: str, **labels) -> dict[int, float]:
    """A sample's value in each worker's own metric file (what that worker counted)."""
    from prometheus_client.multiprocess import MultiProcessCollector

    values = {}
    for pid in worker_pids(server):
        files = [str(f) for f in shared_dir(server).glob(f"*_{pid}.db")]
        samples = [s for m in MultiProcessCollector.merge(files) for s in m.samples]
        values[pid] = sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))
    return values


@pytest.fixture
def two_workers(tmp_path):
    srv = start_gunicorn(tmp_path, MODE="canary", CHAOS_TOKEN=TOKEN, APP_VERSION="4.5.6", WORKERS="2")
    yield srv
    srv.stop()


def test_two_workers_share_one_chaos_setting_and_metrics_count_every_request_once(two_workers):
    port = two_workers.port
    assert len(await_workers(two_workers, 2)) == 2 == len(worker_pids(two_workers))
    assert chaos(port, {"mode": "error", "rate": 0.5})[0] == 200
    with concurrent.futures.ThreadPoolExecutor(8) as pool:  # a fresh connection each: the kernel spreads them
        statuses = list(pool.map(lambda _: request(port, "GET", "/")[0], range(2000)))
    assert set(statuses) == {200, 500}
    assert abs(statuses.count(500) / 2000 - 0.5) <= 0.05, statuses.count(500)

    # each worker applied the rate set through one of them
    served = per_worker(two_workers, "http_requests_total", path="/")
    failed = per_worker(two_workers, "http_requests_total", path="/", status_code="500")
    assert sum(served.values()) == 2000
    for pid, count in served.items():
        assert count >= 100, f"worker {pid} served {count} of 2000: the test shows nothing of it"
        assert abs(failed[pid] / count - 0.5) <= 5 * (0.25 / count) ** 0.5, (pid, failed[pid], count)

    # /metrics, whichever worker answers it, counts every request exactly once
    for _ in range(4):
        status, _, body = request(port, "GET", "/metrics")
        assert status == 200
        text = body.decode()
        assert total(text, "http_requests_total", path="/") == 2000
        assert total(text, "http_requests_total", path="/", status_code="500") == statuses.count(500)
        assert total(text, "http_request_duration_seconds_count", path="/") == 2000
        assert "chaos_active 2.0" in text and "app_mode 1.0" in text
        assert "# HELP http_requests_total HTTP requests answered" in text

    # slow chaos slows every worker: each one's requests all took longer than 0.94 s (the bucket below 1 s)
    assert chaos(port, {"mode": "slow", "duration": 1})[0] == 200
    before = per_worker(two_workers, "http_request_duration_seconds_count", path="/")
    quick_before = per_worker(two_workers, "http_request_duration_seconds_bucket", path="/", le="0.94")
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        assert set(pool.map(lambda _: request(port, "GET", "/")[0], range(48))) == {200}
    after = per_worker(two_workers, "http_request_duration_seconds_count", path="/")
    quick_after = per_worker(two_workers, "http_request_duration_seconds_bucket", path="/", le="0.94")
    assert all(after[pid] > before[pid] for pid in after), (before, after)
    assert quick_after == quick_before, "a worker answered a request quicker than the slow chaos allows"
    assert chaos(port, {"mode": "recover"})[0] == 200
    assert request(port, "GET", "/")[0] == 200


def test_workers_default_to_the_usable_cpus_and_the_shared_files_go_with_the_server(tmp_path):
    from swiftdeploy_app.settings import usable_cpus

    srv = start_gunicorn(tmp_path, MODE="stable")
    try:
        assert len(await_workers(srv, usable_cpus() + 1)) == usable_cpus() == len(worker_pids(srv))
        shared = shared_dir(srv)
        assert shared.is_dir() and shared.stat().st_mode & 0o777 == 0o700
    finally:
        srv.stop()
    assert srv.proc.returncode == 0 and not shared.exists()


@pytest.mark.parametrize("workers", ["0", "65", "two", ""])
def test_a_bad_workers_value_stops_gunicorn_with_one_line_and_leaves_nothing(tmp_path, workers):
    before = set(Path("/dev/shm").glob("swiftdeploy-app-*"))
    result = subprocess.run([str(GUNICORN), "--config", str(CONFIG)], env=app_env(free_port(), WORKERS=workers),
                            cwd=tmp_path, capture_output=True, timeout=30)
    assert result.returncode != 0
    assert result.stderr.decode().strip() == f"swiftdeploy-app: WORKERS must be 'auto' or an integer 1-64, got {workers!r}"
    assert set(Path("/dev/shm").glob("swiftdeploy-app-*")) == before
