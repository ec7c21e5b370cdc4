"""validate: pre-flight checks, one pass/fail line each."""

from pathlib import Path

from doit.exceptions import TaskFailed


def task_validate():
    """Run the pre-flight checks (manifest, images, port, nginx -t, compose config, policies)."""
    return {"actions": [validate], "task_dep": ["init"], "uptodate": [False], "verbosity": 2}


def validate():
    from swiftdeploy.present.preflight import run_checks

    results = run_checks(Path("."))
    for name, passed, detail in results:
        print(f"{'PASS' if passed else 'FAIL'}  {name}: {detail}")
    failed = [name for name, passed, _ in results if not passed]
    if failed:
        return TaskFailed(f"{len(failed)} of {len(results)} checks failed: {', '.join(failed)}")
    return None
