"""Chaos state shared by the app's workers, and validation of POST /chaos bodies."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import mmap
import os
import struct
import threading
from dataclasses import asdict, dataclass

MAX_SLOW_SECONDS = 60  # must stay below gunicorn's timeout (gunicorn.conf.py)
ACTIVE_VALUE = {"none": 0, "slow": 1, "error": 2}  # the chaos_active gauge
FIELDS = {"slow": ("duration",), "error": ("rate",), "recover": ()}
EXEMPT_ROUTES = frozenset({"/healthz", "/metrics", "/chaos"})  # paths chaos never applies to (any method)


class ChaosInputError(ValueError):
    """A POST /chaos body is invalid; ``field`` names the offending field ("body" for the whole)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ChaosSetting:
    mode: str = "none"  # none | slow | error
    duration: float | None = None  # seconds, mode slow
    rate: float | None = None  # 0..1, mode error

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


MODE_CODES = ("none", "slow", "error")
_RECORD = struct.Struct("<Bd")  # mode code, duration or rate


class ChaosState:
    """The current chaos setting, shared by every thread of the process and, when ``path`` names a file,
    by every process that maps it (gunicorn's workers: a setting POSTed to one applies to all).

    Reads and writes hold the thread lock and, across processes, flock on the file: a lock-free read is
    not safe here (struct.pack_into zeroes the record before writing it). It costs microseconds a request.
    """

    def __init__(self, path: str | None = None) -> None:
        self._lock = threading.Lock()
        self._fd: int | None = None
        if path is None:
            self._map = mmap.mmap(-1, _RECORD.size)
        else:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            if os.fstat(self._fd).st_size < _RECORD.size:  # a new file: zeros are mode none
                os.ftruncate(self._fd, _RECORD.size)
            self._map = mmap.mmap(self._fd, _RECORD.size)

    @contextlib.contextmanager
    def _locked(self, kind: int):
        # the thread lock first: flock belongs to the open file, so two threads of one process would share it
        with self._lock:
            if self._fd is not None:
                fcntl.flock(self._fd, kind)
            try:
                yield
            finally:
                if self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def get(self) -> ChaosSetting:
        with self._locked(fcntl.LOCK_SH):
            return _setting(*_RECORD.unpack_from(self._map))

    def set(self, setting: ChaosSetting) -> ChaosSetting:
        """Install ``setting``; return the previous one."""
        number = setting.duration if setting.mode == "slow" else setting.rate
        with self._locked(fcntl.LOCK_EX):
            previous = _setting(*_RECORD.unpack_from(self._map))
            _RECORD.pack_into(self._map, 0, MODE_CODES.index(setting.mode), number or 0.0)
        return previous

    def active_value(self) -> int:
        return ACTIVE_VALUE[self.get().mode]


def _setting(code: int, value: float) -> ChaosSetting:
    mode = MODE_CODES[code]
    if mode == "slow":
        return ChaosSetting("slow", duration=value)
    if mode == "error":
        return ChaosSetting("error", rate=value)
    return ChaosSetting()


def _short(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _pairs(pairs: list) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _number(data: dict, field: str) -> float:
    if field not in data:
        raise ChaosInputError(field, f"{field} is required for mode {data['mode']!r}")
    value = data[field]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ChaosInputError(field, f"{field} must be a number, got {_short(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer too large for a float
        number = math.inf
    if not math.isfinite(number):
        raise ChaosInputError(field, f"{field} must be a finite number, got {_short(value)}")
    return number


def parse_chaos(body: bytes) -> ChaosSetting:
    """Validate a POST /chaos body; raise ChaosInputError naming the field on any problem."""
    if not body.strip():
        raise ChaosInputError("body", 'request body is empty; expected a JSON object such as {"mode": "recover"}')
    try:
        data = json.loads(body, object_pairs_hook=_pairs, parse_constant=_reject_constant)
    except _DuplicateKey as err:
        raise ChaosInputError(err.key, f"duplicate key {err.key!r} in the JSON object") from None
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError included
        raise ChaosInputError("body", f"request body is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ChaosInputError("body", f"request body must be a JSON object, got {type(data).__name__}")
    modes = ", ".join(repr(m) for m in FIELDS)
    if "mode" not in data:
        raise ChaosInputError("mode", f"mode is required; one of {modes}")
    mode = data["mode"]
    if not isinstance(mode, str) or mode not in FIELDS:
        raise ChaosInputError("mode", f"mode must be one of {modes}, got {_short(mode)}")
    allowed = ("mode",) + FIELDS[mode]
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ChaosInputError(
            unknown[0], f"unknown field {unknown[0]!r} for mode {mode!r}; allowed fields: {', '.join(allowed)}"
        )
    if mode == "slow":
        duration = _number(data, "duration")
        if not 0 < duration <= MAX_SLOW_SECONDS:
            raise ChaosInputError(
                "duration", f"duration must be > 0 and <= {MAX_SLOW_SECONDS} seconds, got {_short(data['duration'])}"
            )
        return ChaosSetting("slow", duration=duration)
    if mode == "error":
        rate = _number(data, "rate")
        if not 0 <= rate <= 1:
            raise ChaosInputError("rate", f"rate must be between 0 and 1, got {_short(data['rate'])}")
        return ChaosSetting("error", rate=rate)
    return ChaosSetting()
