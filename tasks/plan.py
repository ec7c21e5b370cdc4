"""plan: what deploy would do, without doing it. Exit codes as Terraform's -detailed-exitcode."""

from .actions import load_stack


def task_plan():
    """Show what deploy would do: file diffs, containers to start, replace or remove, reloads, gates."""
    return {"actions": [show_plan], "uptodate": [False], "verbosity": 2}


def show_plan():
    """Exit 0: nothing to do; 2: changes pending (ChangesPending, a doit TaskError); 1: could not plan."""
    import traceback

    from doit.exceptions import TaskFailed

    from swiftdeploy.errors import SwiftDeployError
    from swiftdeploy.report_plan import plan_report

    from .reporter import ChangesPending

    try:
        report = plan_report(load_stack())
    except SwiftDeployError as err:
        return TaskFailed(str(err))
    except Exception:  # noqa: BLE001 - a bug must not read as exit 2, "changes pending"
        traceback.print_exc()
        return TaskFailed("plan failed with the error above (a bug: please report it)")
    print(report.text, end="")
    return ChangesPending("changes pending") if report.changes else None
