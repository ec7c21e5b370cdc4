"""Host facts measured where the engine runs, not where the CLI runs.

With DOCKER_HOST pointing at another machine (ssh://, tcp://), psutil on the laptop would judge the laptop.
So a throwaway container on the engine's host reads them: the engine's data root bind-mounted read-only at
/data (statvfs of it: the disk that fills up), /proc/loadavg and /proc/meminfo (a container sees the host's:
neither is namespaced) and nproc. The same way for a local engine, a remote one and, as a service placed on
each node, every Swarm node.

The script needs only a POSIX shell with stat, grep and nproc: Debian's coreutils (the app image) or
busybox. Where no image is given, the probe runs in swiftdeploy/facts-probe: a 2 MB image imported on the
engine from the CLI machine's static busybox (Debian's busybox-static, which scripts/setup puts in
.tools/bin), so it fits on a host whose disk is nearly full: exactly the host the gate must refuse.
"""

import atexit
import hashlib
import io
import tarfile
import threading
import time
from concurrent.futures import Future
from functools import lru_cache
from pathlib import Path

from . import api as engine
from ..commands import last_line
from ..errors import SwiftDeployError
from .facts import FactsError
from .tools import busybox_binary

PROBE_REPOSITORY = "swiftdeploy/facts-probe"
PROBE_LABEL = "org.swiftdeploy.probe=true"
APPLETS = ("sh", "stat", "grep", "nproc")

# $1 is the path to measure: /data in the probe container.
SCRIPT = """set -e
echo "disk $(stat -f -c '%a %S %b' "$1")"
read one five fifteen rest </proc/loadavg
echo "load $one $five $fifteen"
grep -E '^(MemTotal|MemAvailable):' /proc/meminfo
echo "cpus $(nproc)"
"""


def parse(output: str, disk_path: str) -> dict:
    """The probe's lines as the infra input (docs/CONTRACTS.md); FactsError naming the line that is off."""
    fields: dict = {"disk_path": disk_path}
    try:
        for line in output.splitlines():
            word, _, rest = line.partition(" ")
            values = rest.split()
            if word == "disk":
                available, block_size, total = (int(v) for v in values)
                fields["disk_free_bytes"] = available * block_size  # what a non-root writer can still use
                fields["disk_total_bytes"] = total * block_size
            elif word == "load":
                fields["load_1m"], fields["load_5m"], fields["load_15m"] = (float(v) for v in values)
            elif word in ("MemTotal:", "MemAvailable:"):
                key = "memory_total_bytes" if word == "MemTotal:" else "memory_available_bytes"
                fields[key] = int(values[0]) * 1024  # /proc/meminfo counts kB
            elif word == "cpus":
                (fields["cpu_count"],) = (int(v) for v in values)
    except ValueError:
        raise FactsError(f"the facts probe printed a line it should not: {line[:120]!r}") from None
    missing = {"disk_free_bytes", "load_1m", "memory_total_bytes", "memory_available_bytes", "cpu_count"} - set(fields)
    if missing:
        raise FactsError(f"the facts probe did not report {', '.join(sorted(missing))} "
                         f"({last_line(output) or 'no output'})")
    return fields


@lru_cache(maxsize=1)
def _busybox() -> tuple[bytes, str]:
    path = Path(busybox_binary())
    try:
        data = path.read_bytes()
    except OSError as err:
        raise FactsError(f"cannot read busybox at {path} for the facts probe: {err.strerror} "
                         "(scripts/setup puts a static one in .tools/bin)") from None
    return data, hashlib.sha256(data).hexdigest()[:12]


def probe_image_tarball(busybox: bytes) -> bytes:
    """A root filesystem of one static busybox and the applets the script uses, as links to it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for directory in ("bin", "data", "proc", "tmp"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(busybox), 0o755
        tar.addfile(info, io.BytesIO(busybox))
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return buffer.getvalue()


def probe_image() -> str:
    """The probe image's reference on the engine, imported there first when missing."""
    busybox, digest = _busybox()
    reference = f"{PROBE_REPOSITORY}:{digest}"
    if not engine.image_present(reference):
        engine.import_image(probe_image_tarball(busybox), reference,
                            ["ENV PATH=/bin", f"LABEL {PROBE_LABEL}", 'CMD ["sh"]'])
    return reference


