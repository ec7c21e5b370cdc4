"""The HTTP health probe (tools/health-probe) against local servers: the exit status, the one line it prints
for Docker's health log, the request it sends, that it never follows a redirect nor waits past its timeout, and
that whatever a server sends it answers with that one line (never a crash); and that it fits a Swarm config."""

import http.server
import socket
import struct
import subprocess
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
    ignores Connection: close) until the test ends, or closing it with hold=False. None: accept nothing.
    host="::1": on IPv6 loopback, the URL with the address in brackets (fails where there is none: the
    machine lacks what a user's container has)."""
    sockets = []

    def start(answer, hold=True, host="127.0.0.1"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            listener = socket.create_server((host, 0), family=family, backlog=8)
        except OSError as err:
            pytest.fail(f"no {host} to listen on: {err}")
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
        return f"http://{f'[{host}]' if family == socket.AF_INET6 else host}:{listener.getsockname()[1]}"

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
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"
    b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: yes\r\n\r\n",  # chunk extensions, a trailer
    b"HTTP/1.0 200 OK\nContent-Length: 2\n\nok",  # bare LF line ends
    b"HTTP/1.1 200 OK\r\nContent-Length: " + b"7" * 30 + b"\r\nContent-Length: 2\r\n\r\nok",  # the last one counts
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
    (b"SSH-2.0-OpenSSH_9.2", 'GET /: not an HTTP response: "SSH-2.0-OpenSSH_9.2"'),  # no line end, then closed
    # what the server sent is quoted as Go quotes it, cut at 40 bytes: no control character reaches the log
    (b"\x00\xff\x1b[31m\xc3\xa9\t\"\\\r\n", 'GET /: not an HTTP response: "\\x00\\xff\\x1b[31m\u00e9\\t\\"\\\\"'),
    (b"<html>" + b"x" * 100 + b"\r\n", 'GET /: not an HTTP response: "<html>' + "x" * 34 + '..."'),
    (b"HTTP/2 200 OK\r\n\r\n", 'GET /: not an HTTP response: "HTTP/2 200 OK"'),
    (b"HTTP/1.1 099 Low\r\n\r\n", 'GET /: not an HTTP response: "HTTP/1.1 099 Low"'),
    (b"HTTP/1.1 100 Continue\r\n\r\n", "GET /: connection closed without a response"),  # no final response
    (b"HTTP/1.1 100 Continue\r\nX-Half: a", "GET /: EOF"),  # closed inside the 100's headers
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


@pytest.mark.parametrize("answer, status, line", [
    (b"HTTP/1.1 200 " + b"x" * (8192 - 13) + b"\r\n\r\n", 0, "GET /: 200"),  # a status line of 8 KB is read
    (b"HTTP/1.1 200 " + b"x" * (8193 - 13) + b"\r\n\r\n", 1, "GET /: response line longer than 8 KB"),
    (b"HTTP/1.1 103 Hints\r\nLink: " + b"x" * 9000 + b"\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 1,
     "GET /: response line longer than 8 KB"),
    # after the final status line the rest is only drained: a header too long there does not change the answer
    (b"HTTP/1.1 503 Busy\r\nX-Big: " + b"x" * 9000 + b"\r\n\r\n", 1, "GET /: 503"),
    (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", 1, "GET /: 101"),  # 101 is final, not 2xx/3xx
    (b"HTTP/1.1 999 Odd\r\n\r\n", 1, "GET /: 999"),
])
def test_status_lines_at_the_limits(probe, raw_server, answer, status, line):
    result = run_probe(probe, f"{raw_server(answer, hold=False)}/", "--timeout=3")
    assert (result.returncode, result.stdout) == (status, line + "\n")


def test_an_ipv6_url_with_a_port(probe, raw_server):
    url = raw_server(b"HTTP/1.1 204 No Content\r\n\r\n", hold=False, host="::1")
    assert url.startswith("http://[::1]:")
    result = run_probe(probe, f"{url}/healthz", "--timeout=3")
    assert (result.returncode, result.stdout) == (0, "GET /healthz: 204\n")


class AnyAnswer:
    """One TCP server for many examples: each connection gets the current answer, then the close."""

    def __init__(self):
        self.answer = b""
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=8)
        self.listener.settimeout(0.05)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/"

    def serve(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(self.answer)
                except OSError:  # the probe closed first (it drops a line over 8 KB, a body over 64 KB)
                    pass

    def close(self):
        self.stopped.set()
        self.thread.join()
        self.listener.close()


@pytest.fixture(scope="module")
def any_answer():
    server = AnyAnswer()
    yield server
    server.close()


PIECES = [b"HTTP/1.1 ", b"HTTP/1.0 ", b"200", b"100", b"101", b"204", b"304", b"404", b" OK", b"\r\n", b"\n", b"\r",
          b"Content-Length: ", b"Transfer-Encoding: chunked", b"5", b"0", b"ffffffffffffffff", b";x", b":", b" ", b"\t",
          b"\x00", b"\xff", b"\xc4\xb0", b"\xe2\x84\xaa", b"\xc2\xa0", b"-", b"hello", b"x" * 4095, b"y" * 9000]
garbage = st.one_of(st.binary(max_size=600), st.lists(st.sampled_from(PIECES), max_size=40).map(b"".join))


@settings(max_examples=60, deadline=None, database=None, print_blob=False,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(answer=garbage)
def test_whatever_a_server_sends_the_probe_answers_one_line(probe, any_answer, answer):
    """Random and half-HTTP answers: exit 0 or 1 (never a signal, never 2), one UTF-8 line on stdout."""
    any_answer.answer = answer
    result = subprocess.run([str(probe), any_answer.url, "--timeout=2"], capture_output=True, timeout=15)
    assert result.returncode in (0, 1), (result.returncode, answer[:200])
    assert result.stderr == b""
    line = result.stdout.decode("utf-8")  # the log Docker keeps is JSON: the probe never prints broken UTF-8
    assert line.startswith("GET /: ") and line.endswith("\n") and line.count("\n") == 1, line
    assert all(c >= " " and c != "\x7f" for c in line[:-1]), line


def test_the_probe_fits_a_swarm_config_and_needs_no_loader(probe):
    """Swarm refuses a config over 500 KB; FROM scratch has no dynamic loader or libc to load."""
    data = probe.read_bytes()
    assert len(data) < 500 * 1024, f"{len(data)} bytes"
    assert data[:4] == b"\x7fELF" and data[4] == 2  # ELF, 64-bit
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    kinds = {struct.unpack_from("<I", data, phoff + i * phentsize)[0] for i in range(phnum)}
    assert not kinds & {2, 3}, "a PT_DYNAMIC or PT_INTERP segment: the binary is not static"
