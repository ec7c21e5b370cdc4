"""The analysis window and nginx's request log: what the rollout, the canary gate and status judge on."""

import json
import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

from swiftdeploy.judge import requestlog
from swiftdeploy.judge.analysis import Sampler
from swiftdeploy.judge.metrics import parse
from swiftdeploy.model.manifest import Logs

METRICS = """\
# TYPE http_requests_total counter
http_requests_total{{method="GET",path="/",status_code="200"}} {ok}
http_requests_total{{method="GET",path="/",status_code="500"}} {bad}
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{{le="0.1",method="GET",path="/"}} {fast}
http_request_duration_seconds_bucket{{le="+Inf",method="GET",path="/"}} {total}
http_request_duration_seconds_count{{method="GET",path="/"}} {total}
"""


def scrape(at: float, ok: int = 0, bad: int = 0):
    total = ok + bad
    return parse(METRICS.format(ok=ok, bad=bad, fast=total, total=total), at=at, wall=1_000_000 + at)


def sampler_with(track: str, scrapes, window: float = 5.0) -> Sampler:
    sampler = Sampler(SimpleNamespace(runtime=None, manifest=SimpleNamespace(metrics_source="scrape", logs=Logs())), window)
    sampler.scrapes[track].extend(scrapes)
    return sampler


def test_a_window_is_never_shorter_than_asked_once_enough_time_has_passed():
    # scrapes every ~2 s with jitter: 0, 1.98, 4.02, 5.97, 8.01
    sampler = sampler_with("canary", [scrape(t, ok=int(t * 10)) for t in (0, 1.98, 4.02, 5.97, 8.01)])
    w, base, latest = sampler.window("canary")
    assert (base.at, latest.at) == (1.98, 8.01) and w.seconds >= 5.0  # the newest base a whole window old
    early = sampler_with("canary", [scrape(t) for t in (0, 1.98, 4.02)])
    assert early.window("canary")[0].seconds == 4.02  # not yet a whole window: as long as the scrapes allow
    assert sampler_with("canary", [scrape(0)]).window("canary") is None


def line(t, status=200, rt=0.02, mode="", up="200", pin="", split="", uri="/"):
    return json.dumps({"t": t, "s": status, "rt": rt, "mode": mode, "up": up, "pin": pin, "split": split, "uri": uri})


def test_the_request_log_counts_user_requests_per_serving_track():
    text = "\n".join([
        line(1.0, mode="canary", rt=0.5), line(1.1, rt=0.01), line(1.2, status=500, up="500", rt=0.03),
        line(1.3, uri="/healthz"), line(1.4, uri="/metrics"), line(1.5, uri="/chaos", mode="canary"),
        line(1.6, pin="stable"), line(1.7, status=502, up="502, 502", mode=""), line(1.8, status=502, up=""),
        line(1.9, uri="/?a=1", split="07", mode="canary", rt=0.7), "not json", '{"t": 1}',
    ]) + "\n"
    requests, unreadable = requestlog.parse(text)
    assert unreadable == 2
    assert [(r.track, r.status, r.sticky) for r in requests] == [
        ("canary", 200, False), ("stable", 200, False), ("stable", 500, False), ("stable", 502, False),
        (None, 502, False), ("canary", 200, True)]
    canary = requestlog.exact(requests, "canary")
    assert (canary.requests, canary.errors, canary.p99_ms) == (2, 0, 700.0)
    stable = requestlog.exact(requests, "stable")
    assert (stable.requests, stable.errors) == (3, 2)
    assert requestlog.split(requests) == {"requests": 5, "canary_share": 0.4, "new_client_requests": 4,
                                          "new_client_canary_share": 0.25, "unserved": 1}


def test_nearest_rank_p99():
    assert requestlog.nearest_rank([], 0.99) is None
    values = [i / 1000 for i in range(1, 201)]  # 1..200 ms
    assert requestlog.nearest_rank(values, 0.99) == 198.0
    assert requestlog.nearest_rank([0.5], 0.99) == 500.0


class LogRuntime:
    """The nginx container's log volume as a local folder: RequestLog's own script runs in a local sh."""

    def __init__(self, folder):
        self.log = folder / "swiftdeploy-requests.jsonl"

    def exec(self, service, command):
        assert command[4] == requestlog.LOG_PATH
        return subprocess.run([*command[:4], str(self.log), *command[5:]], capture_output=True, text=True)

    def append(self, *lines, to=""):
        with open(f"{self.log}{to}", "a") as file:
            file.write("".join(lines))

    def rotate(self, keep=3):
        """What nginx's rotate_logs does: shift name.N up (the oldest drops), move the log to name.1."""
        for n in range(keep, 1, -1):
            if Path(f"{self.log}.{n - 1}").exists():
                os.replace(f"{self.log}.{n - 1}", f"{self.log}.{n}")
        os.replace(self.log, f"{self.log}.1")


