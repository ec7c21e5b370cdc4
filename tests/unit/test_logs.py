"""`logs`: the lines of several containers merged in time order behind their role; bad options in one line."""

import threading

import pytest

from swiftdeploy.engine.runtime.output import lines_of
from swiftdeploy.errors import SwiftDeployError
from swiftdeploy.present import logs
from swiftdeploy.state import Container


def container(role, created=0):
    return Container(id=f"id-{role}", name=f"p-{role}-1", role=role, spec=None, version=None, image_id="sha256:x",
                     state="running", health=None, created=created)


class Engine:
    """Containers and the stamped lines each has printed, as the engine API gives them."""

    def __init__(self, printed: dict[str, list[str]]):
        self.printed = printed
        self.asked = []

    def containers(self):
        return [container(role) for role in self.printed]

    def log_lines(self, c, *, since=None, tail=None):
        self.asked.append((c.role, since, tail))
        lines = self.printed[c.role]
        return lines[-tail:] if tail else lines

    def follow_lines(self, c, *, since=None, tail=None, stop=None):
        yield from self.printed[c.role]


def test_lines_of_several_containers_are_merged_in_time_order_behind_their_role():
    engine = Engine({"stable": ["2026-12-07T01:00:00.100Z started", "2026-12-07T01:00:02.000Z GET /"],
                     "nginx": ["2026-12-07T01:00:01.000Z [warn] something"]})
    shown = []
    logs.show(engine, None, None, None, shown.append)
    assert shown == ["stable | started", "nginx  | [warn] something", "stable | GET /"]


def test_one_role_and_tail_and_since_reach_the_engine():
    engine = Engine({"stable": ["2026-12-07T01:00:00Z a", "2026-12-07T01:00:01Z b"], "canary": ["2026-12-07T01:00:00Z c"]})
    shown = []
    logs.show(engine, "stable", "10m", "1", shown.append)
    assert shown == ["stable | b"]
    [(role, since, tail)] = engine.asked
    assert role == "stable" and tail == 1 and since is not None


def test_follow_prints_each_line_as_it_comes_until_stopped():
    engine = Engine({"canary": ["2026-12-07T01:00:00Z chaos set to slow"]})
    stop, shown = threading.Event(), []

    def say(line):
        shown.append(line)
        stop.set()

    logs.follow(engine, "canary", None, None, say, stop=stop)
    assert shown == ["canary | chaos set to slow"]


@pytest.mark.parametrize("role, since, tail, message", [
    ("web", None, None, "logs: no role 'web'; the roles are stable, canary, nginx, opa, prometheus"),
    ("canary", None, None, "logs: this stack has no canary container (see ./swiftdeploy status)"),
    (None, "ten minutes", None, "logs: --since needs a duration such as 90s, 10m, 2h or 1d (got 'ten minutes')"),
    (None, "0", None, "logs: --since needs a duration such as 90s, 10m, 2h or 1d (got '0')"),
    (None, None, "2.5", "logs: --tail needs a whole number of lines, 0 or more (got '2.5')"),
    (None, None, "-1", "logs: --tail needs a whole number of lines, 0 or more (got '-1')"),
])
def test_bad_options_are_one_line(role, since, tail, message):
    with pytest.raises(SwiftDeployError) as refused:
        logs.show(Engine({"stable": []}), role, since, tail)
    assert str(refused.value) == message


def test_since_reads_units():
    assert [logs.since_seconds(w) for w in ("90", "90s", "10m", "2h", "1d", None)] == [90, 90, 600, 7200, 86400, None]


def test_chunks_that_end_mid_line_become_whole_lines():
    assert list(lines_of([b"one\ntw", b"o\r\nthr", b"ee"])) == ["one", "two", "three"]
