"""Status scrapes folded into per-period figures, in memory that does not grow with the history.

The period is not known before the last record (a pass over a stream cannot look at the time span first),
so folding starts at the finest period and, whenever more than MAX_PERIODS periods hold scrapes, moves to
the next coarser one and merges. The outcome is the finest period of the ladder at which the whole history
fits in MAX_PERIODS periods, whatever the order of the records (the set of periods only grows).
"""

import datetime
from dataclasses import dataclass

MAX_PERIODS = 150
_LADDER = (10, 30, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400)  # seconds; past the last, x4 each step


def epoch_seconds(ts) -> float | None:
    """Seconds since 1970 of an ISO-8601 time with a zone (the history's `ts`); None when it is not one."""
    try:
        moment = datetime.datetime.fromisoformat(ts)
    except (TypeError, ValueError):
        return None
    return moment.timestamp() if moment.tzinfo else None


def duration_text(seconds: int) -> str:
    """10 -> "10 seconds", 60 -> "1 minute", 21600 -> "6 hours"."""
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds % length == 0:
            count = seconds // length
            return f"{count} {unit}" + ("s" if count != 1 else "")
    raise AssertionError("unreachable: every integer is a multiple of 1")


def iso_time(seconds: float, layout: str = "%Y-%m-%dT%H:%M:%SZ") -> str:
    """The UTC time `seconds` after 1970 in `layout`; a period or axis tick may start before year 1 or after
    9999 (a history with such a ts), which datetime cannot show: then the seconds themselves."""
    try:
        return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime(layout)
    except (ValueError, OverflowError, OSError):
        return f"{seconds:.0f} s after 1970"


@dataclass(frozen=True)
class PeriodFigures:
    """One track in one period: how many scrapes saw it, and the mean and worst of their figures."""
    scrapes: int
    down: int  # scrapes in which the track's metrics could not be read
    error_rate_mean: float | None
    error_rate_max: float | None
    p99_ms_mean: float | None
    p99_ms_max: float | None
    req_per_s_mean: float | None


@dataclass(frozen=True)
class Period:
    start: float  # seconds since 1970
    tracks: dict  # track name -> PeriodFigures, only the tracks some scrape in the period saw


class _Figure:
    """Count, sum and maximum of one figure: all three merge exactly when periods are merged."""
    __slots__ = ("count", "total", "high")

    def __init__(self):
        self.count, self.total, self.high = 0, 0.0, None

    def add(self, value) -> None:
        if value is not None:
            self.count, self.total = self.count + 1, self.total + value
            self.high = value if self.high is None or value > self.high else self.high

    def merge(self, other: "_Figure") -> None:
        self.count, self.total = self.count + other.count, self.total + other.total
        if other.high is not None and (self.high is None or other.high > self.high):
            self.high = other.high

    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


class _TrackPeriod:
    __slots__ = ("scrapes", "down", "error_rate", "p99_ms", "req_per_s")

    def __init__(self):
        self.scrapes = self.down = 0
        self.error_rate, self.p99_ms, self.req_per_s = _Figure(), _Figure(), _Figure()

    def add(self, figures: dict) -> None:
        get = figures.get
        self.scrapes += 1
        self.down += get("down") is not None
        self.error_rate.add(get("error_rate"))
        self.p99_ms.add(get("p99_ms"))
        self.req_per_s.add(get("req_per_s"))

    def merge(self, other: "_TrackPeriod") -> None:
        self.scrapes, self.down = self.scrapes + other.scrapes, self.down + other.down
        for name in ("error_rate", "p99_ms", "req_per_s"):
            getattr(self, name).merge(getattr(other, name))

    def figures(self) -> PeriodFigures:
        return PeriodFigures(self.scrapes, self.down, self.error_rate.mean(), self.error_rate.high,
                             self.p99_ms.mean(), self.p99_ms.high, self.req_per_s.mean())


class PeriodFolder:
    def __init__(self):
        self.seconds = _LADDER[0]
        self.periods: dict[int, dict[str, _TrackPeriod]] = {}  # period index -> track -> figures

    def add(self, epoch: float, tracks: dict) -> None:
        """tracks: name -> the checked figures (dashboard.status_parts) of one scrape at `epoch`."""
        period = self.periods.setdefault(int(epoch // self.seconds), {})
        for name, figures in tracks.items():
            track = period.get(name)
            if track is None:  # not setdefault: that would build a _TrackPeriod for every scrape
                track = period[name] = _TrackPeriod()
            track.add(figures)
        while len(self.periods) > MAX_PERIODS:
            self._coarsen()

    def _coarsen(self) -> None:
        coarser = next((s for s in _LADDER if s > self.seconds), self.seconds * 4)
        merged: dict[int, dict[str, _TrackPeriod]] = {}
        for index in sorted(self.periods):
            target = merged.setdefault(index * self.seconds // coarser, {})
            for name, track in self.periods[index].items():
                target.setdefault(name, _TrackPeriod()).merge(track)
        self.seconds, self.periods = coarser, merged

    def result(self) -> tuple[Period, ...]:
        return tuple(Period(float(index * self.seconds), {name: track.figures() for name, track in sorted(
            self.periods[index].items(), key=lambda item: item[0] != "stable")}) for index in sorted(self.periods))
