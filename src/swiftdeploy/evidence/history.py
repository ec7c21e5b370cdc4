"""The append-only history (R-1): one JSON object per line, safe with several writers and killed writers.

Why each append takes an exclusive flock: a file that does not end in "\\n" is either a torn tail left by a
killed writer or a large record another writer is still copying in. Only when every writer holds the lock
can the two be told apart, so the tail check, the repair and the write all happen under it (cost ~1 us).
The record itself is still one write() on an O_APPEND fd, so even a writer that skips the lock cannot
interleave with it. SIGKILL can still cut a record that spans page-cache pages: the reader skips such a
torn last line and the next append truncates it, so it never glues onto the next record.

Each record is chained to the one before it by a keyed hash, under the same lock (history_chain.py).

Past segment_bytes the file is sealed (renamed to history-NNNNNN.jsonl, under the lock) and the next record
starts a new history.jsonl, chained to the sealed one's last record; readers read every segment in order
(segments.py, which also holds retention).
"""

import datetime
import fcntl
import json
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path

import orjson

from . import history_chain as chain
from . import segments
from .. import secrets
from ..errors import SwiftDeployError

log = logging.getLogger(__name__)

_TAIL_CHUNK = 64 * 1024
DEFAULT_SEGMENT_BYTES = 16 * 2**20


class HistoryError(SwiftDeployError):
    """A record that cannot be stored, or a history file that cannot be written."""


def utc_timestamp(now: datetime.datetime | None = None) -> str:
    """ISO-8601 UTC with milliseconds and Z: 2026-11-26T12:00:00.123Z."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return now.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


RESERVED = ("ts", chain.CHAIN, chain.HMAC)


class History:
    def __init__(self, path: str | os.PathLike, key_dir: str | os.PathLike | None = None,
                 segment_bytes: int = DEFAULT_SEGMENT_BYTES, keep_days: float | None = None):
        """The history at path; its chain's key is in key_dir (default: .swiftdeploy/ here). A segment is
        sealed past segment_bytes; sealed segments older than keep_days are removed (None: kept)."""
        self.path = Path(path)
        self.head_path = self.path.with_suffix(".head")
        self.key_dir = Path(key_dir if key_dir is not None else secrets.SECRETS_DIR)
        self.segment_bytes, self.keep_days = segment_bytes, keep_days
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
        sealed = False
        try:
            fd = self._locked_active()
        except OSError as err:
            raise HistoryError(f"cannot open history {self.path}: {err.strerror}") from None
        try:
            size = self._truncate_torn_tail(fd)
            previous = _link_at_end(fd, size)
            if size >= self.segment_bytes:
                fd, sealed = self._seal(fd), True
            elif size == 0:
                previous = self._link_at_end_of_sealed()
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
        if sealed and self.keep_days is not None:
            self.remove_expired()
        return record

    def remove_expired(self, now: datetime.datetime | None = None) -> list[str]:
        """Remove the sealed segments older than keep_days, after a chained record that says so; their names."""
        old = segments.expired(self.path, self.keep_days, now or datetime.datetime.now(datetime.timezone.utc))
        if not old:
            return []
        last = _link_at_end_of(old[-1].path)
        names = [segment.path.name for segment in old]
        self.append(segments.RETENTION_EVENT, removed=names, removed_through=old[-1].number, keep_days=self.keep_days,
                    last_count=last.count, last_hmac=last.hmac)
        for segment in old:  # a kill in here leaves segments the record names: the next retention removes them
            segment.path.unlink(missing_ok=True)
        return names

    def files(self) -> list[Path]:
        """Every segment, oldest first, the active one last."""
        return [segment.path for segment in segments.sealed(self.path)] + [self.path]

    def _locked_active(self) -> int:
        """history.jsonl, opened and locked; reopened when another writer sealed it meanwhile."""
        while True:
            fd = self._open_for_append()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    return fd
            except FileNotFoundError:
                pass
            os.close(fd)

    def _seal(self, fd: int) -> int:
        """Rename the locked active segment to the next sealed name; the new active one, locked."""
        os.rename(self.path, segments.next_path(self.path))
        new = self._locked_active()
        os.close(fd)
        return new

    def _link_at_end_of_sealed(self) -> "chain.Link":
        sealed = segments.sealed(self.path)
        return _link_at_end_of(sealed[-1].path) if sealed else chain.START

    def read(self) -> list[dict]:
        """Every record of every segment; invalid lines and a torn last line are skipped with a warning."""
        return list(self.records())

    def records(self) -> Iterator[dict]:
        """Every record of every segment, oldest first, one at a time (memory does not grow with the history).

        The active segment is opened first: one sealed while this reads is then the file already open, and
        is read last under its new name's place, never missed."""
        try:
            active = open(self.path, "rb")
        except FileNotFoundError:
            active = None
        except OSError as err:
            raise HistoryError(f"cannot read history {self.path}: {err.strerror}") from None
        try:
            inode = os.fstat(active.fileno()).st_ino if active else None
            for segment in segments.sealed(self.path):
                try:
                    file = open(segment.path, "rb")
                except FileNotFoundError:  # removed by retention since the listing
                    continue
                except OSError as err:
                    raise HistoryError(f"cannot read history {segment.path}: {err.strerror}") from None
                with file:
                    if os.fstat(file.fileno()).st_ino != inode:
                        yield from _records_in(file, segment.path)
            if active:
                yield from _records_in(active, self.path)
        finally:
            if active:
                active.close()

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


def _records_in(file, path: Path) -> Iterator[dict]:
    """The records of one open segment. The shared lock is held only to find where the last whole line ends,
    not for the whole read: status appends a record every 2 s and must not wait for an audit. Bytes before
    that point never change (a segment is append-only and a repair only cuts after the last newline)."""
    try:
        fcntl.flock(file, fcntl.LOCK_SH)
        size = os.fstat(file.fileno()).st_size
        end = _end_of_last_line(file.fileno(), size)
        fcntl.flock(file, fcntl.LOCK_UN)
    except OSError as err:
        raise HistoryError(f"cannot read history {path}: {err.strerror}") from None
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
            log.warning("%s:%d: skipped %s: %s", path, number, place, problem)
        else:
            yield record
    if end < size:
        log.warning("%s:%d: skipped a torn last line (%d bytes, no newline: an interrupted write)",
                    path, number + 1, size - end)


def _link_at_end_of(path: Path) -> "chain.Link":
    with open(path, "rb") as file:
        return _link_at_end(file.fileno(), os.fstat(file.fileno()).st_size)


def _link_at_end(fd: int, size: int) -> "chain.Link":
    return chain.link_at_end(os.pread(fd, chain.TAIL_BYTES, max(0, size - chain.TAIL_BYTES)))


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
        # orjson reads a line four times faster; it refuses what strict JSON does not allow (NaN, integers past
        # 64 bits, deep nesting), and such a line is then read as the json module reads it, so both agree
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
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
