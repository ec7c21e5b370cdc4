"""doit reporter: an operator's failure is one line per problem on stderr; a bug keeps its traceback."""

import sys

from doit.exceptions import TaskError, TaskFailed
from doit.reporter import ConsoleReporter


class ChangesPending(TaskError):
    """`plan` found changes: exit 2, as Terraform's -detailed-exitcode, and nothing more to print."""


class OperatorReporter(ConsoleReporter):
    desc = "console output; expected failures as one line per problem"

    def add_failure(self, task, fail):
        if isinstance(fail, ChangesPending):
            self.failures.append({"task": task, "exception": fail, "operator": True})
            return
        if isinstance(fail, TaskFailed):
            self.failures.append({"task": task, "exception": fail, "operator": True})
            for line in fail.get_msg().strip().splitlines():
                sys.stderr.write(f"swiftdeploy: {task.name}: {line}\n")
            return
        super().add_failure(task, fail)

    def complete_run(self):
        # Operator failures were already printed in full; only bugs get the captured-output dump.
        self.failures = [f for f in self.failures if not f.get("operator")]
        super().complete_run()
