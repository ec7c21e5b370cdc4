"""Helpers and fixtures for the API service tests (app/); app/ goes on sys.path (not installed).

No conftest.py here on purpose: other test folders do `from projectkit import ...`, which picks up
whichever conftest module was imported first. Test modules import the fixtures they use from here.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

REPO = Path(__file__).resolve().parents[2]
APP_DIR = REPO / "app"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))

from swiftdeploy_app import create_app  # noqa: E402

TOKEN = "t0ken-" + "ab" * 29  # what init would generate: 64 characters


class FakeClock:
    """time(), monotonic(), sleep(): sleep records the call and advances both clocks instantly."""

    def __init__(self, wall: float = 1_795_694_400.123, mono: float = 1000.0):
        self.wall = wall  # 2026-11-26T12:00:00.123Z
        self.mono = mono
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def post_chaos(client, body, token: str | None = TOKEN, content_type: str = "application/json"):
    """POST /chaos; ``body`` is a dict/list (JSON-encoded) or raw bytes/str."""
    headers = {} if token is None else {"X-Chaos-Token": token}
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/chaos", data=data, headers=headers, content_type=content_type)


def sample(client_or_app, name: str, **labels) -> float | None:
    """A sample value from the app's registry (None when the series does not exist)."""
    app = getattr(client_or_app, "application", client_or_app)
    return app.extensions["swiftdeploy"].metrics.registry.get_sample_value(name, labels)


# --- fixtures (import them by name into the test module) ---------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_app(clock):
    """make_app(mode="canary", token=TOKEN, seed=0, **kw) -> Flask app on a fresh registry and the fake clock."""

    def factory(mode: str = "canary", token: str | None = TOKEN, seed: int = 0, **kwargs):
        kwargs.setdefault("registry", CollectorRegistry())
        kwargs.setdefault("clock", clock)
        kwargs.setdefault("rng", random.Random(seed))
        kwargs.setdefault("version", "1.2.3")
        return create_app(mode=mode, chaos_token=token, **kwargs)

    return factory


@pytest.fixture
def canary(make_app):
    return make_app("canary").test_client()


@pytest.fixture
def stable(make_app):
    return make_app("stable").test_client()
