"""build, compose-up, deploy, teardown."""

import time

from .actions import hold_stack_lock, load_stack, operator_action, recorded

STARTED = time.monotonic()
_deployed: dict = {}  # the outcome of compose-up, which deploy reports


def task_build():
    """Build the app images (app/, or services.build) unless built from the same inputs already."""
    return {"actions": [build_app], "uptodate": [image_current], "verbosity": 2}


def task_compose_up():
    """Converge the stack to the manifest: plan, ask the infra gate before anything starts, run each step."""
    return {"basename": "compose-up", "actions": [compose_up], "task_dep": ["init"], "uptodate": [False],
            "verbosity": 2}


def task_deploy():
    """Deploy: render, build, pass the infra gate, start what differs, confirm through nginx."""
    return {"actions": [deploy], "task_dep": ["compose-up"], "uptodate": [False], "verbosity": 2}


def task_teardown():
    """Remove this stack's containers, networks and volumes (--clean: also generated/)."""
    return {
        "actions": [teardown],
        "params": [{"name": "clean", "long": "clean", "type": bool, "default": False,
                    "help": "also delete generated/"}],
        "uptodate": [False],
        "verbosity": 2,
    }


def _builds(stack) -> list[tuple]:
    """(references, source, hash) of every image the manifest builds (an image used as it is has none)."""
    from swiftdeploy.engine.build import buildable, source_hashes

    services = stack.manifest.services
    hashes = source_hashes(stack.manifest, stack.root)
    by_source: dict = {}
    for reference, source in ((services.image, services.build), (services.canary.image, services.canary.build)):
        if source in hashes:
            by_source.setdefault(source, []).append(reference)
    return [(buildable(refs), source, hashes[source]) for source, refs in by_source.items() if buildable(refs)]


def image_current(task, values):
    """Up to date when every built image carries the hash of the inputs it would be built from now."""
    from swiftdeploy.engine.build import outdated
    from swiftdeploy.errors import SwiftDeployError

    try:
        stack = load_stack()
        return not any(outdated(refs, stack.runtime.images(refs), digest) for refs, _, digest in _builds(stack))
    except SwiftDeployError:
        return False


@operator_action
def build_app():
    from swiftdeploy.engine import api as engine
    from swiftdeploy.engine.build import base_image, build, describe_source
    from swiftdeploy.model.manifest import BUNDLED

    stack = load_stack()
    builds = _builds(stack)
    if not builds:
        print("nothing to build: the manifest uses its images as they are (build: false)")
    for tags, source, digest in builds:
        on = f" on {base_image()}" if source == BUNDLED else ""
        print(f"building {', '.join(tags)} from {describe_source(source)}{on} ...", flush=True)
        started = time.monotonic()
        build(stack.root, tags, digest, source)
        size = engine.image_size(tags[0]) / 1e6
        print(f"built {tags[0]} in {time.monotonic() - started:.1f} s ({size:.0f} MB)")


@operator_action
def compose_up():
    hold_stack_lock("deploy")
    stack = load_stack()
    import dataclasses

    from swiftdeploy.converge import certs, operations

    operations.check_inputs(stack)  # before OPA starts early: bad input changes nothing
    stack.runtime.start_early("opa")  # the gatekeeper starts while the deploy plans (a cold deploy needs it)
    outcome = recorded(stack, "deploy", _state(stack), lambda: operations.deploy(stack))
    if certs.renew_due(stack):  # nginx.tls.acme: the stack answers HTTP-01 now, so the CA can check it
        renewed = recorded(stack, "deploy", _state(stack), lambda: operations.deploy(stack))
        outcome = dataclasses.replace(renewed, steps=outcome.steps + renewed.steps)
    _deployed["outcome"], _deployed["stack"] = outcome, stack


@operator_action
def deploy():
    if "outcome" not in _deployed:  # `doit -s deploy` skips task_dep
        failed = compose_up()
        if failed is not None:
            return failed
    stack, outcome = _deployed["stack"], _deployed["outcome"]
    seconds = round(time.monotonic() - STARTED, 1)
    stack.history.append("deploy", outcome="ok", seconds=seconds, seen=outcome.seen, steps=outcome.steps,
                         **_state(stack))
    if outcome.steps:
        services = stack.manifest.services
        print(f"deployed {services.name} {services.version} ({services.mode} mode) at {stack.public_url} "
              f"in {seconds} s")
    return None


@operator_action
def teardown(clean):
    from swiftdeploy.converge import operations

    hold_stack_lock("teardown")
    stack = load_stack()
    operations.teardown(stack, clean)
    print(f"removed the {stack.manifest.project} stack's containers, networks and volumes"
          + (" and generated/" if clean else ""))


def _state(stack) -> dict:
    services = stack.manifest.services
    return {"mode": services.mode, "version": services.version,
            "canary_version": services.canary.version if services.mode == "canary" else None}
