"""Glue between doit and the engine library: expected errors become one-line task failures."""

import functools
from functools import lru_cache
from pathlib import Path

from doit.exceptions import TaskFailed

from swiftdeploy.errors import SwiftDeployError

MANIFEST = "manifest.yaml"
_held_lock = None


def operator_action(func):
    """Run func; a SwiftDeployError becomes TaskFailed(its message). Bugs keep their traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except SwiftDeployError as err:
            return TaskFailed(str(err))

    return wrapper


def hold_stack_lock(operation: str) -> None:
    """Take the stack lock for the rest of this doit run (the kernel drops it when the process ends).

    One lock per run, not per task: a deploy is several tasks, and another run must not slip between them.
    """
    global _held_lock
    if _held_lock is None:
        import atexit

        from swiftdeploy.converge.lock import StackLock

        lock = StackLock(".swiftdeploy/lock", operation)
        lock.__enter__()
        atexit.register(lock.__exit__, None, None, None)
        _held_lock = lock


def load_stack():
    """The stack in the current directory, with the manifest parsed once per run (per content)."""
    from swiftdeploy.converge.stack import Stack

    return Stack(Path("."), current_manifest())


@lru_cache(maxsize=4)
def _manifest_for(content: bytes):
    from swiftdeploy.model import schema_pass
    from swiftdeploy.model.manifest import parse_manifest

    key = schema_pass.digest(content)
    passed = schema_pass.passed_before(key)
    manifest = parse_manifest(content, MANIFEST, schema_passed=passed)
    if not passed:
        schema_pass.remember(key)
    return manifest


def current_manifest():
    """The validated manifest (parsed once per process per content)."""
    from swiftdeploy.model.manifest import load_manifest

    try:
        content = Path(MANIFEST).read_bytes()
    except OSError:
        return load_manifest(MANIFEST)  # raises the proper one-line error
    return _manifest_for(content)


def recorded(stack, event: str, fields: dict, operation):
    """Run operation(); if it fails, append `event` with outcome failed and the error's first line."""
    try:
        return operation()
    except Exception as err:
        stack.history.append(event, outcome="failed", error=str(err).splitlines()[0], **fields)
        raise
