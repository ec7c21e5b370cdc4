"""The append-only history (R-1): one JSON object per line, safe with several writers and killed writers.

Why each append takes an exclusive flock: a file that does not end in "\\n" is either a torn tail left by a
killed writer or a large record another writer is still copying in. Only when every writer holds the lock
can the two be told apart, so the tail check, the repair and the write all happen under it (cost ~1 us).
The record itself is still one write() on an O_APPEND fd, so even a writer that skips the lock cannot
interleave with it. SIGKILL can still cut a record that spans page-cache pages: the reader skips such a
torn last line and the next append truncates it, so it never glues onto the next record.

Each record is chained to the one before it by a keyed hash, under the same lock (history_chain.py).
"""

import datetime
import fcntl
import json
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path

from . import history_chain as chain
from .. import secrets
from ..errors import SwiftDeployError

log = logging.getLogger(__name__)

_TAIL_CHUNK = 64 * 1024


class HistoryError(SwiftDeployError):
    """A record that cannot be stored, or a history file that cannot be written."""


def utc_timestamp(now: datetime.datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and Z: 2026-11-26T12:00:00.123Z."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


RESERVED = ("ts", chain.CHAIN, chain.HMAC)


class History:
    def __init__(self, path: str | os.PathLike, key_dir: str | os.PathLike | None = None):
        """The history at path; its chain's key is in key_dir (default: .swiftdeploy/ here)."""
        self.path = Path(path)
        self.head_path = self.path.with_suffix(".head")
        self.key_dir = Path(key_dir if key_dir is not None else secrets.SECRETS_DIR)
        self._key = None

    def append(self, event: str, **fields) -> dict:
        """Append one record {"ts", "event", **fields} and return it; NaN and infinities become null."""
        if not isinstance(event, str) or not event:
            raise HistoryError(f"history event must be a non-empty string, got {event!r}")
        for name in RESERVED:
            if name in fields:
                raise HistoryError(f"history field {name!r} is reserved: append() sets it")
        clean = {name: _json_value(value, name) for name, value in fields.items()}
        if self._key is None:
            self._key = secrets.ensure_history_key(self.key_dir)
        try:
            fd = self._open_for_append()
        except OSError as err:
            raise HistoryError(f"cannot open history {self.path}: {err.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = self._truncate_torn_tail(fd)
            previous = chain.link_at_end(os.pread(fd, chain.TAIL_BYTES, max(0, size - chain.TAIL_BYTES)))
            if previous is chain.START:  # the chain starts here: a head from now on, so a cut is caught
                chain.write_head(self.head_path, previous, self._key)
            # The timestamp is taken under the lock so the file's line order is also its ts order.
            record = {"ts": utc_timestamp(), "event": event, **clean}
            link = chain.seal(record, previous, self._key)
            line = json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"
            _write_whole(fd, line.encode("utf-8"))
            chain.write_head(self.head_path, link, self._key)
        except OSError as err:
            raise HistoryError(f"cannot append to history {self.path}: {err.strerror}") from None
        finally:
            os.close(fd)  # also releases the flock
        return record

    def read(self) -> list[dict]:
        """Every record; invalid lines and a torn last line are skipped with a warning, never an exception."""
        try:
            with open(self.path, "rb") as file:
                fcntl.flock(file, fcntl.LOCK_SH)  # waits for a write in progress, so its tail is not "torn"
                data = file.read()
        except FileNotFoundError:
            return []
        except OSError as err:
            raise HistoryError(f"cannot read history {self.path}: {err.strerror}") from None
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline, as it should
        records = []
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            record, problem = _parse_line(raw)
            if problem:
                place = "last line" if number == len(lines) and not tail else "a line in the middle of the file"
                log.warning("%s:%d: skipped %s: %s", self.path, number, place, problem)
            else:
                records.append(record)
        if tail:
            log.warning("%s:%d: skipped a torn last line (%d bytes, no newline: an interrupted write)",
                        self.path, len(lines) + 1, len(tail))
        return records

    def records(self) -> Iterator[dict]:
        """Every record, one at a time (memory does not grow with the file); skips as read() does.

        The shared lock is held only to find where the last whole line ends, not for the whole read: status
        appends a record every 2 s and must not wait for an audit. Bytes before that point never change (the
        file is append-only and a repair only cuts after the last newline), so they are read unlocked.
        """
        try:
            file = open(self.path, "rb")
        except FileNotFoundError:
            return
        except OSError as err:
            raise HistoryError(f"cannot read history {self.path}: {err.strerror}") from None
        with file:
            try:
                fcntl.flock(file, fcntl.LOCK_SH)
                size = os.fstat(file.fileno()).st_size
                end = _end_of_last_line(file.fileno(), size)
                fcntl.flock(file, fcntl.LOCK_UN)
            except OSError as err:
                raise HistoryError(f"cannot read history {self.path}: {err.strerror}") from None
            number, offset = 0, 0
            for raw in file:
                if offset >= end:
                    break
                number, offset = number + 1, offset + len(raw)
                if not raw.strip():
                    continue
                record, problem = _parse_line(raw[:-1])  # every line before `end` ends with its newline
                if problem:
                    place = "last line" if offset == end == size else "a line in the middle of the file"
                    log.warning("%s:%d: skipped %s: %s", self.path, number, place, problem)
                else:
                    yield record
        if end < size:
            log.warning("%s:%d: skipped a torn last line (%d bytes, no newline: an interrupted write)",
                        self.path, number + 1, size - end)

    def events(self, kind: str | None = None) -> Iterator[dict]:
        """Records in file order, only those whose event is `kind` when given."""
        return (record for record in self.read() if kind is None or record["event"] == kind)

    def _open_for_append(self) -> int:
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT  # read: the tail (pread ignores O_APPEND)
        try:
            return os.open(self.path, flags, 0o644)
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, flags, 0o644)

    def _truncate_torn_tail(self, fd: int) -> int:
        """The file's size once a torn last line is removed."""
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return size
        keep = _end_of_last_line(fd, size)
        os.ftruncate(fd, keep)
        log.warning("%s: removed a torn last line (%d bytes at offset %d) left by an interrupted writer",
                    self.path, size - keep, keep)
        return keep


def _end_of_last_line(reader: int, size: int) -> int:
    """Offset just past the last newline before `size`, or 0."""
    end = size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        found = os.pread(reader, end - start, start).rfind(b"\n")
        if found >= 0:
            return start + found + 1
        end = start
    return 0


def _write_whole(fd: int, data: bytes) -> None:
    # A write() to a regular file is not expected to be short (only a full disk or a signal arriving after
    # part of the copy does that). Loop anyway: under the flock the rest still lands right after it.
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _parse_line(raw: bytes) -> tuple[dict | None, str | None]:
    try:
        record = json.loads(raw.decode("utf-8"))
    except ValueError as err:  # also UnicodeDecodeError, and an integer of more digits than int() converts
        return None, f"not JSON ({err})"
    except RecursionError:
        return None, "not JSON (nested too deeply)"
    if not isinstance(record, dict) or not isinstance(record.get("event"), str) or "ts" not in record:
        return None, "not a history record (a JSON object with ts and event)"
    return record, None


def _json_value(value, where: str):
    """A copy of value that json.dumps accepts strictly; NaN and infinities become None."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise HistoryError(f"history field {where!r}: key {key!r} is not a string")
        return {key: _json_value(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise HistoryError(f"history field {where!r}: {type(value).__name__} is not a JSON value")
