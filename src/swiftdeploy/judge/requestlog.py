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


class RequestLog:
    """Reads what nginx appended since the last read, from inside the nginx container."""

    def __init__(self, runtime, service: str = "nginx"):
        self.runtime, self.service = runtime, service
        self.offset: int | None = None  # None: not positioned yet (the first read starts at the end)
        self.unreadable = 0

    def read(self) -> list[Request]:
        start = 1 if self.offset is None else self.offset + 1
        script = 'stat -c %s "$1" 2>/dev/null || echo 0; [ -f "$1" ] && [ "$2" -gt 0 ] && tail -c +"$2" "$1"; true'
        first = self.offset is None
        result = self.runtime.exec(self.service, ["sh", "-c", script, "sh", LOG_PATH, "0" if first else str(start)])
        if result.returncode != 0:
            raise SwiftDeployError(f"could not read nginx's request log: "
                                   f"{(result.stderr.strip().splitlines() or ['exit ' + str(result.returncode)])[-1]}")
        size_line, _, data = result.stdout.partition("\n")
        size = int(size_line.strip() or 0)
        if first or size < (self.offset or 0):  # first read, or the log was truncated: start from its end now
            self.offset = size if first else 0
            return [] if first else self.read()
        complete = data[: data.rfind("\n") + 1]
        self.offset += len(complete.encode("utf-8"))
        requests, unreadable = parse(complete)
        self.unreadable += unreadable
        return requests
