"""The public entry point: what nginx is serving, how to switch it, and how to confirm a switch.

`nginx -t` and `nginx -s reload` both exit 0 when the new config cannot be applied (a port already
taken, say) and the old config keeps running, so a reload counts only once responses carry the new
config's generation (the X-Config-Generation header rendered into it). Right after a reload the old
workers may still accept a connection or two before they close their listening sockets, so "serving"
means a run of consecutive answers from the new generation, not the first one.

A request can pin its track (X-SwiftDeploy-Track), so a routing is confirmed track by track whatever
the weights: a canary at weight 1 is checked as surely as one at 100. nginx itself marks which track
answered (X-SwiftDeploy-Track, set by each track's own server in nginx.conf), so this holds for any app; the version
is checked where the app says it (the bundled app's JSON body).
"""

import time
from dataclasses import dataclass

import requests

from ..errors import SwiftDeployError

CONFIG = "/etc/swiftdeploy/nginx.conf"
PIN_HEADER = "X-SwiftDeploy-Track"
SETTLED = 10  # consecutive answers from one generation before it counts as the one served


class ProxyError(SwiftDeployError):
    pass


@dataclass(frozen=True)
class Answer:
    status: int
    generation: str | None
    track: str  # the track nginx marked the response with (X-SwiftDeploy-Track)
    version: str | None  # what the app says it runs (the bundled app's JSON body); None for other apps

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400


def get(url: str, timeout: float = 5.0, track: str | None = None) -> requests.Response:
    """One request on a fresh connection (keep-alive would hide which config answers). Over https to this
    host's own nginx the certificate is not verified: it names the public host, not 127.0.0.1, and which config
    answers is proven by the generation it carries, which names the certificate's copy."""
    headers = {"Connection": "close", **({PIN_HEADER: track} if track else {})}
    try:
        return requests.get(url, headers=headers, timeout=timeout, allow_redirects=False, verify=not own_https(url))
    except requests.RequestException as err:
        raise ProxyError(f"no answer from {url}: {type(err).__name__}") from None


def own_https(url: str) -> bool:
    if not url.startswith("https://127.0.0.1:"):
        return False
    import urllib3

    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return True


def ask(public_url: str, track: str | None = None, path: str = "/") -> Answer:
    response = get(f"{public_url}{path}", track=track)
    version = None
    if response.headers.get("Content-Type", "").startswith("application/json"):
        try:
            version = response.json().get("version")
        except (ValueError, AttributeError):
            pass
    return Answer(status=response.status_code, generation=response.headers.get("X-Config-Generation"),
                  track=response.headers.get(PIN_HEADER, "stable"), version=version)


def served_generation(public_url: str) -> str | None:
    """The config generation nginx serves (None: no answer), from a location nginx answers itself."""
    try:
        return get(f"{public_url}/_swiftdeploy/config", timeout=2).headers.get("X-Config-Generation")
    except ProxyError:
        return None


def wait_for_generation(public_url: str, generation: str, seconds: float, settled: int = SETTLED) -> bool:
    """True once `settled` answers in a row carry generation; False if that has not happened in time."""
    deadline = time.monotonic() + seconds
    streak = 0
    while streak < settled:
        streak = streak + 1 if served_generation(public_url) == generation else 0
        if streak < settled and time.monotonic() >= deadline:
            return False
        if streak == 0:
            time.sleep(0.05)
    return True


# `nginx -t` on the config as it is now on disk, then the graceful reload only if it passed: one exec, not two.
# Exit 3 (nginx itself exits 0 or 1) says the test refused it.
CHECK_AND_RELOAD = ["sh", "-c", f"nginx -t -q -c {CONFIG} || exit 3; exec nginx -s reload -c {CONFIG}"]
REFUSED = 3


def reload(runtime, public_url: str, generation: str, confirm_seconds: float = 3.0) -> None:
    """Validated graceful reload, confirmed by the generation responses carry."""
    result = runtime.exec("nginx", CHECK_AND_RELOAD)
    if result.returncode == REFUSED:
        raise ProxyError(f"nginx -t refused the new config: {_nginx_reason(result.stderr) or result.returncode}")
    if result.returncode != 0:
        raise ProxyError(f"nginx -s reload failed: {_nginx_reason(result.stderr) or result.returncode}")
    if not wait_for_generation(public_url, generation, confirm_seconds):
        seen = served_generation(public_url) or "none"
        raise ProxyError(f"nginx still serves config generation {seen} {confirm_seconds:.0f} s after the reload "
                         f"(expected {generation}); it kept its previous config: see `docker logs` of nginx")


# Counts nginx's old workers. "dow[n]" keeps the shell's and grep's own command lines out of the count.
OLD_WORKERS = ["sh", "-c", "grep -ls 'worker process is shutting dow[n]' /proc/[0-9]*/cmdline | wc -l"]


