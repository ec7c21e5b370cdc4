"""nginx's request log (generated/nginx.conf: swiftdeploy_json): exact per-track figures and the split served.

nginx writes one JSON object per request to a file in the stack's log volume. SwiftDeploy reads only what
was appended since its last read (an offset, kept by the reader), inside the nginx container: the log is
never exposed. A request counts for the track that answered it (each track's own server in nginx.conf marks
its answers: the log's `mode`); one nginx answered itself (no track could) counts for neither and is reported
as unserved.
"""

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import SwiftDeployError

LOG_PATH = "/var/tmp/swiftdeploy-requests.jsonl"
# Not user traffic: probes, scrapes, fault injection and nginx's own answers (as the app's metrics exclude).
EXCLUDED_PATHS = frozenset({"/healthz", "/metrics", "/chaos"})
SPLIT_COOKIE = "swiftdeploy_split"


@dataclass(frozen=True)
class Request:
    at: float  # wall-clock seconds (nginx's $msec)
    status: int
    seconds: float  # nginx's $request_time: what the client waited
    track: str | None  # "stable" | "canary"; None when nginx answered itself
    sticky: bool  # the client sent a split cookie


def parse(text: str) -> tuple[list[Request], int]:
    """The user requests in complete log lines, and how many lines could not be read."""
    requests, unreadable = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            request = _request(record)
        except (ValueError, TypeError, KeyError, AttributeError):
            unreadable += 1
            continue
        if request is not None:
            requests.append(request)
    return requests, unreadable


def _request(record: dict) -> Request | None:
    path = str(record["uri"]).split("?", 1)[0]
    if record.get("pin") or path in EXCLUDED_PATHS or path.startswith("/_swiftdeploy/"):
        return None
    at, status, seconds = float(record["t"]), int(record["s"]), float(record["rt"])
    if not (math.isfinite(at) and math.isfinite(seconds)):
        raise ValueError("not finite")
    if record.get("mode") == "canary":
        track = "canary"
    else:
        answered = [part.strip() for part in str(record.get("up", "")).split(",")]
        track = "stable" if answered and answered[-1].isdigit() else None
    return Request(at=at, status=status, seconds=seconds, track=track, sticky=bool(record.get("split")))


@dataclass(frozen=True)
class Exact:
    requests: int
    errors: int  # 5xx answers
    p99_ms: float | None  # nearest-rank 99th percentile of nginx's request time


def exact(requests: Iterable[Request], track: str) -> Exact:
    times = sorted(r.seconds for r in requests if r.track == track)
    errors = sum(1 for r in requests if r.track == track and r.status >= 500)
    return Exact(requests=len(times), errors=errors, p99_ms=nearest_rank(times, 0.99))