def engine_host_facts(data_path: str, image: str | None = None) -> dict:
    """The infra input, measured on the engine's host by a throwaway container."""
    try:
        engine.remove_stopped(PROBE_LABEL, older_than_seconds=60)  # left by a process killed mid-probe
        image = image or probe_image()
        status, output = engine.run_once(image, ["sh", "-c", SCRIPT, "probe", "/data"], {data_path: "/data"},
                                         user="65534:65534", network_mode="none", read_only=True,
                                         labels=dict([PROBE_LABEL.split("=")]))
    except FactsError:
        raise
    except SwiftDeployError as err:
        raise FactsError(f"cannot measure the engine's host: {str(err).splitlines()[0]}") from None
    if status != 0:
        raise FactsError(f"the facts probe failed on the engine's host (exit {status}): "
                         f"{last_line(output) or f'exit {status}'}")
    return parse(output, data_path)




# One measurement at a time, shared: a deploy starts one while OPA starts (measure_soon) and the gate takes
# it; `status` re-measures at most every MAX_AGE seconds instead of starting a container every frame.
MAX_AGE = 10.0
EXIT_WAIT = 15.0
_lock = threading.Lock()
_latest: tuple[float, Future] | None = None


def measure_soon(data_path) -> None:
    """Start measuring in the background unless a fresh or running measurement exists."""
    _measurement(data_path, MAX_AGE)


def current_facts(data_path, max_age: float = MAX_AGE) -> dict:
    """The engine host's facts, at most max_age seconds old (a running measurement is waited for)."""
    return _measurement(data_path, max_age).result()


def _measurement(data_path, max_age: float) -> Future:
    global _latest
    with _lock:
        if _latest is not None and time.monotonic() - _latest[0] <= max_age and not _failed(_latest[1]):
            return _latest[1]
        future: Future = Future()
        _latest = (time.monotonic(), future)

    def measure():
        try:
            future.set_result(engine_host_facts(data_path() if callable(data_path) else data_path))
        except BaseException as err:  # noqa: BLE001 - handed to whoever asks for the result
            future.set_exception(err)

    threading.Thread(target=measure, daemon=True).start()
    return future


@atexit.register
def _finish_measuring() -> None:
    """A command that ends while its background measurement runs (a deploy refused early) lets it finish,
    so the probe container is removed rather than left behind."""
    if _latest is not None:
        try:
            _latest[1].exception(timeout=EXIT_WAIT)
        except Exception:  # noqa: BLE001 - a timeout: the next probe removes what is left
            pass


def _failed(future: Future) -> bool:
    return future.done() and future.exception() is not None


def cluster_facts(image: str, disk_path: str, timeout: float = 90) -> dict:
    """{"nodes": {hostname: facts}}: the probe on every node Swarm would place a task on (swarm_probe.py).

    The data root is reached through an anonymous volume (it lives in the node's data root, whatever path
    that has there) rather than a bind mount of a path each node might keep elsewhere. `image` must be on
    every node: the app image is. The probe's service is removed whatever happens."""
    from .swarm_probe import run_global_probe

    nodes, outputs = run_global_probe(image, ["sh", "-c", SCRIPT, "probe", "/data"], timeout)
    facts = {}
    for node_id, hostname in nodes.items():
        if node_id not in outputs:
            raise FactsError(f"the facts probe did not report from node {hostname} within {timeout:.0f} s")
        status, output = outputs[node_id]
        if status != "complete":
            raise FactsError(f"the facts probe failed on node {hostname} ({status}): {last_line(output) or status}")
        facts[hostname] = parse(output, disk_path)
    return {"nodes": facts}
