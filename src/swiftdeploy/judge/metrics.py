"""Read the app's /metrics text and turn two scrapes into windowed traffic figures, the way PromQL would."""

import math
import time
from collections import defaultdict
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from ..errors import SwiftDeployError

REQUESTS = "http_requests_total"
DURATION = "http_request_duration_seconds"
DEFAULT_EXCLUDED_PATHS = frozenset({"/healthz", "/metrics"})

SeriesKey = tuple[tuple[str, str], ...]  # sorted label pairs, without `le`


class MetricsError(SwiftDeployError):
    """Exposition text that cannot be read, or two scrapes that cannot be compared."""


@dataclass(frozen=True)
class Scrape:
    at: float  # time.monotonic() of the scrape: differences give the window length
    wall: float  # time.time() of the scrape, for records and display
    requests: dict[SeriesKey, float]  # http_requests_total per series
    buckets: dict[SeriesKey, dict[float, float]]  # cumulative bucket counts per series, by upper bound
    counts: dict[SeriesKey, float]  # http_request_duration_seconds_count per series
    gauges: dict[str, list[tuple[dict[str, str], float]]]  # every gauge/untyped sample, unfiltered


@dataclass(frozen=True)
class Window:
    seconds: float
    requests: float
    errors: float  # responses with a 5xx status_code
    error_rate: float | None  # None when the window has no requests
    req_per_s: float
    p99_seconds: float | None  # None when the window has no latency observations
    observations: float
    p99_saturated: bool = False  # the 99th percentile falls in the +Inf bucket: the estimate is only a floor

    @property
    def p99_ms(self) -> float | None:
        return None if self.p99_seconds is None else self.p99_seconds * 1000.0


def parse(text: str, at: float | None = None, wall: float | None = None,
          exclude_paths=DEFAULT_EXCLUDED_PATHS) -> Scrape:
    """One scrape of exposition text; series whose `path` label is in exclude_paths are left out of traffic."""
    if not text.strip():
        raise MetricsError("metrics text is empty")
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as err:  # noqa: BLE001 - on bad text the parser also raises IndexError, KeyError, ...
        raise MetricsError(_locate_parse_error(text, err)) from None
    excluded = frozenset(exclude_paths)
    requests, buckets, counts = {}, defaultdict(dict), {}
    gauges = defaultdict(list)
    for family in families:
        for sample in family.samples:
            labels = dict(sample.labels)
            if sample.name in (REQUESTS, DURATION + "_bucket", DURATION + "_count"):
                if labels.get("path") in excluded:
                    continue
            if sample.name == REQUESTS:
                _put_once(requests, _key(labels), float(sample.value), sample.name)
            elif sample.name == DURATION + "_bucket":
                bound = _bucket_bound(labels.pop("le", None), labels)
                _put_once(buckets[_key(labels)], bound, float(sample.value), sample.name, labels)
            elif sample.name == DURATION + "_count":
                _put_once(counts, _key(labels), float(sample.value), sample.name)
            elif family.type in ("gauge", "unknown"):
                gauges[sample.name].append((labels, float(sample.value)))
    for key, series in buckets.items():
        if math.inf not in series:
            raise MetricsError(f"{DURATION}{_show(key)} has no le=\"+Inf\" bucket")
    return Scrape(at=time.monotonic() if at is None else at, wall=time.time() if wall is None else wall,
                  requests=requests, buckets=dict(buckets), counts=counts, gauges=dict(gauges))


def total(scrapes: list[Scrape]) -> Scrape:
    """One track's figures from the scrapes of each of its tasks: counters and buckets summed per series
    (what PromQL's sum() without the instance label gives); a gauge series takes its highest value (chaos
    active on any task shows). At the latest scrape."""
    if not scrapes:
        raise MetricsError("no task of the track answered")
    if len(scrapes) == 1:
        return scrapes[0]
    requests, counts, buckets, gauges = defaultdict(float), defaultdict(float), defaultdict(dict), defaultdict(dict)
    for scrape in scrapes:
        for key, value in scrape.requests.items():
            requests[key] += value
        for key, value in scrape.counts.items():
            counts[key] += value
        for key, series in scrape.buckets.items():
            for bound, value in series.items():
                buckets[key][bound] = buckets[key].get(bound, 0.0) + value
        for name, samples in scrape.gauges.items():
            for labels, value in samples:
                key = _key(labels)
                gauges[name][key] = max(value, gauges[name].get(key, value))
    last = max(scrapes, key=lambda s: s.at)
    return Scrape(at=last.at, wall=last.wall, requests=dict(requests), buckets=dict(buckets), counts=dict(counts),
                  gauges={name: [(dict(key), value) for key, value in series.items()] for name, series in gauges.items()})


