"""One operation per stack at a time (R-2): a kernel flock held for the whole operation.

The kernel lock is the truth: it dies with its holder, even under kill -9, so a killed operation never
leaves a stale lock. The file's content (pid, operation, since, hostname) only tells a refused operation
who is in the way. The fd is not inherited by child processes (Python opens fds non-inheritable), so a
container engine started during the operation cannot keep the lock alive after we exit.
"""

import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path

from ..errors import SwiftDeployError
from ..evidence.history import utc_timestamp

log = logging.getLogger(__name__)

_HOLDER_READ_ATTEMPTS = 5  # the holder writes its info just after locking; give it that moment
_HOLDER_READ_PAUSE = 0.02


class LockError(SwiftDeployError):
    """The lock file cannot be opened."""


class LockBusy(LockError):
    """Another operation holds the stack lock."""

    def __init__(self, path: Path, holder: dict | None):
        self.path, self.holder = path, holder
        if holder is None:
            who = "unknown holder"
        else:
            who = f"held by pid {holder.get('pid')} ({holder.get('operation')}) since {holder.get('since')}"
            if holder.get("hostname") not in (None, socket.gethostname()):
                who += f" on host {holder['hostname']}"
        super().__init__(f"another swiftdeploy operation holds {path}: {who}")


class StackLock:
    """`with StackLock(path, "deploy"):` runs the block holding the lock or raises LockBusy at once.

    Not re-entrant: a second StackLock on the same path, even in the same process, is refused.
    """

    def __init__(self, path: str | os.PathLike, operation: str):
        self.path = Path(path)
        self.operation = operation
        self.since: str | None = None
        self._fd: int | None = None

    def __enter__(self) -> "StackLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise LockError(f"cannot open lock file {self.path}: {err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _wait_for_holder_info(fd)
            os.close(fd)
            raise LockBusy(self.path, holder) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            self._write_holder_info(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def _write_holder_info(self, fd: int) -> None:
        previous = _read_holder(fd)
        if previous is not None:  # a clean release empties the file, so this holder died holding it
            log.warning("%s: previous holder pid %s (%s) since %s ended without releasing it; taking over",
                        self.path, previous.get("pid"), previous.get("operation"), previous.get("since"))
        self.since = utc_timestamp()
        info = {"pid": os.getpid(), "operation": self.operation, "since": self.since,
                "hostname": socket.gethostname()}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        except OSError as err:  # the kernel lock still holds; only the courtesy note is missing
            log.warning("%s: cannot record the lock holder: %s", self.path, err.strerror)

    def __exit__(self, *exc_info) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # still locked: nobody can read a half-cleared file
        finally:
            os.close(fd)  # releases the flock


def holder(path: str | os.PathLike) -> dict | None:
    """Who holds the lock now ({} when it cannot be told), or None when nobody does. Takes nothing."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_holder(fd) or {}
    finally:
        os.close(fd)  # also drops the shared lock, if it was taken
    return None


def _read_holder(fd: int) -> dict | None:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return info if isinstance(info, dict) and "pid" in info else None


def _wait_for_holder_info(fd: int) -> dict | None:
    """The current holder's info; empty or a dead pid means it is being (re)written right now."""
    for _ in range(_HOLDER_READ_ATTEMPTS):
        holder = _read_holder(fd)
        if holder is not None and _may_be_alive(holder):
            return holder
        time.sleep(_HOLDER_READ_PAUSE)
    return None


def _may_be_alive(holder: dict) -> bool:
    if holder.get("hostname") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return True  # cannot check another host's pids
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
