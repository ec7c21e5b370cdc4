"""The public entry point: what nginx is serving, and how to switch it without dropping a request.

`nginx -t` and `nginx -s reload` both exit 0 when the new config cannot be applied (a port already
taken, say) and the old config keeps running, so a reload counts only once responses carry the new
config's generation (the X-Config-Generation header rendered into it).
"""

import time

import requests

from .errors import SwiftDeployError
from .runtime.compose import ComposeRuntime, last_line

CONFIG = "/etc/swiftdeploy/nginx.conf"


class ProxyError(SwiftDeployError):
    pass


def get(url: str, timeout: float = 5.0) -> requests.Response:
    """One request on a fresh connection (keep-alive would hide which config answers)."""
    try:
        return requests.get(url, headers={"Connection": "close"}, timeout=timeout)
    except requests.RequestException as err:
        raise ProxyError(f"no answer from {url}: {type(err).__name__}") from None


def served_generation(public_url: str) -> str | None:
    try:
        return get(f"{public_url}/healthz", timeout=2).headers.get("X-Config-Generation")
    except ProxyError:
        return None


def wait_for_generation(public_url: str, generation: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        if served_generation(public_url) == generation:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def check_config(runtime: ComposeRuntime) -> None:
    """`nginx -t` inside the running nginx, on the config as it is now on disk."""
    result = runtime.exec("nginx", ["nginx", "-t", "-q", "-c", CONFIG])
    if result.returncode != 0:
        raise ProxyError(f"nginx -t refused the new config: {last_line(result.stderr) or result.returncode}")


def reload(runtime: ComposeRuntime, public_url: str, generation: str, confirm_seconds: float = 2.0) -> None:
    """Validated graceful reload, confirmed by the generation responses carry."""
    check_config(runtime)
    result = runtime.exec("nginx", ["nginx", "-s", "reload", "-c", CONFIG])
    if result.returncode != 0:
        raise ProxyError(f"nginx -s reload failed: {last_line(result.stderr) or result.returncode}")
    if not wait_for_generation(public_url, generation, confirm_seconds):
        seen = served_generation(public_url) or "none"
        raise ProxyError(f"nginx still serves config generation {seen} {confirm_seconds:.0f} s after the reload "
                         f"(expected {generation}); it kept its previous config: see `docker logs` of nginx")