def nearest_rank(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = max(0, math.ceil(q * len(sorted_values)) - 1)
    return round(sorted_values[index] * 1000.0, 3)


def split(requests: Iterable[Request]) -> dict:
    """The split actually served: every request, and those of new clients (no cookie: assigned by weight)."""
    requests = list(requests)
    served = [r for r in requests if r.track]
    new = [r for r in served if not r.sticky]
    return {
        "requests": len(served),
        "canary_share": _share(served),
        "new_client_requests": len(new),
        "new_client_canary_share": _share(new),
        "unserved": len(requests) - len(served),
    }


def _share(requests: list[Request]) -> float | None:
    return round(sum(1 for r in requests if r.track == "canary") / len(requests), 4) if requests else None


# Lists the log and its rotated files, oldest first, as "\n== file size offset rotation" (rotation 0: the
# file nginx writes) and, past the first read, each file's bytes from its offset (the caller's for a file it
# read before, else 0) to the size it listed. A file is its inode and its first line's checksum: a new log
# may get the inode of the rotated file just dropped.
# It lists the files' inodes before and after its scan: rotate_logs may move them meanwhile (name.1 to name.2,
# then the log to name.1), and a file moved past the scan's position was skipped, or seen under another
# name, so the read then is taken again (RequestLog.read).
_READ_SCRIPT = r"""
log=$1 keep=$2 position=$3 known=" $4 "
inodes() {
  i=$keep
  while [ "$i" -ge 0 ]; do
    file=$log; [ "$i" -eq 0 ] || file=$log.$i
    stat -c %i "$file" 2>/dev/null || echo -
    i=$((i - 1))
  done | tr '\n' ' '
}
printf '\n== BEGIN %s\n' "$(inodes)"
i=$keep
while [ "$i" -ge 0 ]; do
  file=$log; [ "$i" -eq 0 ] || file=$log.$i
  rotation=$i
  i=$((i - 1))
  found=$(stat -c '%i %s' "$file" 2>/dev/null) || continue
  size=${found#* } offset=0
  id=${found% *}-$(head -n 1 "$file" | cksum | cut -d' ' -f1)
  case "$known" in *" $id:"*) offset=${known#* $id:} offset=${offset%% *} ;; esac
  [ "$offset" -le "$size" ] || offset=0
  printf '\n== %s %s %s %s\n' "$id" "$size" "$offset" "$rotation"
  [ "$position" = 1 ] || tail -c +$((offset + 1)) "$file" | head -c $((size - offset))
done
printf '\n== END %s\n' "$(inodes)"
"""
SCAN_ATTEMPTS = 5  # rotate_logs moves the files at most once a second; a scan takes milliseconds


class RequestLog:
    """Reads what nginx appended since the last read, from inside the nginx container, following a rotation:
    the file it was reading is read to its end before the newer ones."""

    def __init__(self, runtime, service: str = "nginx", keep: int = 3):
        self.runtime, self.service, self.keep = runtime, service, keep
        self.offsets: dict[str, int] | None = None  # file -> bytes read; None: not positioned yet
        self.writing: str | None = None  # the file nginx wrote at the last read
        self.gap: str | None = None  # set by a read that found lines missing since the one before
        self.unreadable = 0

    def read(self) -> list[Request]:
        """The requests appended since the last read; the first read only positions at the end."""
        position = self.offsets is None
        known = " ".join(f"{file}:{offset}" for file, offset in (self.offsets or {}).items())
        for _ in range(SCAN_ATTEMPTS):
            result = self.runtime.exec(self.service, ["sh", "-c", _READ_SCRIPT, "sh", LOG_PATH, str(self.keep),
                                                      "1" if position else "0", known])
            if result.returncode != 0:
                raise SwiftDeployError(f"could not read nginx's request log: "
                                       f"{(result.stderr.strip().splitlines() or ['exit ' + str(result.returncode)])[-1]}")
            parts = result.stdout.split("\n== ")[1:]
            if len(parts) >= 2 and parts[0].startswith("BEGIN ") and parts[-1].startswith("END ") and (
                    parts[0].split()[1:] == parts[-1].split()[1:]):
                break
        else:
            raise SwiftDeployError(f"could not read nginx's request log: its files moved during each of "
                                   f"{SCAN_ATTEMPTS} reads in a row")
        offsets, text, writing = {}, [], None
        for part in parts[1:-1]:
            header, _, data = part.partition("\n")
            file, *numbers = header.split()
            size, offset, rotation = (int(number) for number in numbers)
            writing = file if rotation == 0 else writing
            if position:
                offsets[file] = size
                continue
            complete = data[: data.rfind("\n") + 1]
            offsets[file] = size if len(complete) == len(data) else offset + len(complete.encode("utf-8"))
            text.append(complete)
        # The file nginx wrote at the last read is gone: it rotated more than `keep` times since, and the lines
        # it took after that read were dropped unread. (One with no whole line then had no stable name yet: its
        # first line names it, and it is read from its start under its new name.)
        self.gap = (f"nginx's request log rotated more than logs.keep ({self.keep}) times between two reads, so "
                    f"requests are missing from the figures"
                    if (self.offsets or {}).get(self.writing, 0) > 0 and self.writing not in offsets else None)
        self.offsets, self.writing = offsets, writing
        requests, unreadable = parse("".join(text))
        self.unreadable += unreadable
        return requests