def window(before: Scrape, after: Scrape) -> Window:
    """Traffic between two scrapes of the same target; a series that went down was reset (process restart)."""
    seconds = after.at - before.at
    if seconds <= 0:
        raise MetricsError(f"the second scrape is not later than the first ({seconds:.3f} s apart)")
    requests = errors = 0.0
    for key, value in after.requests.items():
        previous = before.requests.get(key, 0.0)
        increase = value if value < previous else value - previous
        requests += increase
        if _is_server_error(key):
            errors += increase
    summed = defaultdict(float)
    for key, series in after.buckets.items():
        earlier = before.buckets.get(key, {})
        reset = (after.counts.get(key, 0.0) < before.counts.get(key, 0.0)
                 or (earlier and set(earlier) != set(series))  # bucket layout changed: a new process
                 or any(value < earlier.get(bound, 0.0) for bound, value in series.items()))
        for bound, value in series.items():
            summed[bound] += value if reset else value - earlier.get(bound, 0.0)
    p99 = bucket_quantile(0.99, summed.items())
    return Window(seconds=seconds, requests=requests, errors=errors,
                  error_rate=errors / requests if requests > 0 else None,
                  req_per_s=requests / seconds, p99_seconds=None if math.isnan(p99) else p99,
                  observations=summed.get(math.inf, 0.0), p99_saturated=quantile_saturated(0.99, summed))


def bucket_quantile(q: float, buckets) -> float:
    """PromQL histogram_quantile over classic buckets: iterable of (upper_bound, cumulative_count)."""
    if math.isnan(q):
        return math.nan
    if q < 0 or q > 1:
        return -math.inf if q < 0 else math.inf
    merged = []
    for bound, count in sorted(((float(b), float(c)) for b, c in buckets), key=lambda pair: pair[0]):
        if merged and merged[-1][0] == bound:
            merged[-1][1] += count
        else:
            merged.append([bound, count])
    if len(merged) < 2 or merged[-1][0] != math.inf:
        return math.nan
    for i in range(1, len(merged)):
        merged[i][1] = max(merged[i][1], merged[i - 1][1])
    total = merged[-1][1]
    if total == 0:
        return math.nan
    rank = q * total
    index = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if index == len(merged) - 1:
        return merged[-2][0]  # rank in the +Inf bucket: PromQL answers the highest finite bound
    if index == 0 and merged[0][0] <= 0:
        return merged[0][0]
    lower, below = (merged[index - 1][0], merged[index - 1][1]) if index else (0.0, 0.0)
    in_bucket = merged[index][1] - below
    if in_bucket == 0:  # only q == 0 with an empty first bucket; Go computes 0/0 = NaN
        return math.nan
    return lower + (merged[index][0] - lower) * (rank - below) / in_bucket


def quantile_saturated(q: float, summed: dict[float, float]) -> bool:
    """True when the q-quantile's rank lies above the highest finite bucket (histogram_quantile then answers
    that bound, a floor of the true figure)."""
    total = summed.get(math.inf, 0.0)
    finite = [bound for bound in summed if bound != math.inf]
    return bool(total > 0 and finite and summed[max(finite)] < q * total)


def gauge(scrape: Scrape, name: str, **labels: str) -> float | None:
    """The value of gauge `name` (e.g. chaos_active, app_mode) whose labels include `labels`; None if absent."""
    matches = [value for sample_labels, value in scrape.gauges.get(name, ())
               if all(sample_labels.get(k) == str(v) for k, v in labels.items())]
    if len(matches) > 1:
        raise MetricsError(f"{name} has {len(matches)} series matching {labels or 'no labels'}: say which one")
    return matches[0] if matches else None


def _key(labels: dict[str, str]) -> SeriesKey:
    return tuple(sorted(labels.items()))


def _show(key: SeriesKey) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in key) + "}"


def _put_once(target: dict, key, value: float, name: str, labels: dict | None = None) -> None:
    if key in target:
        where = _show(_key(labels)) + f' le="{key}"' if labels is not None else _show(key)
        raise MetricsError(f"{name}{where} appears twice in one scrape")
    target[key] = value


def _bucket_bound(le: str | None, labels: dict[str, str]) -> float:
    if le is None:
        raise MetricsError(f"{DURATION}_bucket{_show(_key(labels))} has no le label")
    try:
        return float(le)
    except ValueError:
        raise MetricsError(f"{DURATION}_bucket{_show(_key(labels))} has le=\"{le}\", not a number") from None


def _is_server_error(key: SeriesKey) -> bool:
    code = dict(key).get("status_code", "")
    return len(code) == 3 and code.startswith("5") and code.isdigit()


def _locate_parse_error(text: str, err: Exception) -> str:
    # The parser does not say where it failed. Bisect on the number of leading lines it can read: the line
    # whose addition makes them unreadable is the culprit, in its context (e.g. a second TYPE for a family).
    lines = text.split("\n")  # the parser's own line breaks, so the number matches an editor's
    if _parse_problem(lines) is None:
        return f"malformed metrics text: {_why(err)}"
    readable, unreadable = 0, len(lines)
    while unreadable - readable > 1:
        middle = (readable + unreadable) // 2
        if _parse_problem(lines[:middle]):
            unreadable = middle
        else:
            readable = middle
    why = _parse_problem(lines[:unreadable])
    return f"malformed metrics text at line {unreadable} ({why}): {lines[unreadable - 1][:80]!r}"


def _parse_problem(lines: list[str]) -> str | None:
    try:
        list(text_string_to_metric_families("\n".join(lines) + "\n"))
    except Exception as err:  # noqa: BLE001 - see parse()
        return _why(err)
    return None


def _why(err: Exception) -> str:
    return " ".join(str(err).split()) or type(err).__name__
