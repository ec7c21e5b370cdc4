"""An exec's output read from the engine's answer: every frame, also those the HTTP reader already buffered
behind the response headers (docker-py reads its raw socket and loses them: "48 is not a valid stream")."""

import io
import struct
from types import SimpleNamespace

from swiftdeploy.engine.api import _exec_output


def frame(stream: int, data: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(data)) + data


class Answer:
    def __init__(self, body: bytes):
        reader = io.BufferedReader(io.BytesIO(b"HTTP/1.1 101 UPGRADED\r\nUpgrade: tcp\r\n\r\n" + body))
        while reader.readline() not in (b"\r\n", b""):  # the headers, read as http.client reads them
            pass
        self.raw = SimpleNamespace(_fp=SimpleNamespace(fp=reader))
        self.closed = False

    def close(self):
        self.closed = True


class Api:
    base_url = "http+docker://localhost"

    def __init__(self, answer):
        self.answer = answer

    def _url(self, template, *args):
        return template.format(*args)

    def _post_json(self, url, headers, data, stream):
        assert url == "/exec/abc/start" and data == {"Tty": False, "Detach": False} and stream
        return self.answer

    def _raise_for_status(self, response):
        pass


def test_frames_already_buffered_behind_the_headers_are_read_and_split_by_stream():
    body = frame(1, b"out ") + frame(2, b"err") + frame(1, b"x" * 100_000) + frame(1, b" end")
    docker_py = Answer(body)
    left_on_the_socket = docker_py.raw._fp.fp.raw.read()  # what docker-py reads: the start is missing
    assert len(left_on_the_socket) < len(body) and not left_on_the_socket.startswith(frame(1, b"out "))
    answer = Answer(body)
    assert _exec_output(Api(answer), "abc") == (b"out " + b"x" * 100_000 + b" end", b"err")
    assert answer.closed


def test_no_output_is_two_empty_streams():
    assert _exec_output(Api(Answer(b"")), "abc") == (b"", b"")
