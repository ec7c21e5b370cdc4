"""The history's segments: history.jsonl is the one written; past segment_mb it is sealed as history-NNNNNN.jsonl.

Segment numbers only grow, so a missing one is named by the gap it leaves. Retention (history.keep_days)
removes whole sealed segments, oldest first, after appending a chained `history_retention` record that says
which segments it removes and the link (count and hmac) of the last record they held: verify starts the
chain there, and a segment removed without such a record is reported missing.
"""

import datetime
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

RETENTION_EVENT = "history_retention"


@dataclass(frozen=True)
class Segment:
    number: int
    path: Path


def sealed(active: Path) -> list[Segment]:
    """The sealed segments beside the active history, oldest first."""
    pattern = re.compile(rf"{re.escape(active.stem)}-([0-9]{{6}}){re.escape(active.suffix)}\Z")
    try:
        names = os.listdir(active.parent)
    except FileNotFoundError:
        return []
    found = [(int(m[1]), active.parent / name) for name in names if (m := pattern.match(name))]
    return [Segment(number, path) for number, path in sorted(found)]


def next_path(active: Path) -> Path:
    """The name the active segment is sealed under: numbers go on after segments retention removed."""
    segments = sealed(active)
    number = segments[-1].number + 1 if segments else max(retention_starts([active]), default=0) + 1
    return segment_path(active, number)


def segment_path(active: Path, number: int) -> Path:
    return active.with_name(f"{active.stem}-{number:06d}{active.suffix}")


def last_timestamp(path: Path) -> datetime.datetime | None:
    """The ts of a sealed segment's last record (its newest)."""
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            file.seek(max(0, size - 64 * 1024))
            lines = file.read().rstrip(b"\n").split(b"\n")
        stamp = json.loads(lines[-1])["ts"]
        return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return None


def expired(active: Path, keep_days: float, now: datetime.datetime) -> list[Segment]:
    """The oldest sealed segments whose newest record is older than keep_days (never one after a younger one)."""
    out = []
    for segment in sealed(active):
        newest = last_timestamp(segment.path)
        if newest is None or now - newest <= datetime.timedelta(days=keep_days):
            break
        out.append(segment)
    return out


def retention_starts(paths: list[Path]) -> dict[int, tuple[int, str]]:
    """segment number removed through -> (count, hmac) of the last record removed, from every retention
    record in these files (they are checked as chain records when the walk reaches them)."""
    starts = {}
    needle = f'"event": "{RETENTION_EVENT}"'.encode()
    for path in paths:
        try:
            with open(path, "rb") as file:
                for raw in file:
                    if needle not in raw:
                        continue
                    try:
                        record = json.loads(raw)
                        starts[int(record["removed_through"])] = (int(record["last_count"]), str(record["last_hmac"]))
                    except (ValueError, KeyError, TypeError):
                        continue
        except OSError:
            continue
    return starts
