"""`logs`: what the stack's containers print, each line behind its track or role, as `docker compose logs`
shows it. Without --follow the lines of every container chosen are merged in time order; with it each
container's new lines are printed as they come, until Ctrl-C."""

import queue
import re
import signal
import threading
import time
from collections.abc import Callable, Iterable

from ..errors import SwiftDeployError

ROLES = ("stable", "canary", "nginx", "opa", "prometheus")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
STAMPED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?) ?(.*)$")


class LogsError(SwiftDeployError):
    pass


def since_seconds(word: str | None) -> float | None:
    """--since 10m / 90s / 2h / 1d / 30 (seconds): how far back, in seconds."""
    if word in (None, ""):
        return None
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd]?)", word.strip())
    if not found or float(found[1]) <= 0:
        raise LogsError(f"logs: --since needs a duration such as 90s, 10m, 2h or 1d (got {word!r})")
    return float(found[1]) * UNITS[found[2] or "s"]


def tail_count(value) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except ValueError:
        number = -1
    if not 0 <= number < float("inf") or number != int(number):
        raise LogsError(f"logs: --tail needs a whole number of lines, 0 or more (got {value!r})")
    return int(number)


def chosen(runtime, role: str | None) -> list:
    """The stack's containers of the role (all roles when None), in ROLES order."""
    if role and role not in ROLES:
        raise LogsError(f"logs: no role {role!r}; the roles are {', '.join(ROLES)}")
    found = [c for c in runtime.containers() if c.role in ROLES and (role is None or c.role == role)]
    if not found:
        what = f"no {role} container" if role else "no container"
        raise LogsError(f"logs: this stack has {what} (see ./swiftdeploy status)")
    return sorted(found, key=lambda c: (ROLES.index(c.role), c.created))


def prefix(role: str, width: int) -> str:
    return f"{role:<{width}} | "


def split_stamp(line: str) -> tuple[str, str]:
    """(timestamp, text) of a line the engine stamped; lines without a stamp sort first."""
    found = STAMPED.match(line)
    return (found[1], found[2]) if found else ("", line)


def merged(lines_by_role: Iterable[tuple[str, list[str]]]) -> list[str]:
    """Every container's stamped lines in time order, the stamp replaced by the role."""
    lines_by_role = list(lines_by_role)
    width = max((len(role) for role, _ in lines_by_role), default=0)
    stamped = [(*split_stamp(line), n, role) for role, lines in lines_by_role for n, line in enumerate(lines)]
    stamped.sort(key=lambda item: (item[0], item[2]))
    return [prefix(role, width) + text for _, text, _, role in stamped]


def show(runtime, role: str | None, since: str | None, tail, say: Callable[[str], None] = print) -> None:
    containers = chosen(runtime, role)
    seconds, lines = since_seconds(since), tail_count(tail)
    after = time.time() - seconds if seconds else None
    for line in merged((c.role, runtime.log_lines(c, since=after, tail=lines)) for c in containers):
        say(line)


def follow(runtime, role: str | None, since: str | None, tail, say: Callable[[str], None] = print,
           stop: threading.Event | None = None) -> None:
    """Print each chosen container's lines as they come, until Ctrl-C (or `stop`)."""
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C ends it even when started with SIGINT ignored (a `&` job of a script inherits that)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    containers = chosen(runtime, role)
    seconds, lines = since_seconds(since), tail_count(tail)
    after = time.time() - seconds if seconds else None
    width = max(len(c.role) for c in containers)
    arrived: queue.Queue = queue.Queue()
    stop = stop or threading.Event()

    def pump(container) -> None:
        try:
            for line in runtime.follow_lines(container, since=after, tail=lines, stop=stop):
                arrived.put(prefix(container.role, width) + split_stamp(line)[1])
        except SwiftDeployError as err:
            arrived.put(f"{prefix(container.role, width)}(logs ended: {str(err).splitlines()[0]})")

    for container in containers:
        threading.Thread(target=pump, args=(container,), daemon=True).start()
    try:
        while not stop.is_set():
            try:
                say(arrived.get(timeout=0.2))
            except queue.Empty:
                continue
    except KeyboardInterrupt:
        stop.set()

