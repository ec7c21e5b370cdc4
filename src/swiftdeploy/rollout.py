"""Changing what serves: deploy, promote, rollback, teardown, each confirmed through the public port.

Order matters on every change, because nginx resolves upstream names only when it loads a config and a
recreated container gets a new address: a new track is started and healthy before nginx is pointed at
it (validated reload, confirmed by the config generation), and a track leaves only after nginx stopped
sending to it. On failure the previous generated files and routing are put back; manifest.yaml is
written last, so it never claims a state that did not happen.
"""

import dataclasses
import shutil
import time

from . import proxy
from .errors import SwiftDeployError
from .files import write_atomic
from .manifest import Manifest
from .manifest_edit import edit
from .render import OUTPUTS, generation_of, render
from .stack import Stack


class RolloutError(SwiftDeployError):
    pass


def rendered(stack: Stack, manifest: Manifest) -> dict[str, str]:
    return {name: render(name, manifest, stack.root / "templates") for name in OUTPUTS}


def write_outputs(stack: Stack, outputs: dict[str, str], names=tuple(OUTPUTS)) -> None:
    for name in names:
        write_atomic(stack.generated / name, outputs[name])


def current_outputs(stack: Stack) -> dict[str, str]:
    return {name: (stack.generated / name).read_text() for name in OUTPUTS}


def point_proxy(stack: Stack, outputs: dict[str, str]) -> None:
    """Make nginx serve outputs' nginx.conf (validated reload, confirmed by generation)."""
    write_outputs(stack, outputs, ["nginx.conf"])
    generation = generation_of(outputs["nginx.conf"])
    if proxy.served_generation(stack.public_url) != generation:
        proxy.reload(stack.runtime, stack.public_url, generation)


def app_container_ids(stack: Stack) -> dict[str, str]:
    """Running app track service -> container id."""
    running = stack.runtime.running()
    return {svc: entry.get("ID", "") for svc, entry in running.items()
            if svc.startswith(stack.service("")) and entry.get("State") == "running"}


def start_stack(stack: Stack) -> None:
    """compose-up: app tracks first (healthy), then everything else; nginx re-pointed if anything moved."""
    before = app_container_ids(stack)
    # nginx waits for a healthy stable track (depends_on); a canary it must resolve is started first
    canary = stack.service("canary")
    if "canary" in stack.tracks() and canary not in before:
        stack.runtime.up([canary], no_deps=True)
    stack.runtime.up()
    after = app_container_ids(stack)
    wait_for_proxy(stack)
    moved = any(before.get(svc) not in (None, after.get(svc)) for svc in before)
    generation = generation_of((stack.generated / "nginx.conf").read_text())
    if moved or proxy.served_generation(stack.public_url) != generation:
        proxy.reload(stack.runtime, stack.public_url, generation)


