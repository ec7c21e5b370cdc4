"""validate: pre-flight checks, one pass/fail line each."""

from .actions import not_implemented


def task_validate():
    """Run the pre-flight checks (manifest, images, port, nginx -t, compose config, policies)."""
    return {"actions": [not_implemented], "task_dep": ["init"], "uptodate": [False], "verbosity": 2}
