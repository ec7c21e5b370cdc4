"""httpbin's WSGI app, and for VERSION >= 2 a share of failures (HTTPBIN_FAIL_RATE, 0..1).

Failures are spread evenly rather than drawn at random: each worker answers 500 on its n-th request whenever
floor(n * rate) grows, so 200 requests at 0.3 give 60 failures (within one per worker). The health path
(HTTPBIN_HEALTH_PATH) never fails, so the container stays healthy while its traffic goes bad.
"""

import os
import threading

from httpbin import app as httpbin_app


def _rate() -> float:
    if int(os.environ.get("VERSION", "1") or 1) < 2:
        return 0.0
    rate = float(os.environ.get("HTTPBIN_FAIL_RATE", "0") or 0)
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"HTTPBIN_FAIL_RATE must lie in 0..1, not {rate}")
    return rate


class FailRate:
    def __init__(self, wrapped, rate: float, health_path: str):
        self.wrapped, self.rate, self.health_path = wrapped, rate, health_path
        self.lock = threading.Lock()
        self.count = 0

    def fails(self) -> bool:
        with self.lock:
            before = int(self.count * self.rate)
            self.count += 1
            return int(self.count * self.rate) > before

    def __call__(self, environ, start_response):
        if self.rate > 0 and environ.get("PATH_INFO", "") != self.health_path and self.fails():
            body = b"injected failure (HTTPBIN_FAIL_RATE)\n"
            start_response("500 Internal Server Error",
                           [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
            return [body]
        return self.wrapped(environ, start_response)


RATE = _rate()
app = FailRate(httpbin_app, RATE, os.environ.get("HTTPBIN_HEALTH_PATH", "/status/200")) if RATE else httpbin_app
