"""audit: reports/audit_report.md from the history."""

from .actions import not_implemented


def task_audit():
    """Write reports/audit_report.md (timeline, violations) from reports/history.jsonl."""
    return {"actions": [not_implemented], "uptodate": [False], "verbosity": 2}
