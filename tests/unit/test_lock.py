import fcntl
import json
import logging
import multiprocessing
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from swiftdeploy.errors import SwiftDeployError
from swiftdeploy.converge.lock import LockBusy, StackLock

HOLDER = """
import sys
from swiftdeploy.converge.lock import StackLock
with StackLock(sys.argv[1], sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def holder(tmp_path):
    """Start a separate process holding the lock; yields (process, lock path)."""
    path = tmp_path / "state" / "stack.lock"
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), "promote:canary"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "held\n"
    yield process, path
    if process.poll() is None:
        process.kill()
    process.wait(10)
    process.stdin.close()
    process.stdout.close()


def test_holder_info_is_written_and_cleared(tmp_path):
    path = tmp_path / "a" / "b" / "stack.lock"
    with StackLock(path, "deploy") as lock:
        info = json.loads(path.read_text())
        assert info == {"pid": os.getpid(), "operation": "deploy", "since": lock.since,
                        "hostname": socket.gethostname()}
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", info["since"])
        assert path.stat().st_mode & 0o777 == 0o644 & ~_umask()
    assert path.read_text() == ""
    with StackLock(path, "rollback"):
        pass


def _umask():
    current = os.umask(0)
    os.umask(current)
    return current


def test_not_reentrant_even_in_one_process(tmp_path):
    path = tmp_path / "stack.lock"
    with StackLock(path, "deploy"):
        with pytest.raises(LockBusy, match=f"held by pid {os.getpid()} \\(deploy\\)"):
            with StackLock(path, "status"):
                pass


def test_second_holder_is_refused_with_who_and_since(holder):
    process, path = holder
    with pytest.raises(LockBusy) as caught:
        with StackLock(path, "deploy"):
            pytest.fail("acquired a held lock")
    message = str(caught.value)
    assert isinstance(caught.value, SwiftDeployError) and "\n" not in message
    assert message.startswith(f"another swiftdeploy operation holds {path}: ")
    assert f"held by pid {process.pid} (promote:canary) since 20" in message
    assert caught.value.holder["pid"] == process.pid


def test_lock_is_free_after_the_holder_exits_normally(holder, caplog):
    process, path = holder
    process.stdin.close()
    assert process.wait(10) == 0
    with caplog.at_level(logging.WARNING):
        with StackLock(path, "deploy"):
            pass
    assert caplog.records == []


def test_lock_is_free_at_once_after_kill_9(holder, caplog):
    process, path = holder
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    with caplog.at_level(logging.WARNING):
        with StackLock(path, "rollback"):
            assert json.loads(path.read_text())["operation"] == "rollback"
    [message] = [r.getMessage() for r in caplog.records]
    assert f"pid {process.pid} (promote:canary)" in message and "without releasing" in message


def test_a_holder_that_wrote_nothing_is_unknown(tmp_path):
    path = tmp_path / "stack.lock"
    path.write_text("")
    with open(path, "rb") as foreign:
        fcntl.flock(foreign, fcntl.LOCK_EX)
        with pytest.raises(LockBusy, match=r"holds .*stack\.lock: unknown holder$"):
            with StackLock(path, "deploy"):
                pass


def _race(path, log_path, barrier, seed):
    rng = random.Random(seed)
    barrier.wait(30)
    refused = 0
    while True:
        try:
            with StackLock(path, f"racer-{seed}"):
                entered = time.monotonic_ns()
                time.sleep(rng.uniform(0.002, 0.01))
                left = time.monotonic_ns()
                fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                os.write(fd, f"{seed} {entered} {left} {refused}\n".encode())
                os.close(fd)
            return
        except LockBusy:
            refused += 1
            time.sleep(rng.uniform(0.001, 0.005))


def test_20_racing_processes_hold_the_lock_one_at_a_time(tmp_path):
    path, log_path, racers = tmp_path / "stack.lock", tmp_path / "holds.log", 20
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(racers)
    processes = [context.Process(target=_race, args=(path, log_path, barrier, n)) for n in range(racers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    holds = sorted(tuple(map(int, line.split())) for line in log_path.read_text().splitlines())
    assert sorted(h[0] for h in holds) == list(range(racers))
    intervals = sorted((entered, left) for _, entered, left, _ in holds)
    for (_, previous_left), (entered, _) in zip(intervals, intervals[1:]):
        assert entered >= previous_left, "two processes held the lock at once"
    assert sum(h[3] for h in holds) > 0, "no racer was ever refused: the race did not happen"


def test_holder_names_a_live_holder_and_takes_nothing(tmp_path):
    from swiftdeploy.converge.lock import holder

    path = tmp_path / "lock"
    assert holder(path) is None  # no file yet
    with StackLock(path, "rollout"):
        info = holder(path)
        assert info["operation"] == "rollout" and info["pid"] == os.getpid()
    assert holder(path) is None
    with StackLock(path, "deploy"):  # holder() left nothing behind that would refuse the next taker
        pass
