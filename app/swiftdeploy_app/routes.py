"""The endpoints of SPEC A-2..A-6: /, /healthz, /chaos, /metrics."""

from __future__ import annotations

import hmac
from datetime import datetime, timezone

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from .chaos import ChaosInputError, parse_chaos
from .errors import json_error
from .metrics import CONTENT_TYPE

bp = Blueprint("swiftdeploy", __name__)
TOKEN_HEADER = "X-Chaos-Token"


def _state():
    return current_app.extensions["swiftdeploy"]


def iso_utc(epoch_seconds: float) -> str:
    """ISO-8601 UTC with milliseconds and a ``Z``: ``2026-11-26T12:00:00.123Z``."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@bp.get("/", endpoint="index")
def index():
    state = _state()
    return jsonify(
        message="Welcome to SwiftDeploy",
        mode=state.settings.mode,
        version=state.settings.version,
        timestamp=iso_utc(state.clock.time()),
    )


@bp.get("/healthz", endpoint="healthz")
def healthz():
    state = _state()
    return jsonify(
        status="ok",
        uptime_seconds=round(state.uptime(), 3),
        mode=state.settings.mode,
        version=state.settings.version,
    )


@bp.get("/metrics", endpoint="metrics")
def metrics():
    return Response(_state().metrics.exposition(), content_type=CONTENT_TYPE)


def _token_error() -> Response | None:
    expected = _state().settings.chaos_token
    if not expected:
        return json_error(403, "chaos is disabled: this instance has no CHAOS_TOKEN configured")
    given = request.headers.get(TOKEN_HEADER)
    if given is None:
        return json_error(401, f"missing {TOKEN_HEADER} header")
    if not hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8")):
        return json_error(401, f"invalid {TOKEN_HEADER}")
    return None


def _read_body() -> bytes:
    """The request body; 413 (RequestEntityTooLarge) when it exceeds MAX_CONTENT_LENGTH."""
    body = request.get_data(cache=False)  # a Content-Length above the limit raises 413 here
    # A chunked body is cut at the limit silently; reading past the cut raises 413 (Werkzeug 3).
    if request.stream.read(1):
        raise RequestEntityTooLarge()
    return body


@bp.post("/chaos", endpoint="chaos")
def chaos():
    state = _state()
    log = current_app.logger
    if not state.settings.canary:
        log.warning("chaos refused: this instance runs in stable mode")
        return json_error(403, "chaos is only available in canary mode; this instance runs in stable mode")
    refused = _token_error()
    if refused is not None:
        log.warning("chaos refused (%s): %s", refused.status_code, refused.get_json()["error"])
        return refused
    if not request.is_json:
        got = request.mimetype or "none"
        return json_error(415, f"Content-Type must be application/json, got {got}", field="Content-Type")
    body = _read_body()
    try:
        setting = parse_chaos(body)
    except ChaosInputError as err:
        log.warning("chaos refused (400): %s: %s", err.field, err.message)
        return json_error(400, err.message, field=err.field)
    previous = state.chaos.set(setting)
    log.warning("chaos set to %s (was %s)", setting.as_dict(), previous.as_dict())
    return jsonify(chaos=setting.as_dict(), previous=previous.as_dict())
