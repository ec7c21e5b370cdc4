import json
import logging
import multiprocessing
import os
import random
import re
import subprocess
import sys

import pytest

from projectkit import sigkill_a_writer
from swiftdeploy.errors import SwiftDeployError
from swiftdeploy.evidence.history import History, HistoryError
from swiftdeploy.evidence.history_chain import verify

TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def lines_of(path):
    data = path.read_bytes()
    assert data.endswith(b"\n")
    return [json.loads(line) for line in data.decode("utf-8").splitlines()]


def warnings_in(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_append_writes_one_json_line_and_returns_the_record(tmp_path):
    path = tmp_path / "reports" / "sub" / "history.jsonl"
    record = History(path).append("deploy", version="1.0.0", mode="stable", note="déployé ✓")
    assert list(record) == ["ts", "event", "version", "mode", "note", "chain", "hmac"]
    assert TS.match(record["ts"]) and record["event"] == "deploy"
    raw = path.read_text(encoding="utf-8")
    assert raw == json.dumps(record, ensure_ascii=False) + "\n"
    assert "déployé ✓" in raw
    assert path.stat().st_mode & 0o777 == 0o644 & ~_umask()


def _umask():
    current = os.umask(0)
    os.umask(current)
    return current


def test_non_finite_numbers_become_null_everywhere(tmp_path):
    history = History(tmp_path / "h.jsonl")
    record = history.append("scrape", p99=float("nan"), window={"rate": float("inf"), "rates": [1.5, float("-inf")]})
    assert record["p99"] is None and record["window"] == {"rate": None, "rates": [1.5, None]}
    assert history.read() == [record]


@pytest.mark.parametrize("fields, says", [
    ({"decision": {"input": {"when": object()}}}, "'decision.input.when': object"),
    ({"hosts": {"a", "b"}}, "'hosts': set"),
    ({"counts": {1: 2}}, "'counts': key 1"),
    ({"ts": "2020-01-01T00:00:00.000Z"}, "'ts' is reserved"),
])
def test_values_that_are_not_json_are_refused_by_field(tmp_path, fields, says):
    path = tmp_path / "h.jsonl"
    with pytest.raises(HistoryError) as caught:
        History(path).append("gate", **fields)
    assert isinstance(caught.value, SwiftDeployError) and says in str(caught.value)
    assert not path.exists() or path.read_bytes() == b""


def test_read_of_missing_file_is_empty_and_events_filters(tmp_path):
    history = History(tmp_path / "none.jsonl")
    assert history.read() == []
    history.append("deploy", n=1)
    history.append("scrape", n=2)
    history.append("deploy", n=3)
    assert [r["n"] for r in history.events("deploy")] == [1, 3]
    assert [r["n"] for r in history.events()] == [1, 2, 3]


def test_torn_tail_is_skipped_by_read_and_truncated_by_append(tmp_path, caplog):
    path = tmp_path / "h.jsonl"
    history = History(path)
    history.append("deploy", n=1)
    history.append("deploy", n=2)
    with open(path, "ab") as file:
        file.write(b'{"ts": "2026-01-01T00:00:00.000Z", "event": "scrape", "pad": "xxxx')
    with caplog.at_level(logging.WARNING):
        assert [r["n"] for r in history.read()] == [1, 2]
    [warning] = warnings_in(caplog)
    assert f"{path}:3:" in warning and "torn last line" in warning

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        history.append("deploy", n=3)
    assert any("removed a torn last line" in m for m in warnings_in(caplog))
    assert [r["n"] for r in lines_of(path)] == [1, 2, 3]


def test_a_complete_object_without_newline_is_still_a_torn_tail(tmp_path, caplog):
    path = tmp_path / "h.jsonl"
    path.write_bytes(b'{"ts": "t", "event": "a"}\n{"ts": "t", "event": "b"}')
    with caplog.at_level(logging.WARNING):
        assert [r["event"] for r in History(path).read()] == ["a"]
    History(path).append("c")
    assert [r["event"] for r in lines_of(path)] == ["a", "c"]


def test_torn_tail_without_any_newline_is_removed_whole(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_bytes(b'{"ts": "t", "ev' + b"x" * 200_000)  # longer than one backwards read chunk
    History(path).append("first")
    assert [r["event"] for r in lines_of(path)] == ["first"]


def test_invalid_lines_in_the_middle_are_skipped_with_a_warning(tmp_path, caplog):
    path = tmp_path / "h.jsonl"
    path.write_bytes(b'{"ts": "t", "event": "a"}\nnot json\n\xff\xfe\n[1, 2]\n\n{"ts": "t", "event": "b"}\n{"event"\n')
    with caplog.at_level(logging.WARNING):
        assert [r["event"] for r in History(path).read()] == ["a", "b"]
    messages = warnings_in(caplog)
    assert len(messages) == 4
    assert all(str(path) in m for m in messages)
    assert [m.split(":")[1] for m in messages] == ["2", "3", "4", "7"]
    assert sum("middle" in m for m in messages) == 3 and "last line" in messages[-1]


def test_short_writes_are_completed(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:1000])))
    record = History(tmp_path / "h.jsonl").append("big", pad="z" * 5000)
    monkeypatch.undo()
    assert lines_of(tmp_path / "h.jsonl") == [record]