def wait_for_proxy(stack: Stack, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while proxy.served_generation(stack.public_url) is None:
        if time.monotonic() > deadline:
            raise RolloutError(f"nginx does not answer on {stack.public_url} {seconds:.0f} s after start "
                               "(see `docker compose logs nginx`)")
        time.sleep(0.1)


def confirm_serving(stack: Stack, manifest: Manifest, samples: int = 20) -> dict:
    """Check /healthz and real traffic show the manifest's state; return what was seen.

    Right after a reload the old nginx workers may still accept a connection or two before they close
    their listening sockets, so this waits for `samples` consecutive answers from the new config
    generation, and judges only those.
    """
    services = manifest.services
    generation = generation_of((stack.generated / "nginx.conf").read_text())
    want = {"stable": services.version}
    if services.mode == "canary":
        want["canary"] = services.canary.version
    seen: dict[str, set] = {"stable": set(), "canary": set()}
    streak = 0
    for _ in range(samples * 10):
        answer = proxy.get(f"{stack.public_url}/")
        if answer.status_code != 200:
            raise RolloutError(f"GET / through nginx answered {answer.status_code} while confirming the rollout")
        if answer.headers.get("X-Config-Generation") != generation:
            streak, seen = 0, {"stable": set(), "canary": set()}
            continue
        seen["canary" if answer.headers.get("X-Mode") == "canary" else "stable"].add(answer.json().get("version"))
        streak += 1
        if streak == samples:
            break
    else:
        raise RolloutError(f"nginx did not settle on config generation {generation} within {samples * 10} requests")
    health = proxy.get(f"{stack.public_url}/healthz")
    if health.status_code != 200 or health.json().get("status") != "ok":
        raise RolloutError(f"/healthz through nginx answered {health.status_code}")
    routed_to_canary = services.mode == "canary"
    if routed_to_canary and not seen["canary"]:
        raise RolloutError(f"no canary response in {samples} requests through nginx")
    if not routed_to_canary and seen["canary"]:
        raise RolloutError("the canary still answers traffic after it should have left")
    for track, versions in seen.items():
        if versions and versions != {want.get(track)}:
            raise RolloutError(f"the {track} track serves version {sorted(versions)}, expected {want.get(track)}")
    return {track: sorted(v) for track, v in seen.items() if v}


def with_restore(stack: Stack, change, undo=None):
    """Run change(); on failure put the generated files and routing back, then re-raise."""
    saved = current_outputs(stack)
    try:
        return change()
    except BaseException as err:
        problems = []
        try:  # routing first, so nothing is sent to a track that is about to go
            write_outputs(stack, saved)
            point_proxy(stack, saved)
            if undo:
                undo(saved)
        except Exception as restore_err:  # report both: the operator must know routing may be off
            problems.append(f"restoring the previous state also failed: {restore_err}")
        if problems and isinstance(err, SwiftDeployError):
            raise RolloutError(f"{err}; {'; '.join(problems)}") from None
        raise


def promote_canary(stack: Stack) -> Manifest:
    current = stack.manifest
    if current.services.mode == "canary":
        raise RolloutError(f"already in canary mode (canary {current.services.canary.version} at "
                           f"{current.services.canary.weight}%); run promote:stable or rollback")
    text, new = edit(stack.manifest_path.read_text(), {"services.mode": "canary"})
    outputs = rendered(stack, new)
    canary = stack.service("canary")

    def change():
        write_outputs(stack, outputs, ["docker-compose.yml"])
        stack.runtime.up([canary], no_deps=True, recreate="force")
        point_proxy(stack, outputs)
        return confirm_serving(stack, new)

    seen = with_restore(stack, change, undo=lambda _saved: stack.runtime.remove([canary]))
    _commit(stack, text, new, outputs)
    stack.history.append("promote", to="canary", outcome="ok", from_mode="stable", version=new.services.version,
                         canary_version=new.services.canary.version, weight=new.services.canary.weight, seen=seen)
    return new


def promote_stable(stack: Stack) -> Manifest:
    current = stack.manifest
    require_canary(current, "promote:stable")
    canary = current.services.canary
    changes = {"services.mode": "stable"}
    if canary.version != current.services.version:
        changes["services.version"] = canary.version
    if canary.image != current.services.image:
        changes["services.image"] = canary.image
    text, new = edit(stack.manifest_path.read_text(), changes)
    outputs = rendered(stack, new)
    stable = stack.service("stable")
    stable_changes = len(changes) > 1

    def change():
        if stable_changes:
            if canary.weight < 100:  # the canary carries everything while stable is replaced
                everything_to_canary = _with_weight(current, 100)
                point_proxy(stack, rendered(stack, everything_to_canary))
            write_outputs(stack, outputs, ["docker-compose.yml"])
            stack.runtime.up([stable], no_deps=True)
        point_proxy(stack, outputs)
        return confirm_serving(stack, new)

    def undo(_saved):
        if stable_changes:
            stack.runtime.up([stable], no_deps=True)

    seen = with_restore(stack, change, undo)
    write_outputs(stack, outputs, ["docker-compose.yml"])
    stack.runtime.up(recreate="never", remove_orphans=True)  # the canary leaves once nothing routes to it
    _commit(stack, text, new, outputs)
    stack.history.append("promote", to="stable", outcome="ok", from_mode="canary", version=new.services.version,
                         canary_version=canary.version, weight=canary.weight, seen=seen)
    return new


def rollback(stack: Stack) -> Manifest:
    current = stack.manifest
    canary_running = stack.service("canary") in stack.runtime.running()
    if current.services.mode == "stable" and not canary_running:
        raise RolloutError("nothing to roll back: no canary is running and the manifest is in stable mode")
    text, new = edit(stack.manifest_path.read_text(), {"services.mode": "stable"})
    outputs = rendered(stack, new)

    def change():
        point_proxy(stack, outputs)
        return confirm_serving(stack, new)

    seen = with_restore(stack, change)
    write_outputs(stack, outputs, ["docker-compose.yml"])
    stack.runtime.up(recreate="never", remove_orphans=True)
    _commit(stack, text, new, outputs)
    stack.history.append("rollback", outcome="ok", from_mode=current.services.mode, version=new.services.version,
                         seen=seen)
    return new


def teardown(stack: Stack, clean: bool) -> None:
    stack.runtime.down(volumes=True)
    if clean:
        shutil.rmtree(stack.generated, ignore_errors=True)
    stack.history.append("teardown", outcome="ok", clean=clean)


def _commit(stack: Stack, manifest_text: str, manifest: Manifest, outputs: dict[str, str]) -> None:
    write_outputs(stack, outputs)
    write_atomic(stack.manifest_path, manifest_text)
    stack.manifest = manifest


def require_canary(manifest: Manifest, operation: str) -> None:
    if manifest.services.mode != "canary":
        raise RolloutError(f"{operation} needs a canary: the manifest is in stable mode (run promote:canary first)")


def _with_weight(manifest: Manifest, weight: int) -> Manifest:
    canary = dataclasses.replace(manifest.services.canary, weight=weight)
    return dataclasses.replace(manifest, services=dataclasses.replace(manifest.services, canary=canary))
