"""audit: reports/audit_report.md and .html from the history, rebuilt only when the history (or report code) changed.

audit:verify: check the history's chain (history_chain.py); always runs, reads only.
"""

import hashlib
from pathlib import Path

from .actions import operator_action

HISTORY = Path("reports/history.jsonl")
REPORT = Path("reports/audit_report.md")
HTML_REPORT = Path("reports/audit_report.html")
POLICY_DATA = Path("policies/data.json")
_CODE = ("report/audit.py", "report/periods.py", "report/markdown.py", "report/html.py", "report/svg.py",
         "present/dashboard.py")


def task_audit():
    """Write reports/audit_report.md and .html (timeline, violations, curves) from reports/history.jsonl."""
    yield {
        "basename": "audit",
        "doc": task_audit.__doc__,
        "actions": [write_report],
        "file_dep": [f"src/swiftdeploy/{name}" for name in _CODE],
        "uptodate": [history_unchanged],
        "targets": [str(REPORT), str(HTML_REPORT)],
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
    # The history only grows (a torn tail is cut, then appended to), so its size and mtime say whether it
    # changed without reading it: an md5 of a million-record history would read ~500 MB on every run.
    from swiftdeploy.evidence import segments

    try:
        stat = HISTORY.stat()
    except FileNotFoundError:
        return False  # the action says there is nothing to report yet
    try:
        limits = hashlib.md5(POLICY_DATA.read_bytes()).hexdigest()  # the curves draw its limits
    except OSError:
        limits = None
    signature = [stat.st_ino, stat.st_size, stat.st_mtime_ns, limits,
                 [segment.path.name for segment in segments.sealed(HISTORY)]]  # sealed or removed ones
    task.value_savers.append(lambda: {"history_signature": signature})
    return values.get("history_signature") == signature


@operator_action
def write_report():
    import sys

    from swiftdeploy.errors import SwiftDeployError
    from swiftdeploy.files import write_atomic
    from swiftdeploy.evidence.history import History
    from swiftdeploy.report.audit import audit_data
    from swiftdeploy.report.html import policy_limits, render_html
    from swiftdeploy.report.markdown import render_markdown

    if not HISTORY.exists():
        raise SwiftDeployError(f"{HISTORY} does not exist yet: deploy first, then audit")
    data = audit_data(History(HISTORY).records())
    limits, problem = policy_limits(POLICY_DATA)
    if problem:
        print(f"audit: no policy limit lines on the curves: {problem}", file=sys.stderr)
    write_atomic(REPORT, render_markdown(data))
    write_atomic(HTML_REPORT, render_html(data, limits))
    print(f"wrote {REPORT} and {HTML_REPORT} from {HISTORY} ({data.records} records)")


@operator_action
def verify_history():
    from doit.exceptions import TaskFailed

    from swiftdeploy.evidence.history import History
    from swiftdeploy.evidence.history_chain import verify

    history = History(HISTORY)
    verdict = verify(history.path, history.head_path, history.key_dir)
    for note in verdict.notes:
        print(note)
    if not verdict.intact:
        return TaskFailed(verdict.problem)
