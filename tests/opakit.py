"""A real OPA server and a loopback fake of one, for the tests that ask OPA.

The real server runs exactly as in production (token authentication, basic authorization through
policies/system/authz.rego), on a random loopback port. The fake (stdlib http.server) only stands in for
what a healthy OPA cannot be made to do on demand: 5xx, HTML, non-JSON, malformed decisions, hangs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from swiftdeploy.engine.tools import PROJECT_ROOT, opa_binary

POLICIES = PROJECT_ROOT / "policies"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_opa(log: Path, opa_token: str | None, policies: Path = POLICIES, *, writable: bool = False):
    """A real `opa run --server` with the production flags and a snapshot of `policies` as production makes
    it, on a random loopback port; yields its URL. `writable` loads the snapshot as plain files instead of
    a bundle, so set_infra_limits can change data on the fly (a bundle's paths are read-only to the API)."""
    from swiftdeploy.render.policy import write_snapshot

    opa = opa_binary()  # raises (the test fails) when OPA is missing: never a skip
    _, bundle = write_snapshot(policies, log.parent / f"{log.stem}-state")  # what production mounts
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPA_")}
    if opa_token is not None:
        env["OPA_TOKEN"] = opa_token
    for _attempt in range(3):  # another process may grab the free port before OPA binds it
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [opa, "run", "--server", f"--addr=127.0.0.1:{port}", "--authentication=token",
                 "--authorization=basic", "--log-level=error", *([] if writable else ["--bundle"]), str(bundle)],
                env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 15
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/health", timeout=0.5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.05)
        else:
            proc.kill()
            proc.wait(5)
            continue
        try:
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        return
    pytest.fail(f"OPA did not become healthy; its log:\n{log.read_text(errors='replace')}")


class FakeOpa(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self):
        super().__init__(("127.0.0.1", 0), FakeHandler)
        self.mode = ("json", 200, {"result": {"allow": True, "reasons": []}})
        self.requests: list[dict] = []
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class FakeHandler(BaseHTTPRequestHandler):
    server: FakeOpa

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        self.do_POST()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.requests.append({"method": self.command, "path": self.path, "body": body,
                                     "authorization": self.headers.get("Authorization")})
        kind, status, payload = self.server.mode
        if kind == "hang":  # accept, read the request, never answer
            self.server.release.wait(20)
            return
        if kind == "close":  # hang up without a word
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        data = json.dumps(payload).encode() if kind == "json" else payload
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if kind == "json" else "text/html")
        if kind == "redirect":
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
        self.send_header("Content-Length", str(len(data) + (100 if kind == "hang-body" else 0)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        if kind == "hang-body":  # headers and part of the body, then silence
            self.server.release.wait(20)


@contextlib.contextmanager
def fake_opa():
    """A FakeOpa serving on its own thread; set .mode to what it should answer."""
    server = FakeOpa()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()


def token_of(project: Path) -> str:
    """The OPA token `doit init` generated for a project copy."""
    return (project / ".swiftdeploy" / "opa.env").read_text().strip().partition("=")[2]


def set_infra_limits(opa_url: str, token: str, limits: dict) -> None:
    """Replace data.infra in a running OPA (the token may write data: policies/system/authz.rego)."""
    answer = requests.put(f"{opa_url}/v1/data/infra", json=limits, timeout=5,
                          headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 204, answer.text


def point_at(project: Path, url: str) -> None:
    """Point a project copy's manifest (its `opa:\n  port: N` lines) at the OPA answering at url."""
    manifest = project / "manifest.yaml"
    port = url.rsplit(":", 1)[1]
    manifest.write_text(re.sub(r"(?m)^opa:\n  port: \d+$", f"opa:\n  port: {port}", manifest.read_text()))
