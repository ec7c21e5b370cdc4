"""The rendered nginx.conf, run by a real nginx against two loopback upstreams standing in for the tracks.

Only the addresses are rewritten (compose service names do not resolve on the host); every other
directive is the generated one.
"""

import base64
import dataclasses
import hashlib
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from swiftdeploy.model.manifest import load_manifest
from swiftdeploy.converge import proxy
from swiftdeploy.render.templates import generation_of, render

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Track:
    """A tiny app standing in for one track: answers JSON naming itself; can be told to be slow. Like a
    third-party app it says nothing about its track in its headers, or (claims) something wrong: nginx marks
    which track answered."""

    def __init__(self, name: str, claims: str | None = None):
        self.name, self.delay, self.hits, self.claims = name, 0.0, 0, claims
        track = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # one request per connection: stop() really ends the track

            def do_GET(self):
                track.hits += 1
                time.sleep(track.delay)
                received = len(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                body = json.dumps({"track": track.name, "received": received}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if track.claims:
                    self.send_header("X-Mode", track.claims)
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class WebSocketEcho:
    """A WebSocket server standing in for a track (RFC 6455): accepts the upgrade, echoes each text frame."""

    GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(connection,), daemon=True).start()

    def _echo(self, connection):
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(4096)
            key = re.search(rb"(?i)sec-websocket-key: *(\S+)", request)[1]
            accept = base64.b64encode(hashlib.sha1(key + self.GUID).digest())
            connection.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            while True:
                payload = read_frame(connection)
                if payload is None:
                    return
                connection.sendall(bytes([0x81, len(payload)]) + payload)  # unmasked, as a server sends

    def stop(self):
        self.listener.close()


def read_frame(connection) -> bytes | None:
    """One small WebSocket frame's payload (unmasked when masked), or None when the peer closed."""
    head = connection.recv(2)
    if len(head) < 2 or head[0] & 0x0F == 0x8:
        return None
    length, masked = head[1] & 0x7F, head[1] & 0x80
    mask = connection.recv(4) if masked else b"\0\0\0\0"
    payload = b""
    while len(payload) < length:
        payload += connection.recv(length - len(payload))
    return bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class LiveNginx:
    def __init__(self, workdir: Path, text: str, stable: Track, canary: Track):
        self.nginx = nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        self.workdir, self.tracks = workdir, (stable, canary)
        self.port = free_port()
        self.log = workdir / "access.log"
        self.conf = workdir / "nginx.conf"
        self.conf.write_text(self.localize(text))
        check = subprocess.run([nginx, "-t", "-c", str(self.conf)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        # In its container nginx runs as one unprivileged user, so its workers reach the tracks' sockets its
        # master created; here the master is root, and so must the workers be.
        self.process = subprocess.Popen([nginx, "-c", str(self.conf), "-g", "daemon off; user root;"],
                                        stderr=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()  # the fixture never got it to stop
        raise AssertionError(f"nginx did not start: {self.process.stderr.read()[-500:]}")

    def localize(self, text: str) -> str:
        """The generated config with container names, port and paths pointed at this test's loopback."""
        stable, canary = self.tracks
        return (text.replace("/var/tmp/swiftdeploy-access.log", "@@LOG@@")
                    .replace("/var/tmp/", "@@VARTMP@@")
                    .replace("/tmp/", f"{self.workdir}/")
                    .replace("@@LOG@@", str(self.log))
                    .replace("@@VARTMP@@", f"{self.workdir}/")
                    .replace("app-stable:3000", f"127.0.0.1:{stable.port}")
                    .replace("app-canary:3000", f"127.0.0.1:{canary.port}")
                    .replace("listen 8080;", f"listen 127.0.0.1:{self.port};"))

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


class HostRuntime:
    """Stands in for ComposeRuntime.exec: runs the nginx commands proxy.reload sends on the live nginx."""

    def __init__(self, live: LiveNginx):
        self.live = live

    def exec(self, service, command):
        assert service == "nginx"
        # the same argv, the container's paths pointed at this test's (inside `sh -c` scripts too)
        command = [self.live.nginx if part == "nginx" else
                   part.replace(proxy.CONFIG, str(self.live.conf)).replace("nginx -", f"{self.live.nginx} -")
                   for part in command]
        return subprocess.run(command, capture_output=True, text=True, timeout=30)


@pytest.fixture
def tracks():
    stable, canary = Track("stable"), Track("canary")
    yield stable, canary
    stable.stop()
    canary.stop()


@pytest.fixture
def serve(tmp_path, tracks):
    started = []

    def start(manifest):
        if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
            pytest.fail("nginx is not installed (scripts/setup installs Debian's nginx-light)")
        live = LiveNginx(tmp_path, render("nginx.conf", manifest, ROOT / "templates"), *tracks)
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()


def manifest_in(mode="stable", weight=100, timeout=30):
    m = load_manifest(ROOT / "manifest.yaml")
    services = dataclasses.replace(m.services, mode=mode, canary=dataclasses.replace(m.services.canary, weight=weight))
    return dataclasses.replace(m, services=services, nginx=dataclasses.replace(m.nginx, proxy_timeout=timeout))


def fresh_get(url, **kwargs):
    return requests.get(url, headers={"Connection": "close"}, timeout=10, **kwargs)


def test_stable_mode_sends_everything_to_stable_with_the_deployed_by_header(serve, tracks):
    live = serve(manifest_in())
    answers = [fresh_get(live.url + "/") for _ in range(20)]
    assert {r.json()["track"] for r in answers} == {"stable"}
    assert all(r.headers["X-Deployed-By"] == "swiftdeploy" for r in answers)
    assert re.fullmatch(r"[0-9a-f]{12}", answers[0].headers["X-Config-Generation"])


def test_canary_weight_splits_traffic_exactly_and_chaos_goes_to_the_canary(serve, tracks):
    live = serve(manifest_in("canary", weight=20))
    answers = [fresh_get(live.url + "/").json()["track"] for _ in range(200)]
    share = answers.count("canary") / len(answers)
    assert 0.15 <= share <= 0.25, share
    chaos = requests.post(live.url + "/chaos", json={"mode": "recover"}, timeout=10)
    assert chaos.json()["track"] == "canary" and chaos.headers["X-Mode"] == "canary"


def test_new_clients_are_split_exactly_by_weight_and_get_a_position_on_their_side(serve, tracks):
    live = serve(manifest_in("canary", weight=20))
    answers = [fresh_get(live.url + "/") for _ in range(500)]
    served = [r.json()["track"] for r in answers]
    assert served.count("canary") == 100  # the weighted pool is exact, not a coin toss
    for answer, track in zip(answers, served):
        position = int(answer.cookies["swiftdeploy_split"])
        assert (position < 20) == (track == "canary"), (position, track)


def client_on(live, track: str) -> requests.Session:
    """A cookie-keeping client that landed on `track`."""
    while True:
        session = requests.Session()
        if session.get(live.url + "/", timeout=10).json()["track"] == track:
            return session


def test_a_client_with_the_cookie_stays_on_its_track_and_only_moves_to_the_canary_as_the_weight_rises(
        serve, tracks, tmp_path):
    live = serve(manifest_in("canary", weight=20))
    canary_clients = [client_on(live, "canary") for _ in range(5)]
    stable_clients = [client_on(live, "stable") for _ in range(40)]
    for client in canary_clients + stable_clients:
        assert client.get(live.url + "/", timeout=10).json()["track"] == client.get(live.url + "/").json()["track"]
    moved_before = set()
    for weight in (50, 80, 100):
        live.conf.write_text(live.localize(render("nginx.conf", manifest_in("canary", weight=weight), ROOT / "templates")))
        proxy.reload(HostRuntime(live), live.url, generation_of(render("nginx.conf", manifest_in("canary", weight=weight),
                                                                           ROOT / "templates")))
        for client in canary_clients:
            assert {client.get(live.url + "/", timeout=10).json()["track"] for _ in range(3)} == {"canary"}
        moved = set()
        for number, client in enumerate(stable_clients):
            seen = {client.get(live.url + "/", timeout=10).json()["track"] for _ in range(3)}
            assert len(seen) == 1, f"a client flipped between tracks at weight {weight}: {seen}"
            position = int(client.cookies["swiftdeploy_split"])
            assert seen == {"canary" if position < weight else "stable"}
            if seen == {"canary"}:
                moved.add(number)
        assert moved >= moved_before  # never back to stable
        moved_before = moved
    assert len(moved_before) == 40  # at 100 every client is on the canary


def test_nginx_marks_the_track_that_answered_whatever_the_app_claims(serve, tracks):
    stable, canary = tracks
    stable.claims, canary.claims = "canary", "stable"  # an app with its own idea of X-Mode
    live = serve(manifest_in("canary", weight=50))
    answers = [fresh_get(live.url + "/") for _ in range(40)]
    assert all(r.headers[proxy.PIN_HEADER] == r.json()["track"] for r in answers)
    assert {r.json()["track"] for r in answers} == {"stable", "canary"}
    # The canary says X-Mode: canary for any app (SPEC A-5), over its app's "stable"; stable passes its app's
    # own X-Mode through (N-3): here the app's false "canary", and nothing from an app that sends none.
    assert {r.headers["X-Mode"] for r in answers} == {"canary"}
    stable.claims = None
    pinned = [requests.get(live.url + "/", headers={"Connection": "close", proxy.PIN_HEADER: "stable"}, timeout=10)
              for _ in range(5)]
    assert all("X-Mode" not in r.headers and r.headers[proxy.PIN_HEADER] == "stable" for r in pinned)


def test_the_pin_header_beats_the_cookie(serve, tracks):
    live = serve(manifest_in("canary", weight=50))
    client = client_on(live, "canary")
    answer = client.get(live.url + "/", headers={proxy.PIN_HEADER: "stable"}, timeout=10)
    assert answer.json()["track"] == "stable"


def test_a_malformed_cookie_is_replaced_and_the_request_goes_by_weight(serve, tracks):
    live = serve(manifest_in("canary", weight=50))
    answer = fresh_get(live.url + "/", cookies={"swiftdeploy_split": "x<script>"})
    assert answer.status_code == 200 and re.fullmatch(r"[0-9]{2}", answer.cookies["swiftdeploy_split"])


def test_stable_mode_sets_no_split_cookie(serve, tracks):
    live = serve(manifest_in())
    assert "Set-Cookie" not in fresh_get(live.url + "/").headers


def test_the_request_log_carries_what_the_split_and_the_exact_p99_need(serve, tracks):
    live = serve(manifest_in("canary", weight=50))
    for _ in range(4):
        fresh_get(live.url + "/")
    time.sleep(0.2)
    records = [json.loads(line) for line in (live.workdir / "swiftdeploy-requests.jsonl").read_text().splitlines()]
    assert len(records) == 4
    assert {r["mode"] for r in records} == {"canary", "stable"} and {r["s"] for r in records} == {200}
    assert all(isinstance(r["t"], float) and isinstance(r["rt"], float) and r["uri"] == "/" for r in records)


def test_full_weight_canary_falls_back_to_stable_when_the_canary_dies(serve, tracks):
    stable, canary = tracks
    live = serve(manifest_in("canary", weight=100))
    assert {fresh_get(live.url + "/").json()["track"] for _ in range(10)} == {"canary"}
    canary.stop()
    answers = [fresh_get(live.url + "/") for _ in range(10)]
    assert [r.status_code for r in answers] == [200] * 10
    assert {r.json()["track"] for r in answers} == {"stable"}


def test_metrics_are_not_reachable_through_the_public_port(serve, tracks):
    live = serve(manifest_in())
    answer = fresh_get(live.url + "/metrics")
    assert answer.status_code == 404 and answer.json()["code"] == 404
    assert tracks[0].hits == 0


def test_a_dead_upstream_answers_json_502(serve, tracks):
    stable, _ = tracks
    live = serve(manifest_in())
    stable.stop()
    answer = fresh_get(live.url + "/")
    assert answer.status_code == 502
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json() == {"error": "Bad Gateway", "code": 502, "service": "app", "contact": "ops@example.com"}
    assert answer.headers["X-Deployed-By"] == "swiftdeploy"


def test_a_slow_upstream_past_proxy_timeout_answers_json_504(serve, tracks):
    stable, _ = tracks
    stable.delay = 2.5
    live = serve(manifest_in(timeout=1))
    answer = fresh_get(live.url + "/")
    assert answer.status_code == 504 and answer.json()["code"] == 504


def test_a_body_up_to_max_body_passes_and_a_bigger_one_is_refused(serve, tracks):
    m = manifest_in()
    live = serve(dataclasses.replace(m, nginx=dataclasses.replace(m.nginx, max_body="2m")))
    upload = requests.post(live.url + "/", data=b"x" * 1_000_000, timeout=10)
    assert upload.status_code == 200 and upload.json() == {"track": "stable", "received": 1_000_000}
    assert requests.post(live.url + "/", data=b"x" * 3_000_000, timeout=10).status_code == 413


def test_a_websocket_on_a_websocket_path_is_passed_through_both_ways(tmp_path, tracks):
    stable, canary = tracks
    echo = WebSocketEcho()
    m = manifest_in()
    manifest = dataclasses.replace(m, nginx=dataclasses.replace(m.nginx, websocket_paths=("/ws",), websocket_idle_seconds=600))
    live = LiveNginx(tmp_path, render("nginx.conf", manifest, ROOT / "templates"), echo, canary)
    try:
        with socket.create_connection(("127.0.0.1", live.port), timeout=10) as client:
            key = base64.b64encode(b"0123456789abcdef")
            client.sendall(b"GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n\r\n")
            answer = b""
            while b"\r\n\r\n" not in answer:
                answer += client.recv(4096)
            assert answer.startswith(b"HTTP/1.1 101"), answer
            assert b"X-SwiftDeploy-Track: stable" in answer  # nginx marks the track here too
            for text in (b"hello", b"again"):
                mask = b"\x01\x02\x03\x04"
                client.sendall(bytes([0x81, 0x80 | len(text)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(text)))
                assert read_frame(client) == text
    finally:
        live.stop()
        echo.stop()


def test_an_oversized_body_is_refused_with_json_413(serve, tracks):
    live = serve(manifest_in("canary"))
    answer = requests.post(live.url + "/chaos", data=b"x" * 100_000, timeout=10)
    assert answer.status_code == 413 and answer.json()["code"] == 413


def test_the_access_log_has_the_required_format(serve, tracks):
    live = serve(manifest_in())
    fresh_get(live.url + "/healthz?probe=1")
    time.sleep(0.2)
    line = live.log.read_text().splitlines()[-1]
    pattern = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d \| 200 \| \d+\.\d{3}s \| 127\.0\.0\.1:\d+ \| GET /healthz\?probe=1 HTTP/1\.1"
    assert re.fullmatch(pattern, line), line


def test_a_reload_counts_only_once_the_new_generation_is_served(serve, tracks):
    live = serve(manifest_in())
    new_text = render("nginx.conf", manifest_in("canary", weight=50), ROOT / "templates")
    live.conf.write_text(live.localize(new_text))
    proxy.reload(HostRuntime(live), live.url, generation_of(new_text))
    assert fresh_get(live.url + "/").headers["X-Config-Generation"] == generation_of(new_text)


def test_a_reload_nginx_cannot_apply_fails_and_the_old_config_keeps_serving(serve, tracks):
    live = serve(manifest_in())
    old_generation = fresh_get(live.url + "/").headers["X-Config-Generation"]
    with socket.socket() as taken:  # nginx -t and -s reload both exit 0 for this; only the header tells
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        new_text = render("nginx.conf", manifest_in("canary", weight=50), ROOT / "templates")
        localized = live.localize(new_text).replace(
            f"listen 127.0.0.1:{live.port};", f"listen 127.0.0.1:{live.port};\n        listen 127.0.0.1:{taken.getsockname()[1]};")
        live.conf.write_text(localized)
        with pytest.raises(proxy.ProxyError, match=f"still serves config generation {old_generation}"):
            proxy.reload(HostRuntime(live), live.url, generation_of(new_text), confirm_seconds=1.5)
    answer = fresh_get(live.url + "/")
    assert answer.status_code == 200 and answer.headers["X-Config-Generation"] == old_generation


def test_a_config_nginx_t_refuses_is_never_loaded_and_says_why(serve, tracks):
    live = serve(manifest_in())
    old_generation = fresh_get(live.url + "/").headers["X-Config-Generation"]
    new_text = render("nginx.conf", manifest_in("canary", weight=50), ROOT / "templates")
    live.conf.write_text(live.localize(new_text).replace("keepalive_timeout", "keepalive_timeout_typo", 1))
    with pytest.raises(proxy.ProxyError, match=r'^nginx -t refused the new config: .*unknown directive "keepalive_timeout_typo"'):
        proxy.reload(HostRuntime(live), live.url, generation_of(new_text), confirm_seconds=1.5)
    answer = fresh_get(live.url + "/")
    assert answer.status_code == 200 and answer.headers["X-Config-Generation"] == old_generation
