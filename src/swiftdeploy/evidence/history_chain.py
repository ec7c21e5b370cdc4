"""The history's chain: each record's HMAC covers the record and the previous record's HMAC.

A record carries its place in the chain ("chain": 1, 2, ...) and "hmac": HMAC-SHA256, keyed with
.swiftdeploy/history.key, over the previous record's hmac followed by the record's canonical JSON without
its hmac (sorted keys, no spaces). Editing, inserting, deleting or reordering a line therefore breaks the
chain at that line. Cutting whole records off the end does not, so a head file beside the history
(history.head) holds the count and the last hmac, under an hmac of its own. The head is written after the
record: a writer killed between the two leaves it behind the history, which verify accepts; a history
shorter than its head is a cut tail.

What it does not prove: anyone holding the key can rewrite the whole history and its head, and a cut
tail goes unnoticed if an older head file is put back with it.
"""

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import segments
from ..errors import SwiftDeployError
from ..secrets import HISTORY_KEY, read_history_key

CHAIN, HMAC = "chain", "hmac"


class ChainError(SwiftDeployError):
    """The history or its head cannot be read, or the key is missing."""


@dataclass(frozen=True)
class Link:
    count: int  # the record's place in the chain; 0 before the first chained record
    hmac: str  # its hmac; "" before the first


START = Link(0, "")


def seal(record: dict, previous: Link, key: bytes) -> Link:
    """Add record's place in the chain and its hmac (in place, last); return its link."""
    record[CHAIN] = previous.count + 1
    record[HMAC] = record_hmac(record, previous.hmac, key)
    return Link(record[CHAIN], record[HMAC])


def record_hmac(record: dict, previous_hmac: str, key: bytes) -> str:
    body = {name: value for name, value in record.items() if name != HMAC}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hmac.new(key, previous_hmac.encode() + canonical.encode(), hashlib.sha256).hexdigest()


# seal() adds chain and hmac last, and History writes json.dumps' default spacing, so a chained line ends
# like this. Inside a JSON string every quote is escaped, so no other line can end this way.
_TAIL = re.compile(rb', "chain": ([1-9][0-9]{0,18}), "hmac": "([0-9a-f]{64})"\}\n\Z')
TAIL_BYTES = 128  # enough for the longest such ending


def link_at_end(tail: bytes) -> Link:
    """The link of the line the file's last TAIL_BYTES end; START when that line holds none (a history
    written before the chain, or an empty one). Reads no more of a record of any size than its ending."""
    found = _TAIL.search(tail)
    return Link(int(found[1]), found[2].decode()) if found else START


HEAD_SIZE = 256  # bytes: every head is padded to this, so each write covers the one before whole


def write_head(path: Path, link: Link, key: bytes) -> None:
    """Overwrite the head file in place; the caller holds the history's lock, which verify reads it under.

    One pwrite of one fixed-size block at offset 0: a killed writer leaves the old head or the new one.
    (Not a temporary file renamed over it: ext4 flushes a file's data when it is renamed over another,
    on every append.)
    """
    head = json.dumps({"count": link.count, "last": link.hmac, HMAC: _head_hmac(link, key)})
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, head.ljust(HEAD_SIZE - 1).encode() + b"\n", 0)
    finally:
        os.close(fd)


def _head_hmac(link: Link, key: bytes) -> str:
    return hmac.new(key, f"head:{link.count}:{link.hmac}".encode(), hashlib.sha256).hexdigest()


def _chained_record(line: bytes) -> dict | None:
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if (isinstance(record, dict) and type(record.get(CHAIN)) is int and record[CHAIN] > 0
            and isinstance(record.get(HMAC), str)):
        return record
    return None


@dataclass
class Verdict:
    notes: list[str] = field(default_factory=list)  # what verify found that does not break the chain
    problem: str | None = None  # the first thing that does, naming its line

    @property
    def intact(self) -> bool:
        return self.problem is None


def verify(history_path: Path, head_path: Path, key_dir: Path) -> Verdict:
    """Walk every segment once (one line in memory at a time) and check every link and the head."""
    active, size, head_text, sealed = _snapshot(history_path, head_path)
    head = None if head_text is None else _parse_head(head_text)
    walk = _Walk(history_path, key_dir, head["count"] if head else None)
    with active or contextlib.nullcontext():
        walk.verdict.problem = _walk_sealed(walk, history_path, sealed)
        if walk.verdict.problem is None and active is not None:
            walk.path, walk.line = history_path, 0
            try:
                walk.lines(active, size)
            except OSError as err:
                raise ChainError(f"{history_path}:{walk.line + 1}: cannot read: {err.strerror}") from None
    if walk.verdict.problem is None:
        walk.path = history_path
        walk.check_head(head_path, head_text, head)
    return walk.verdict