def test_the_reader_takes_only_new_whole_lines_and_reads_a_truncated_log_from_its_start(tmp_path):
    runtime = LogRuntime(tmp_path)
    runtime.append(line(1.0) + "\n")
    log = requestlog.RequestLog(runtime)
    assert log.read() == []  # the first read positions at the end: what came before is not this window's
    runtime.append(line(2.0) + "\n" + line(3.0)[:10])  # a line nginx is still writing
    assert [r.at for r in log.read()] == [2.0]
    runtime.append(line(3.0)[10:] + "\n")
    assert [r.at for r in log.read()] == [3.0]
    assert log.gap is None
    runtime.log.write_text(line(4.0) + "\n")  # truncated in place (not by SwiftDeploy): read from its start,
    assert [r.at for r in log.read()] == [4.0]
    assert "requests are missing" in log.gap  # and say that lines written before the truncation may be lost


def test_the_reader_follows_a_rotated_log_to_its_end_before_the_new_one(tmp_path):
    runtime = LogRuntime(tmp_path)
    log = requestlog.RequestLog(runtime)
    assert log.read() == []  # no log yet
    runtime.append("")
    assert log.read() == []  # nginx made it, empty: its first line will name it
    runtime.append(line(1.0) + "\n")
    assert [r.at for r in log.read()] == [1.0]
    runtime.append(line(2.0) + "\n")
    runtime.rotate()
    runtime.append(line(3.0) + "\n", to=".1")  # nginx writes the moved file until it reopens its logs
    runtime.append("")
    assert [r.at for r in log.read()] == [2.0, 3.0]  # nginx reopened: a new empty log
    runtime.append(line(4.0) + "\n")
    assert [r.at for r in log.read()] == [4.0]
    assert log.gap is None, "the new log was empty at the last read: nothing could be missed"
    runtime.append(line(5.0) + "\n")
    runtime.rotate()
    runtime.append(line(6.0) + "\n")
    runtime.rotate()
    runtime.append(line(7.0) + "\n")
    assert [r.at for r in log.read()] == [5.0, 6.0, 7.0], "two rotations between reads, within logs.keep"
    assert log.gap is None


def test_a_log_rotated_past_keep_between_two_reads_is_a_gap_not_silently_fewer_requests(tmp_path):
    runtime = LogRuntime(tmp_path)
    log = requestlog.RequestLog(runtime, keep=2)
    runtime.append(line(1.0) + "\n")
    log.read()
    for t in (2.0, 3.0, 4.0):
        runtime.append(line(t) + "\n")
        runtime.rotate(keep=2)
    runtime.append(line(5.0) + "\n")
    assert [r.at for r in log.read()] == [3.0, 4.0, 5.0]
    assert "rotated more than logs.keep (2) times" in log.gap
    runtime.append(line(6.0) + "\n")
    assert [r.at for r in log.read()] == [6.0] and log.gap is None


def test_a_rotation_in_the_middle_of_a_read_neither_repeats_nor_loses_a_request(tmp_path):
    """rotate_logs runs in nginx's container beside the reader's script: here it moves the files just after the
    script found name.1 (a `head` that rotates first, once). The read is taken again over the moved files."""
    import shutil

    runtime = LogRuntime(tmp_path)
    shims = tmp_path / "bin"
    shims.mkdir()
    armed = tmp_path / "armed"
    (shims / "head").write_text(f'#!/bin/sh\nif [ -e "{armed}" ]; then rm -f "{armed}"; '
                                f'mv -f "{runtime.log}.1" "{runtime.log}.2"; mv -f "{runtime.log}" "{runtime.log}.1"; fi\n'
                                f'exec {shutil.which("head")} "$@"\n')
    (shims / "head").chmod(0o755)
    plain = runtime.exec
    runtime.exec = lambda service, command: subprocess.run(
        [*command[:4], str(runtime.log), *command[5:]], capture_output=True, text=True,
        env={**os.environ, "PATH": f"{shims}:{os.environ['PATH']}"})
    log = requestlog.RequestLog(runtime, keep=2)
    runtime.append(line(1.0) + "\n")
    runtime.rotate(keep=2)
    runtime.append(line(2.0) + "\n")
    assert log.read() == []
    runtime.append(line(3.0) + "\n")
    armed.touch()
    assert [r.at for r in log.read()] == [3.0] and log.gap is None
    assert not armed.exists(), "the rotation ran during that read"
    runtime.exec = plain
    runtime.append(line(4.0) + "\n")  # nginx reopened its log: a new file
    assert [r.at for r in log.read()] == [4.0] and log.gap is None
