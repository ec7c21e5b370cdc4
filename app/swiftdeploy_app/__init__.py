"""SwiftDeploy API service: a Flask application factory (SPEC A-1..A-7).

``create_app()`` reads ``MODE``, ``APP_VERSION``, ``APP_PORT`` and ``CHAOS_TOKEN`` from the
environment unless given as arguments; ``registry``, ``clock`` and ``rng`` are injectable for tests.
A clock is any object with ``time()``, ``monotonic()`` and ``sleep()`` (the ``time`` module is one).

Under gunicorn (gunicorn.conf.py) every worker is an app of its own: the chaos setting lives in a file of
the workers' shared directory (SHARED_DIR_VARIABLE, prometheus_client's own switch too) that they all map, the request metrics are summed over them, and the uptime
counts from STARTED_VARIABLE (the master's start, on the system-wide monotonic clock).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry
from werkzeug.exceptions import MethodNotAllowed

from .chaos import EXEMPT_ROUTES, ChaosState
from .errors import json_error, register_error_handlers
from .metrics import UNMATCHED_PATH, AppMetrics
from .routes import bp
from .settings import Settings, SettingsError, load_settings

__all__ = ["create_app", "Settings", "SettingsError", "MAX_BODY_BYTES"]

MAX_BODY_BYTES = 4096  # request bodies above this get 413
SHARED_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
STARTED_VARIABLE = "SWIFTDEPLOY_APP_STARTED"
CHAOS_FILE = "chaos.state"


@dataclass
class AppState:
    settings: Settings
    chaos: ChaosState
    metrics: AppMetrics
    clock: Any
    rng: Any
    started: float  # clock.monotonic() at start

    def uptime(self) -> float:
        return max(self.clock.monotonic() - self.started, 0.0)


def create_app(
    mode: str | None = None,
    version: str | None = None,
    chaos_token: str | None = None,
    registry: CollectorRegistry | None = None,
    clock: Any = None,
    rng: random.Random | None = None,
) -> Flask:
    """Build the app; raise SettingsError (one line) when MODE or APP_PORT is invalid."""
    settings = load_settings(mode=mode, version=version, chaos_token=chaos_token)
    started = float(os.environ[STARTED_VARIABLE]) if clock is None and STARTED_VARIABLE in os.environ else None
    clock = time if clock is None else clock
    shared = os.environ.get(SHARED_DIR_VARIABLE)
    chaos = ChaosState(os.path.join(shared, CHAOS_FILE) if shared else None)
    state = AppState(
        settings=settings,
        chaos=chaos,
        metrics=None,  # type: ignore[arg-type]  # set just below (its gauges read the state)
        clock=clock,
        rng=random.Random() if rng is None else rng,
        started=clock.monotonic() if started is None else started,
    )
    state.metrics = AppMetrics(
        CollectorRegistry() if registry is None else registry,
        canary=settings.canary,
        uptime=state.uptime,
        chaos_active=chaos.active_value,
        shared_dir=shared,
    )

    app = Flask(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.extensions["swiftdeploy"] = state
    app.register_blueprint(bp)
    register_error_handlers(app)
    _register_hooks(app, state)
    return app


def _register_hooks(app: Flask, state: AppState) -> None:
    # before_request functions run in registration order; after_request ones in reverse order.

    @app.before_request
    def start_timer() -> None:
        g.swiftdeploy_start = state.clock.monotonic()

    @app.before_request
    def apply_chaos() -> Response | None:
        if request.path in EXEMPT_ROUTES:  # these routes have no variables: path == template
            return None
        setting = state.chaos.get()
        if setting.mode == "slow":
            state.clock.sleep(setting.duration)
        elif setting.mode == "error" and state.rng.random() < setting.rate:
            return json_error(500, f"chaos: injected failure (error mode, rate {setting.rate:g})")
        return None

    @app.after_request
    def record_metrics(response: Response) -> Response:
        start = g.get("swiftdeploy_start")
        seconds = state.clock.monotonic() - start if start is not None else 0.0
        state.metrics.record(request.method, _route_template(app), response.status_code, seconds)
        return response

    @app.after_request
    def mark_mode(response: Response) -> Response:
        if state.settings.canary:
            response.headers["X-Mode"] = "canary"
        return response


def _route_template(app: Flask) -> str:
    """The matched route's template; for a 405 the template of the path's route; else UNMATCHED_PATH."""
    if request.url_rule is not None:
        return request.url_rule.rule
    err = request.routing_exception
    if isinstance(err, MethodNotAllowed) and err.valid_methods:
        try:
            adapter = app.url_map.bind_to_environ(request.environ)
            rule, _ = adapter.match(method=err.valid_methods[0], return_rule=True)
            return rule.rule
        except Exception:  # noqa: BLE001 - a label must never break a response
            pass
    return UNMATCHED_PATH