def test_write_failure_is_a_history_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(HistoryError, match="cannot open history"):
        History(blocker / "h.jsonl").append("x")


def _append_many(path, writer, count):
    rng = random.Random(writer)
    history = History(path, key_dir=path.parent / "keys", segment_bytes=4 * 2**20)
    for seq in range(count):
        size = rng.choice([200, 6_000, 70_000, 200_000])
        history.append("load", writer=writer, seq=seq, size=size, pad=chr(ord("a") + writer) * size)


def test_concurrent_appends_from_8_processes_never_interleave(tmp_path):
    path, writers, count = tmp_path / "h.jsonl", 8, 40
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_append_many, args=(path, w, count)) for w in range(writers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    files = History(path).files()
    assert len(files) >= 4, "sealed while 8 writers appended"
    records = [record for file in files for record in lines_of(file)]  # every line parses
    assert len(records) == writers * count
    assert [r["chain"] for r in records] == list(range(1, len(records) + 1)), "one chain across the segments"
    assert verify(path, path.with_suffix(".head"), path.parent / "keys").intact
    assert {(r["writer"], r["seq"]) for r in records} == {(w, s) for w in range(writers) for s in range(count)}
    assert all(r["pad"] == chr(ord("a") + r["writer"]) * r["size"] for r in records)
    for writer in range(writers):  # each writer's own records stay in order
        assert [r["seq"] for r in records if r["writer"] == writer] == list(range(count))


WRITER = """
import random, sys
from pathlib import Path
from swiftdeploy.evidence.history import History
history = History(sys.argv[1], key_dir=Path(sys.argv[1]).parent / ".swiftdeploy")  # not the checkout's key
rng = random.Random(int(sys.argv[2]))
history.append("writer_started")
print("ready", flush=True)
seq = 0
while True:
    size = rng.choice([300, 3_000, 60_000, 200_000])
    history.append("load", seq=seq, pad="k" * size)
    seq += 1
"""


def test_writer_killed_mid_stream_loses_at_most_its_last_line(tmp_path, caplog):
    path, rng, torn = tmp_path / "h.jsonl", random.Random(7), 0
    for round_number in range(6):
        sigkill_a_writer(WRITER, (path, round_number), rng)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            records = History(path).read()
        messages = warnings_in(caplog)
        assert len(messages) <= 1
        if messages:
            torn += 1
            last_line = path.read_bytes().count(b"\n") + 1
            assert f"{path}:{last_line}:" in messages[0] and "torn last line" in messages[0]
        assert records[-1]["event"] in ("load", "writer_started")

        mark = History(path).append("after_kill", round=round_number)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            assert History(path).read()[-1] == mark
        assert warnings_in(caplog) == []
        assert lines_of(path)[-1] == mark
    print(f"torn tails seen: {torn} of 6 kills")


@pytest.mark.parametrize("content", [
    b'{"ts": "t", "event": "a"}\nnot json\n\xff\xfe\n[1, 2]\n\n{"ts": "t", "event": "b"}\n{"event"\n',
    b'{"ts": "t", "event": "a"}\n{"ts": "t", "event": "b"}\n{"ts": "t", "event": "torn", "pad": "xx',
    b'{"ts": "t", "ev' + b"x" * 200_000,
    b"",
])
def test_records_streams_what_read_returns_with_the_same_warnings(tmp_path, caplog, content):
    path = tmp_path / "h.jsonl"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        whole = History(path).read()
    read_warnings = warnings_in(caplog)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        streamed = list(History(path).records())
    assert streamed == whole and warnings_in(caplog) == read_warnings


def test_records_of_a_missing_file_is_empty(tmp_path):
    assert list(History(tmp_path / "none.jsonl").records()) == []


def test_records_holds_no_lock_between_records_and_stops_where_it_started(tmp_path):
    path = tmp_path / "h.jsonl"
    history = History(path)
    for n in range(3):
        history.append("deploy", n=n)
    stream = history.records()
    assert next(stream)["n"] == 0
    # another process appends (taking the exclusive lock) while the reader is paused mid-file
    subprocess.run([sys.executable, "-c", f"from swiftdeploy.evidence.history import History; "
                    f"History({str(path)!r}).append('deploy', n=3)"], check=True, timeout=10)
    assert [r["n"] for r in stream] == [1, 2]
    assert [r["n"] for r in history.records()] == [0, 1, 2, 3]
