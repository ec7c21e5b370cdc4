"""Runtime settings of the API service, read from the environment once at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

MODES = ("stable", "canary")
DEFAULT_PORT = 3000
DEFAULT_VERSION = "unknown"
MAX_WORKERS = 64


class SettingsError(ValueError):
    """A setting is invalid; ``str()`` is one line naming the variable and the value."""


@dataclass(frozen=True)
class Settings:
    mode: str
    version: str
    port: int
    chaos_token: str  # empty string: chaos is refused for everyone
    workers: int | None = None  # gunicorn worker processes; None: one per CPU the container may use

    @property
    def canary(self) -> bool:
        return self.mode == "canary"


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise SettingsError(f"MODE must be 'stable' or 'canary', got {mode!r}")
    return mode


def check_port(raw: str) -> int:
    try:
        port = int(raw, 10)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise SettingsError(f"APP_PORT must be an integer 1-65535, got {raw!r}")
    return port


def check_workers(raw: str) -> int | None:
    if raw == "auto":
        return None
    try:
        workers = int(raw, 10)
    except ValueError:
        workers = 0
    if not 1 <= workers <= MAX_WORKERS:
        raise SettingsError(f"WORKERS must be 'auto' or an integer 1-{MAX_WORKERS}, got {raw!r}")
    return workers


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    mode: str | None = None,
    version: str | None = None,
    chaos_token: str | None = None,
) -> Settings:
    """Explicit arguments win over the environment (``os.environ`` unless ``env`` is given).

    An unset ``MODE`` means ``stable``; any other value than ``stable``/``canary`` (an empty one
    included) is an error.
    """
    env = os.environ if env is None else env
    return Settings(
        mode=check_mode(mode if mode is not None else env.get("MODE", "stable")),
        version=version if version is not None else (env.get("APP_VERSION") or DEFAULT_VERSION),
        port=check_port(env.get("APP_PORT", str(DEFAULT_PORT))),
        chaos_token=chaos_token if chaos_token is not None else env.get("CHAOS_TOKEN", ""),
        workers=check_workers(env.get("WORKERS", "auto")),
    )


def usable_cpus(cgroup: str = "/sys/fs/cgroup") -> int:
    """The CPUs this process may use: its affinity, capped by a cgroup CPU quota (``cpus:`` in compose)."""
    count = len(os.sched_getaffinity(0))
    try:
        with open(f"{cgroup}/cpu.max") as limit:
            quota, period = limit.read().split()  # cgroup v2: "max 100000" or "150000 100000"
        if quota != "max":
            count = min(count, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return count