def _snapshot(history_path: Path, head_path: Path):
    """The active segment (open), its size, the head and the sealed segments, read together under the active
    segment's lock: writers append a record and then the head, and seal a segment, only under it. The active
    segment is None when a writer was killed after sealing the last one."""
    while True:
        try:
            file = open(history_path, "rb")
        except FileNotFoundError:  # none yet, or a writer was killed after sealing the last one
            sealed = segments.sealed(history_path)
            if not sealed:
                raise ChainError(f"{history_path}: missing: no history to verify") from None
            return None, 0, _read_head(head_path), sealed
        except OSError as err:
            raise ChainError(f"{history_path}: cannot read: {err.strerror}") from None
        fcntl.flock(file, fcntl.LOCK_SH)
        try:
            same = os.stat(history_path).st_ino == os.fstat(file.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # sealed between the open and the lock
            file.close()
            continue
        size = os.fstat(file.fileno()).st_size
        head_text = _read_head(head_path)
        sealed = segments.sealed(history_path)
        fcntl.flock(file, fcntl.LOCK_UN)
        return file, size, head_text, sealed


def _walk_sealed(walk: "_Walk", history_path: Path, sealed: list) -> str | None:
    """Walk the sealed segments in order; the problem a missing one (or any line) makes."""
    starts = segments.retention_starts([s.path for s in sealed] + [history_path])
    first = sealed[0].number if sealed else max(starts, default=0) + 1
    if first > 1:
        start = starts.get(first - 1)
        if start is None:
            return (f"{segments.segment_path(history_path, first - 1)} is missing: no {segments.RETENTION_EVENT} "
                    f"record says it was removed (segments 1-{first - 1} gone)")
        walk.last, walk.first = Link(*start), start[0] + 1
        walk.verdict.notes.append(f"{history_path.parent}: segments 1-{first - 1} removed by retention "
                                  f"(records 1-{start[0]}, as a chained record says); the chain is checked from "
                                  f"record {start[0] + 1}")
    expected, walk.segments = first, len(sealed) + 1
    for segment in sealed:
        if segment.number != expected:
            return _missing(history_path, expected, segment.number, walk.last.count)
        expected += 1
        walk.path, walk.line = segment.path, 0
        try:
            with open(segment.path, "rb") as file:
                walk.lines(file, os.fstat(file.fileno()).st_size)
        except FileNotFoundError:
            return f"{segment.path} is missing: removed while verify read the history"
        except OSError as err:
            raise ChainError(f"{segment.path}: cannot read: {err.strerror}") from None
        if walk.verdict.problem:
            return walk.verdict.problem
    if walk.last is not START and (next_count := _first_count(history_path)) is not None \
            and next_count > walk.last.count + 1:  # the active segment does not follow the last one here
        return _missing(history_path, expected, None, walk.last.count, next_count)
    return None


def _missing(history_path: Path, number: int, next_present: int | None, last_count: int,
             next_count: int | None = None) -> str:
    more = (f" (up to {segments.segment_path(history_path, next_present - 1).name})"
            if next_present and next_present > number + 1 else " (or more)" if next_present is None else "")
    gone = f"records {last_count + 1}-{next_count - 1} gone" if next_count else f"the chain breaks after record {last_count}"
    return f"{segments.segment_path(history_path, number)} is missing{more}: {gone}"


def _first_count(path: Path) -> int | None:
    try:
        with open(path, "rb") as file:
            for raw in file:
                record = _chained_record(raw)
                if record is not None:
                    return record[CHAIN]
    except OSError:
        return None
    return None


def _read_head(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise ChainError(f"{path}: cannot read: {err.strerror}") from None


class _Walk:
    def __init__(self, path: Path, key_dir: Path, head_count: int | None):
        self.path, self.key_dir, self._key = path, key_dir, None
        self.verdict = Verdict()
        self.last = START  # the last good link
        self.unchained = 0  # lines before the chain's first record
        self.line = 0  # the last complete line read
        self.first, self.segments = 1, 1  # the first record checked (retention removed those before); files
        self.head_count, self.hmac_at_head_count = head_count, ""

    @property
    def key(self) -> bytes:
        if self._key is None:  # read only once a chained record or a head needs it
            self._key = read_history_key(self.key_dir)
        return self._key

    @property
    def key_path(self) -> Path:
        return self.key_dir / HISTORY_KEY

    def lines(self, file, size: int) -> None:
        offset = 0
        for raw in file:
            if offset >= size:
                break
            raw = raw[:size - offset]  # bytes appended after the snapshot are not checked
            offset += len(raw)
            if not raw.endswith(b"\n"):
                self.verdict.notes.append(f"{self.path}:{self.line + 1}: torn last line ({len(raw)} bytes, no "
                                          "newline: a writer killed mid-record); skipped, the next append removes it")
                return
            self.line += 1
            problem = self._check(raw)
            if problem:
                self.verdict.problem = f"{self.path}:{self.line}: {problem}"
                return

    def _check(self, raw: bytes) -> str | None:
        record = _chained_record(raw)
        if record is None:
            if self.last is START:
                self.unchained += 1
                return None
            return "not a chained record: a line inserted or edited inside the chain"
        count, expected = record[CHAIN], self.last.count + 1
        if count > expected:
            missing = f"record {expected}" if count == expected + 1 else f"records {expected}-{count - 1}"
            if self.last is START:
                return f"the chain starts at record {count}: {missing} deleted (or unchained)"
            return f"record {count} follows record {self.last.count}: {missing} deleted or moved"
        if count < expected:
            return f"record {count} again after record {self.last.count}: a copied line, or lines reordered"
        # surrogatepass: an escaped lone surrogate ("\ud800") is no line append() writes, so it must differ
        if json.dumps(record, ensure_ascii=False).encode("utf-8", "surrogatepass") + b"\n" != raw:
            return f"record {count} does not read back as written: edited (spacing, key order or a repeated key)"
        if not hmac.compare_digest(record_hmac(record, self.last.hmac, self.key), record[HMAC]):
            if count == 1:  # every record after a lost key's replacement fails here first: say so
                return f"record 1 does not match its hmac: edited, or {self.key_path} is not the key that wrote it"
            return f"record {count} does not match its hmac: edited"
        self.last = Link(count, record[HMAC])
        if count == self.head_count:
            self.hmac_at_head_count = record[HMAC]
        return None

    def check_head(self, head_path: Path, head_text: str | None, head: dict | None) -> None:
        notes, last = self.verdict.notes, self.last
        if self.unchained:
            where = "no chained record yet" if last is START else f"the chain starts at line {self.unchained + 1}"
            notes.append(f"{self.path}: unchained up to line {self.unchained} (written before the chain; "
                         f"not verifiable); {where}")
        self.verdict.problem = self._head_problem(head_path, head_text, head)
        if self.verdict.problem:
            return
        if head and head["count"] < last.count:
            behind = last.count - head["count"]
            notes.append(f"{head_path}: {behind} record{'s' * (behind > 1)} behind the history (a writer killed "
                         "between its record and the head); the next append brings it up to date")
        if last is not START:
            across = f" across {self.segments} segments (the last {self.line} lines here)" if self.segments > 1 else \
                f", lines {self.unchained + 1}-{self.line}"
            notes.append(f"{self.path}: intact: records {self.first}-{last.count} chained{across}")
        elif not self.unchained:
            notes.append(f"{self.path}: no records yet")

    def _head_problem(self, head_path: Path, head_text: str | None, head: dict | None) -> str | None:
        if head_text is None:
            return f"{head_path}: missing: a cut tail cannot be ruled out" if self.last is not START else None
        if head is None:
            return f"{head_path}: not a history head (count, last, hmac): edited"
        stated, last = Link(head["count"], head["last"]), self.last
        if not hmac.compare_digest(_head_hmac(stated, self.key), head[HMAC]):
            return f"{head_path}: does not match its hmac: edited"
        if stated.count > last.count:
            cut = f"record {stated.count}" if stated.count == last.count + 1 else \
                f"records {last.count + 1}-{stated.count}"
            return (f"{self.path}: holds records up to {last.count} (line {self.line}) but {head_path} counts "
                    f"{stated.count}: {cut} cut from the tail")
        if self.hmac_at_head_count != stated.hmac:
            return f"{head_path}: record {stated.count}'s hmac is not the one the head holds: the history was replaced"
        return None


def _parse_head(text: str) -> dict | None:
    try:
        head = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if (isinstance(head, dict) and type(head.get("count")) is int and head["count"] >= 0
            and isinstance(head.get("last"), str) and isinstance(head.get(HMAC), str)):
        return head
    return None
