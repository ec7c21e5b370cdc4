"""SwiftDeploy's doit task creators. They describe tasks and never do I/O, so `doit list` stays instant."""

from .audit import task_audit
from .certs import task_certs
from .docs import task_docs
from .deploy import task_build, task_compose_up, task_deploy, task_teardown
from .gates import task_canary_gate, task_infra_gate
from .observe import task_chaos, task_logs, task_status
from .plan import task_plan
from .promote import task_promote, task_rollback
from .render import task_init
from .rollout import task_rollout
from .validate import task_validate

__all__ = [
    "task_audit", "task_build", "task_certs", "task_canary_gate", "task_chaos", "task_compose_up", "task_deploy", "task_docs",
    "task_infra_gate", "task_init", "task_logs", "task_plan", "task_promote", "task_rollback", "task_rollout", "task_status", "task_teardown",
    "task_validate",
]
