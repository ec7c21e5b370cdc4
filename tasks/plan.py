"""plan: what deploy would do, without doing it. Exit codes as Terraform's -detailed-exitcode."""

from .actions import load_stack
from .gates import FORMAT


def task_plan():
    """Show what deploy would do: file diffs, containers to start, replace or remove, reloads, gates."""
    return {"actions": [show_plan], "params": [FORMAT], "uptodate": [False], "verbosity": 2}


def show_plan(format):  # noqa: A002 - doit passes the option by its name
    """Exit 0: nothing to do; 2: changes pending (ChangesPending, a doit TaskError); 1: could not plan."""
    import traceback

    from doit.exceptions import TaskFailed

    from swiftdeploy.errors import SwiftDeployError
    from swiftdeploy.present.json_output import emit, plan_document
    from swiftdeploy.present.report_plan import plan_report

    from .reporter import ChangesPending

    try:
        report = plan_report(load_stack())
    except SwiftDeployError as err:
        failed, error = TaskFailed(str(err)), str(err).splitlines()[0]
    except Exception as err:  # noqa: BLE001 - a bug must not read as exit 2, "changes pending"
        traceback.print_exc()
        failed = TaskFailed("plan failed with the error above (a bug: please report it)")
        error = f"{type(err).__name__}: {err}"
    else:
        if format == "json":
            emit(plan_document(report))
        else:
            print(report.text, end="")
        return ChangesPending("changes pending") if report.changes else None
    if format == "json":
        emit(plan_document(error=error))
    return failed
