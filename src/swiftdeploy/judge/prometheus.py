"""PromQL source of the track figures: the stack's Prometheus instead of scraping each track twice.

The window is the one the Sampler chose (its two instants): every query is evaluated at the later one
over a range as long as the window, so the figures cover what a direct scrape pair covers. Prometheus's
increase() extrapolates the samples inside the range to its edges, so `requests` and `errors` are
estimates of the whole window; the error rate and the P99 are ratios of series sampled at the same
instants, and the extrapolation cancels out of them (docs/rollout-and-gates.md: "Metrics from Prometheus").
"""

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request

from ..errors import SwiftDeployError
from .metrics import DURATION, REQUESTS, Scrape, Window, quantile_saturated

JOB = "swiftdeploy"  # the job in generated/prometheus.yml
TRAFFIC = 'path!~"/healthz|/metrics"'  # not traffic: probes and scrapes (the scrape source leaves them out too)
GAUGES = ("chaos_active", "app_mode")
TIMEOUT_SECONDS = 5.0


class PrometheusError(SwiftDeployError):
    """Prometheus could not be asked, or its answer cannot be read."""


def selector(track: str, *more: str) -> str:
    return "{" + ", ".join((f'job="{JOB}"', f'track="{track}"', TRAFFIC) + more) + "}"


def queries(track: str, range_ms: int) -> dict[str, str]:
    """The window's PromQL: requests by status code, bucket increases by bound, and the P99 itself."""
    window = f"[{range_ms}ms]"
    return {
        "requests": f"sum by (status_code) (increase({REQUESTS}{selector(track)}{window}))",
        "buckets": f"sum by (le) (increase({DURATION}_bucket{selector(track)}{window}))",
        "p99": f"histogram_quantile(0.99, sum by (le) (rate({DURATION}_bucket{selector(track)}{window})))",
    }


class PrometheusSource:
    """Track figures from PromQL over the Prometheus at `url` (the stack's, published on 127.0.0.1)."""

    def __init__(self, url: str, get=None):
        self.url = url.rstrip("/")
        self.get = get or _http_get

    def sample(self, track: str) -> Scrape:
        """An instant of the track's window: Prometheus must be scraping the track; its gauges as they are."""
        now_mono, now = time.monotonic(), time.time()
        up = self.query(f'up{{job="{JOB}", track="{track}"}}', now)
        if not up:
            raise PrometheusError(f"Prometheus at {self.url} has no target for the {track} track "
                                  "(generated/prometheus.yml not loaded, or not scraped yet)")
        if all(value == 0 for _, value in up):
            raise PrometheusError(f"Prometheus at {self.url} cannot scrape the {track} track (up is 0)")
        names = "|".join(GAUGES)
        gauges: dict[str, list] = {}
        for labels, value in self.query(f'{{__name__=~"{names}", job="{JOB}", track="{track}"}}', now):
            gauges.setdefault(labels.get("__name__", ""), []).append((labels, value))
        return Scrape(at=now_mono, wall=now, requests={}, buckets={}, counts={}, gauges=gauges)

    def window(self, track: str, base: Scrape, latest: Scrape) -> Window:
        """The track's figures over [base, latest], evaluated at latest.wall."""
        seconds = latest.at - base.at
        if seconds <= 0:
            raise PrometheusError(f"the window's end is not later than its start ({seconds:.3f} s)")
        asked = queries(track, max(1, round(seconds * 1000)))
        requests = errors = 0.0
        for labels, value in self.query(asked["requests"], latest.wall):
            requests += _finite(value)
            code = labels.get("status_code", "")
            if len(code) == 3 and code.startswith("5") and code.isdigit():
                errors += _finite(value)
        summed = {}
        for labels, value in self.query(asked["buckets"], latest.wall):
            summed[_bound(labels.get("le"))] = _finite(value)
        p99_answer = self.query(asked["p99"], latest.wall)
        p99 = p99_answer[0][1] if p99_answer else math.nan
        if math.isinf(p99):
            raise PrometheusError(f"Prometheus answered P99 {p99} for the {track} track (no +Inf bucket?)")
        return Window(seconds=seconds, requests=requests, errors=errors,
                      error_rate=errors / requests if requests > 0 else None, req_per_s=requests / seconds,
                      p99_seconds=None if math.isnan(p99) else p99, observations=summed.get(math.inf, 0.0),
                      p99_saturated=quantile_saturated(0.99, summed))

    def query(self, promql: str, at: float) -> list[tuple[dict[str, str], float]]:
        """An instant query: [(labels, value)]; any failure is one PrometheusError line."""
        params = urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"})
        where = f"Prometheus at {self.url}"
        status, body = self.get(f"{self.url}/api/v1/query?{params}")
        try:
            answer = json.loads(body)
        except ValueError:
            raise PrometheusError(f"{where} answered HTTP {status} with something that is not JSON: "
                                  f"{_snippet(body)}") from None
        if not isinstance(answer, dict):
            raise PrometheusError(f"{where} answered a JSON {type(answer).__name__}, not an object")
        if status != 200 or answer.get("status") != "success":
            why = answer.get("error") or answer.get("status") or "no error given"
            kind = " ".join(str(answer.get("errorType", "?")).split())[:40] or "?"
            raise PrometheusError(f"{where} refused the query (HTTP {status}, {kind}): "
                                  f"{' '.join(str(why).split())[:200]}")
        data = answer.get("data")
        if not isinstance(data, dict) or data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
            raise PrometheusError(f"{where} answered without a vector result: {_snippet(body)}")
        return [_sample(item, where) for item in data["result"]]


def _sample(item, where: str) -> tuple[dict[str, str], float]:
    try:
        labels, (_, text) = item["metric"], item["value"]
        if not isinstance(labels, dict) or not isinstance(text, str):
            raise TypeError
        return labels, float(text)  # Prometheus writes "NaN", "+Inf" and "-Inf" as float() reads them
    except (KeyError, TypeError, ValueError):
        raise PrometheusError(f"{where} answered a malformed sample: {_snippet(json.dumps(item))}") from None


def _finite(value: float) -> float:
    return value if math.isfinite(value) else 0.0  # NaN only for an empty range: nothing happened


def _bound(le) -> float:
    try:
        return float(le)
    except (TypeError, ValueError):
        raise PrometheusError(f"a bucket series without a numeric le label: le={le!r}") from None


def _snippet(text) -> str:
    flat = " ".join(str(text).split())
    return repr(flat[:80] + ("..." if len(flat) > 80 else ""))


def _http_get(url: str) -> tuple[int, str]:
    where = url.split("/api/")[0]
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - a loopback URL
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")
    except urllib.error.URLError as err:
        reason = getattr(err.reason, "strerror", None) or str(err.reason)
        raise PrometheusError(f"could not query Prometheus at {where}: {reason} "
                              "(is the stack up? see `docker compose logs prometheus`)") from None
    except (TimeoutError, OSError) as err:
        raise PrometheusError(f"could not query Prometheus at {where}: {err or type(err).__name__}") from None