def old_workers(runtime) -> int | None:
    """How many of nginx's workers are finishing the requests they took under an earlier config (None: nginx
    cannot be asked)."""
    result = runtime.exec("nginx", OLD_WORKERS)
    count = result.stdout.strip()
    return int(count) if result.returncode == 0 and count.isdigit() else None


def drain(runtime, seconds: float, grace: float = 1.0) -> int:
    """Wait until no old worker is left: until then a request an old worker took may still reach a container
    that the current config no longer routes to. What it returns: the old workers still at it after `seconds`
    (a slow download or a WebSocket); when nginx cannot be asked, it waits `grace` seconds and returns 0."""
    deadline = time.monotonic() + seconds
    while True:
        left = old_workers(runtime)
        if left is None:
            time.sleep(grace)
            return 0
        if left == 0 or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


class NginxProxy:
    """The stack's nginx: reached on its public port, reloaded with commands run in its container."""

    def __init__(self, runtime, public_url: str, confirm_path: str = "/", health_path: str = "/healthz"):
        self.runtime, self.public_url = runtime, public_url
        # what a confirmation asks through nginx: the bundled app's / (it names its version) and /healthz,
        # else the app's own health path for both
        self.confirm_path, self.health_path = confirm_path, health_path

    def served_generation(self) -> str | None:
        return served_generation(self.public_url)

    def answer(self, track: str | None = None, path: str = "/") -> Answer:
        return ask(self.public_url, track, path)

    def reload(self, generation: str) -> None:
        reload(self.runtime, self.public_url, generation)

    def unreachable(self, tracks) -> tuple[str, ...]:
        return unreachable(self, tracks)

    def drain(self, seconds: float) -> int:
        return drain(self.runtime, seconds)


def unreachable(proxy, tracks) -> tuple[str, ...]:
    """Tracks nginx fails to reach (a 502/503/504 to a request pinned to them). nginx resolves upstream names
    when it loads its config; a container started since then may have another address (it does on Podman)."""
    failed = []
    for track in tracks:
        try:
            status = proxy.answer(track, getattr(proxy, "health_path", "/healthz")).status
        except ProxyError:
            return ()  # nginx itself does not answer: nothing to say about its tracks
        if status in (502, 503, 504):
            failed.append(track)
    return tuple(failed)


def confirm(proxy, generation: str, expect: dict[str, str | None], rounds: int = 5,
            seconds: float = 15) -> dict[str, list[str]]:
    """Check through the public port that nginx serves `generation` and routes as expected.

    expect maps each routed track to the version it must answer with. Requests pinned to a routed track
    must be answered by it; pinned to any other track they must not be; unpinned ones by a routed track.
    It takes a run of such answers: right after a reload an old worker may still take a connection, and
    when the config did not change (a reload to resolve a new address) its answers carry the same
    generation. Returns the versions seen per track.
    """
    seen: dict[str, set] = {}
    streak, asked, problem = 0, 0, None
    pins = [None, "stable", "canary"]
    needed = rounds * len(pins)
    deadline = time.monotonic() + seconds
    while streak < needed:
        asked += 1
        if asked > needed * 10 or time.monotonic() > deadline:
            raise ProxyError(problem or f"nginx did not settle on config generation {generation} "
                                        f"within {asked - 1} requests")
        track = pins[streak % len(pins)]
        answer = proxy.answer(track, getattr(proxy, "confirm_path", "/"))
        problem = _mismatch(answer, track, expect) if answer.generation == generation else problem
        if answer.generation != generation or problem:
            streak, seen = 0, {}
            continue
        seen.setdefault(answer.track, set()).add(answer.version)
        streak += 1
    health_path = getattr(proxy, "health_path", "/healthz")
    health = proxy.answer(None, health_path)
    if not health.ok:
        raise ProxyError(f"{health_path} through nginx answered {health.status}")
    return {track: sorted(versions) for track, versions in seen.items()}


def _mismatch(answer: Answer, track: str | None, expect: dict[str, str | None]) -> str | None:
    """Why one answer does not show the expected routing, or None."""
    if not answer.ok:
        where = f"pinned to {track}" if track else "unpinned"
        return f"a GET through nginx ({where}) answered {answer.status} while confirming the routing"
    if track in expect and answer.track != track:
        return f"a request pinned to the {track} track was answered by the {answer.track} track"
    if track is not None and track not in expect and answer.track == track:
        return f"the {track} track still answers traffic after it should have left"
    if answer.track not in expect:
        return f"the {answer.track} track answered, but nginx should route only to {' and '.join(expect)}"
    if expect[answer.track] is not None and answer.version is not None and answer.version != expect[answer.track]:
        return f"the {answer.track} track serves version {answer.version}, expected {expect[answer.track]}"
    return None


def _nginx_reason(text: str) -> str:
    """nginx's reason: its last [emerg] line (what and where), else its last line."""
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    reasons = [line for line in lines if "[emerg]" in line] or lines
    return reasons[-1] if reasons else ""
