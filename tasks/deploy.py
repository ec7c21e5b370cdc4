"""build, compose-up, deploy, teardown."""

from .actions import not_implemented


def task_build():
    """Build the app image from app/ (skipped when no app file changed)."""
    return {"actions": [not_implemented], "verbosity": 2}


def task_compose_up():
    """Start the stack with docker compose and wait until every service is healthy."""
    return {"basename": "compose-up", "actions": [not_implemented], "task_dep": ["infra-gate", "build"],
            "uptodate": [False], "verbosity": 2}


def task_deploy():
    """Deploy: render, build, pass the infra gate, start the stack, wait healthy (60 s)."""
    return {"actions": [not_implemented], "task_dep": ["compose-up"], "uptodate": [False], "verbosity": 2}


def task_teardown():
    """Remove this stack's containers, networks and volumes (--clean: also generated/)."""
    return {
        "actions": [not_implemented],
        "params": [{"name": "clean", "long": "clean", "type": bool, "default": False,
                    "help": "also delete generated/"}],
        "uptodate": [False],
        "verbosity": 2,
    }
