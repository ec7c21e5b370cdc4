"""The HTTP health probe (tools/health-probe) against local servers: the exit status, the one line it prints
for Docker's health log, the request it sends, and that it never follows a redirect nor waits past its timeout."""

import http.server
import socket
import subprocess
import threading
import time

import pytest

from probekit import built_probe


@pytest.fixture(scope="session")
def probe():
    return built_probe()


def run_probe(probe, *args, timeout=15):
    return subprocess.run([str(probe), *args], capture_output=True, text=True, timeout=timeout)


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers GET /status/CODE with CODE (a 301 points at /followed); remembers every request."""
    requests = []  # (path, headers), shared by the server's threads

    def do_GET(self):
        type(self).requests.append((self.path, dict(self.headers)))
        code = int(self.path.rsplit("/", 1)[1]) if self.path.startswith("/status/") else 200
        body = f"{code}\n".encode()
        self.send_response(code)
        if code == 301:
            self.send_header("Location", "/followed")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    Recorder.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", Recorder.requests
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def raw_server():
    """A TCP server answering each connection with the bytes given, then holding it open (a server that
    ignores Connection: close) until the test ends, or closing it with hold=False. None: accept nothing."""
    sockets = []

    def start(answer, hold=True):
        listener = socket.create_server(("127.0.0.1", 0), backlog=8)
        sockets.append(listener)
        if answer is not None:
            def serve():
                while True:
                    try:
                        conn, _ = listener.accept()
                    except OSError:
                        return
                    sockets.append(conn)
                    try:
                        conn.recv(65536)
                        conn.sendall(answer)
                    except OSError:  # the probe closed first (it reads at most 64 KB of a huge body)
                        pass
                    if not hold:
                        conn.close()
            threading.Thread(target=serve, daemon=True).start()
        return f"http://127.0.0.1:{listener.getsockname()[1]}"

    yield start
    for sock in sockets:
        sock.close()


@pytest.mark.parametrize("code, status", [(200, 0), (204, 0), (301, 0), (302, 0), (404, 1), (500, 1), (503, 1)])
def test_the_status_decides_and_is_the_line(probe, server, code, status):
    url, requests = server
    result = run_probe(probe, f"{url}/status/{code}")
    assert (result.returncode, result.stdout, result.stderr) == (status, f"GET /status/{code}: {code}\n", "")
    assert [path for path, _ in requests] == [f"/status/{code}"]  # one request: a redirect is not followed


def test_the_request_sends_the_host_given_and_says_who_it_is(probe, server):
    url, requests = server
    result = run_probe(probe, f"{url}/healthz?deep=1", "--host=example.com", "--timeout=3")
    assert (result.returncode, result.stdout) == (0, "GET /healthz?deep=1: 200\n")
    (path, headers), = requests
    assert path == "/healthz?deep=1"
    assert headers["Host"] == "example.com"
    assert headers["User-Agent"] == "swiftdeploy-health"
    assert headers["Connection"] == "close"


def test_without_host_the_host_is_the_url_s(probe, server):
    url, requests = server
    result = run_probe(probe, url)  # no path: GET /
    assert (result.returncode, result.stdout) == (0, "GET /: 200\n")
    assert requests[0][1]["Host"] == url.removeprefix("http://")


def test_a_closed_port_is_connection_refused(probe):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the probe runs
    result = run_probe(probe, f"http://127.0.0.1:{port}/healthz")
    assert (result.returncode, result.stdout) == (1, "GET /healthz: connection refused\n")


def test_a_server_that_never_answers_times_out(probe, raw_server):
    url = raw_server(None)  # the kernel completes the connection; nobody reads or writes
    start = time.monotonic()
    result = run_probe(probe, f"{url}/healthz", "--timeout=1")
    took = time.monotonic() - start
    assert (result.returncode, result.stdout) == (1, "GET /healthz: timed out after 1 s\n")
    assert 0.9 <= took < 2, f"took {took:.2f} s"


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
])
def test_a_server_that_keeps_the_connection_open_is_not_waited_for(probe, raw_server, answer):
    """The body is framed by Content-Length or chunks: the probe stops at its end, not at the timeout."""
    start = time.monotonic()
    result = run_probe(probe, f"{raw_server(answer)}/", "--timeout=5")
    assert (result.returncode, result.stdout) == (0, "GET /: 200\n")
    assert time.monotonic() - start < 2


def test_a_huge_body_is_not_read(probe, raw_server):
    """At most 64 KB of the rest is discarded; then the probe closes, with the answer it has."""
    start = time.monotonic()
    url = raw_server(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * (8 << 20))  # delimited by a close that never comes
    result = run_probe(probe, f"{url}/", "--timeout=5")
    assert (result.returncode, result.stdout) == (0, "GET /: 200\n")
    assert time.monotonic() - start < 2


@pytest.mark.parametrize("answer, line", [
    (b"", "GET /: connection closed without a response"),
    (b"SSH-2.0-OpenSSH_9.2\r\n", 'GET /: not an HTTP response: "SSH-2.0-OpenSSH_9.2"'),
])
def test_a_server_that_does_not_speak_http_fails(probe, raw_server, answer, line):
    result = run_probe(probe, f"{raw_server(answer, hold=False)}/", "--timeout=3")
    assert (result.returncode, result.stdout) == (1, line + "\n")


@pytest.mark.parametrize("args, problem", [
    ([], "no URL"),
    (["https://127.0.0.1/"], "not http://"),
    (["127.0.0.1:3000/healthz"], "not http://"),
    (["http://127.0.0.1:99999/"], "bad port"),
    (["http:///healthz"], "no host"),
    (["http://127.0.0.1/", "--timeout=0"], "bad --timeout"),
    (["http://127.0.0.1/", "--timeout=soon"], "bad --timeout"),
    (["http://127.0.0.1/", "--timeout", "3"], "unknown option"),  # exec form: --timeout=3, no space
    (["http://127.0.0.1/", "--host="], "bad --host"),
    (["http://127.0.0.1/", "http://127.0.0.2/"], "more than one URL"),
])
def test_bad_arguments_exit_2_with_one_line(probe, args, problem):
    result = run_probe(probe, *args)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and problem in result.stderr and "usage: health-probe" in result.stderr
