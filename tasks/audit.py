"""audit: reports/audit_report.md from the history, rebuilt only when the history (or report code) changed.

audit:verify: check the history's chain (history_chain.py); always runs, reads only.
"""

import hashlib
from pathlib import Path

from .actions import operator_action

HISTORY = Path("reports/history.jsonl")
REPORT = Path("reports/audit_report.md")


def task_audit():
    """Write reports/audit_report.md (timeline, violations) from reports/history.jsonl."""
    yield {
        "basename": "audit",
        "doc": task_audit.__doc__,
        "actions": [write_report],
        "file_dep": ["src/swiftdeploy/report.py", "src/swiftdeploy/report_markdown.py", "src/swiftdeploy/dashboard.py"],
        "uptodate": [history_unchanged],
        "targets": [str(REPORT)],
        "clean": True,
        "verbosity": 2,
    }
    # A task of its own rather than a subtask: `doit audit` runs its subtasks, and must stay the report alone.
    yield {
        "basename": "audit:verify",
        "doc": "Check the history's hash chain and head: exit 0 intact, 1 when a line was edited, moved or cut",
        "actions": [verify_history],
        "verbosity": 2,
    }


def history_unchanged(task, values):
    try:
        digest = hashlib.md5(HISTORY.read_bytes()).hexdigest()
    except FileNotFoundError:
        return False  # the action says there is nothing to report yet
    task.value_savers.append(lambda: {"history_md5": digest})
    return values.get("history_md5") == digest


@operator_action
def write_report():
    from swiftdeploy.errors import SwiftDeployError
    from swiftdeploy.files import write_atomic
    from swiftdeploy.history import History
    from swiftdeploy.report import audit_data
    from swiftdeploy.report_markdown import render_markdown

    if not HISTORY.exists():
        raise SwiftDeployError(f"{HISTORY} does not exist yet: deploy first, then audit")
    data = audit_data(History(HISTORY).read())
    write_atomic(REPORT, render_markdown(data))
    print(f"wrote {REPORT} from {HISTORY}")


@operator_action
def verify_history():
    from doit.exceptions import TaskFailed

    from swiftdeploy.history import History
    from swiftdeploy.history_chain import verify

    history = History(HISTORY)
    verdict = verify(history.path, history.head_path, history.key_dir)
    for note in verdict.notes:
        print(note)
    if not verdict.intact:
        return TaskFailed(verdict.problem)
