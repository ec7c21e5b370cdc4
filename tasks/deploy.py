"""build, compose-up, deploy, teardown."""

import os
import time
from pathlib import Path

from .actions import hold_stack_lock, load_stack, operator_action, recorded

STARTED = time.monotonic()
DEFAULT_BASE_IMAGE = "python:3.12-slim"


def app_files() -> list[str]:
    return sorted(str(p) for p in Path("app").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc"))


def task_build():
    """Build the app image from app/ (skipped when no app file changed)."""
    return {
        "actions": [build_app],
        "file_dep": app_files(),
        "uptodate": [images_present],
        "task_dep": ["init"],
        "verbosity": 2,
    }


def task_compose_up():
    """Start the stack with docker compose and wait until every service is healthy."""
    return {"basename": "compose-up", "actions": [compose_up], "task_dep": ["init", "infra-gate", "build"],
            "uptodate": [False], "verbosity": 2}


def task_deploy():
    """Deploy: render, build, pass the infra gate, start the stack, wait healthy (60 s)."""
    return {"actions": [deploy], "task_dep": ["compose-up"], "uptodate": [False], "verbosity": 2}


def task_teardown():
    """Remove this stack's containers, networks and volumes (--clean: also generated/)."""
    return {
        "actions": [teardown],
        "params": [{"name": "clean", "long": "clean", "type": bool, "default": False,
                    "help": "also delete generated/"}],
        "task_dep": ["init"],
        "uptodate": [False],
        "verbosity": 2,
    }


def base_image() -> str:
    return os.environ.get("SWIFTDEPLOY_BASE_IMAGE", DEFAULT_BASE_IMAGE)


def image_tags(manifest) -> list[str]:
    return list(dict.fromkeys([manifest.services.image, manifest.services.canary.image]))


def images_present(task, values):
    """Up to date only if the images exist and were built from this base (checked when considered)."""
    from swiftdeploy import engine
    from swiftdeploy.errors import SwiftDeployError

    try:
        tags = image_tags(load_stack().manifest)
        present = all(engine.image_present(tag) for tag in tags)
    except SwiftDeployError:
        return False
    wanted = {"tags": tags, "base": base_image()}
    task.value_savers.append(lambda: {"built": wanted})
    return present and values.get("built") == wanted


@operator_action
def build_app():
    from swiftdeploy import engine

    tags = image_tags(load_stack().manifest)
    print(f"building {', '.join(tags)} from app/ on {base_image()} ...", flush=True)
    started = time.monotonic()
    engine.build_image(Path("app"), tags, base_image())
    size = engine.image_size(tags[0]) / 1e6
    print(f"built {tags[0]} in {time.monotonic() - started:.1f} s ({size:.0f} MB)")


@operator_action
def compose_up():
    from swiftdeploy.rollout import start_stack

    hold_stack_lock("deploy")
    stack = load_stack()
    print(f"starting {stack.manifest.project}: {', '.join(stack.service(t) for t in stack.tracks())}, nginx, opa",
          flush=True)
    recorded(stack, "deploy", _state(stack), lambda: start_stack(stack))


@operator_action
def deploy():
    from swiftdeploy.rollout import confirm_serving

    stack = load_stack()
    seen = recorded(stack, "deploy", _state(stack), lambda: confirm_serving(stack, stack.manifest))
    seconds = round(time.monotonic() - STARTED, 1)
    stack.history.append("deploy", outcome="ok", seconds=seconds, seen=seen, **_state(stack))
    print(f"deployed {stack.manifest.services.name} {stack.manifest.services.version} "
          f"({stack.manifest.services.mode} mode) at {stack.public_url} in {seconds} s")


@operator_action
def teardown(clean):
    from swiftdeploy.rollout import teardown as remove_stack

    hold_stack_lock("teardown")
    stack = load_stack()
    remove_stack(stack, clean)
    print(f"removed the {stack.manifest.project} stack's containers, networks and volumes"
          + (" and generated/" if clean else ""))


def _state(stack) -> dict:
    services = stack.manifest.services
    return {"mode": services.mode, "version": services.version,
            "canary_version": services.canary.version if services.mode == "canary" else None}
