"""doit reporter: an operator's failure is one line per problem on stderr; a bug keeps its traceback.

With `--format json` stdout holds the one JSON document the task prints (and `logs` the containers' lines), so
this reporter writes its own lines (task titles, failures) to stderr instead.
"""

import sys

from doit.exceptions import TaskError, TaskFailed
from doit.reporter import ConsoleReporter


class ChangesPending(TaskError):
    """`plan` found changes: exit 2, as Terraform's -detailed-exitcode, and nothing more to print."""


class Undecided(TaskError):
    """A gate could not decide (OPA unreachable or its answer malformed, no facts): exit 2, not 1 (denied)."""


class OperatorReporter(ConsoleReporter):
    desc = "console output; expected failures as one line per problem"

    def __init__(self, outstream, options):
        super().__init__(outstream, options)
        self.json, self.gates = False, []

    def initialize(self, tasks, selected_tasks):
        selected = [tasks[name] for name in selected_tasks if name in tasks]
        self.json = any((task.options or {}).get("format") == "json" for task in selected)
        self.gates = [task for task in selected if "gate" in (task.meta or {})]
        if self.json or any((task.meta or {}).get("owns_stdout") for task in selected):
            self.outstream = sys.stderr

    def add_failure(self, task, fail):
        if isinstance(fail, ChangesPending):
            self.failures.append({"task": task, "exception": fail, "operator": True})
            return
        if isinstance(fail, (TaskFailed, Undecided)):
            self.failures.append({"task": task, "exception": fail, "operator": True})
            for line in fail.get_msg().strip().splitlines():
                sys.stderr.write(f"swiftdeploy: {task.name}: {line}\n")
            return
        super().add_failure(task, fail)

    def complete_run(self):
        # Operator failures were already printed in full; only bugs get the captured-output dump.
        unasked = self._gate_never_asked()
        self.failures = [f for f in self.failures if not f.get("operator")]
        super().complete_run()
        if unasked:
            self._exit_undecided(*unasked)

    def _gate_never_asked(self):
        """(a selected gate that did not run because a task before it failed, that failure), or None."""
        failed = [f for f in self.failures if not isinstance(f["exception"], ChangesPending)]
        if not failed or any("gate" in (f["task"].meta or {}) for f in failed):
            return None
        unasked = [gate for gate in self.gates if not gate.executed]
        first = failed[0]
        return (unasked[0], f"{first['task'].name}: {first['exception'].get_msg().strip().splitlines()[0]}") \
            if unasked else None

    def _exit_undecided(self, gate, failure: str) -> None:
        """doit would exit 1 (a task failed), which for a gate means denied; this gate could not decide: 2."""
        from swiftdeploy.present.json_output import UNDECIDED, emit, gate_document

        if self.json:
            emit(gate_document(gate.meta["gate"], error=f"not asked: {failure}"))
        sys.exit(UNDECIDED)
