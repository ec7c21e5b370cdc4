"""JSON error responses: every error the app answers is a JSON object ``{"error", "code"[, "field"]}``."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed


def json_error(status: int, message: str, field: str | None = None) -> Response:
    body: dict = {"error": message, "code": status}
    if field is not None:
        body["field"] = field
    response = jsonify(body)
    response.status_code = status
    return response


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _message(err: HTTPException) -> str:
    if err.code == 404:
        return _clip(f"no route for {request.path}")
    if isinstance(err, MethodNotAllowed):
        allowed = ", ".join(sorted(err.valid_methods or ()))
        return _clip(f"method {request.method} is not allowed on {request.path}; allowed: {allowed}")
    if err.code == 413:
        limit = request.max_content_length
        return f"request body too large; the limit is {limit} bytes" if limit else "request body too large"
    if err.code == 500:
        return "internal server error"
    return err.description or err.name


def handle_http_exception(err: HTTPException):
    if err.code is None or err.code < 400:  # e.g. a routing redirect: not an error
        return err
    response = json_error(err.code, _message(err))
    for name, value in err.get_headers():
        if name.lower() != "content-type":  # keeps Allow on 405, Retry-After, ...
            response.headers[name] = value
    return response


def register_error_handlers(app: Flask) -> None:
    # Unhandled exceptions reach this handler as InternalServerError (Flask logs the traceback first).
    app.register_error_handler(HTTPException, handle_http_exception)
