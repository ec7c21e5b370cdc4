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


def counter(text: str, method: str, path: str, status: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "http_requests_total" and s.labels == {"method": method, "path": path, "status_code": status}:
                return s.value
    return 0.0


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
