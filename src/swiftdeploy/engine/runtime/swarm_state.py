"""What Swarm says about a stack's services, as the planner's Containers (pure: tested on recorded answers).

Swarm differs from Compose in one way the planner must not see: a role runs as a service of N tasks that Swarm
updates in place, not as one container that is recreated. So one Container stands for one service: ready when
exactly `replicas` tasks of the service's current definition run (a task with a healthcheck reports RUNNING only
once healthy) and no task of an older definition does; unhealthy when an update paused or rolled back.
"""

from collections.abc import Callable, Mapping
from datetime import datetime

from ...state import ROLE_LABEL, SECRETS_LABEL, SPEC_LABEL, VERSION_LABEL, Container

STACK_LABEL = "com.docker.stack.namespace"
FAILED_UPDATES = ("paused", "rollback_started", "rollback_paused", "rollback_completed")
FAILED_TASKS = ("failed", "rejected")


def service_as_container(service: Mapping, tasks: list[Mapping], image_of: Callable[[str], str | None] = lambda _: None,
                         ) -> tuple[Container, str | None]:
    """(the service as one Container, what went wrong with it or None). `image_of(container id)` is the image a
    task's container runs when the engine asked can see that container (tasks on other nodes it cannot)."""
    spec = service.get("Spec") or {}
    template = spec.get("TaskTemplate") or {}
    labels = (template.get("ContainerSpec") or {}).get("Labels") or {}
    namespace = (spec.get("Labels") or {}).get(STACK_LABEL, "")
    name = spec.get("Name", service.get("ID", "")[:12])
    replicas = ((spec.get("Mode") or {}).get("Replicated") or {}).get("Replicas", 1)
    live = [t for t in tasks if t.get("DesiredState") == "running"]
    current = [t for t in live if _same_definition(t, labels, template)]
    running = [t for t in current if _state(t) == "running"]
    old_running = [t for t in live if t not in current and _state(t) == "running"]
    update = (service.get("UpdateStatus") or {}).get("State")

    problem = None
    if update in FAILED_UPDATES:
        problem = f"its update {update.replace('_', ' ')}: {(service.get('UpdateStatus') or {}).get('Message', '')}"
        health = "unhealthy"
    elif len(running) == replicas and not old_running:
        health = "healthy"
    else:
        health = "starting"
    failed = sorted((t for t in tasks if _state(t) in FAILED_TASKS), key=lambda t: t.get("UpdatedAt", ""))
    if not running and not old_running and failed and not any(_state(t) in ("starting", "preparing") for t in live):
        state = "exited"
        problem = problem or f"its task {_state(failed[-1])}: {(failed[-1].get('Status') or {}).get('Err', '')}"
    else:
        state = "running" if running or old_running else "created"
    image_ids = [image_of(container_id) for t in running if (container_id := _container_id(t))]
    container = Container(
        id=service["ID"], name=name, role=labels.get(ROLE_LABEL), spec=labels.get(SPEC_LABEL),
        version=labels.get(VERSION_LABEL), image_id=next((i for i in image_ids if i), ""), state=state,
        health=health, created=_epoch(service.get("CreatedAt")), secrets_digest=labels.get(SECRETS_LABEL),
        compose_service=name[len(namespace) + 1:] if namespace and name.startswith(namespace + "_") else name)
    return container, problem


def _same_definition(task: Mapping, labels: Mapping, template: Mapping) -> bool:
    """The task runs the service's current definition: its spec label, and no forced restart since."""
    task_spec = task.get("Spec") or {}
    task_labels = (task_spec.get("ContainerSpec") or {}).get("Labels") or {}
    return (task_labels.get(SPEC_LABEL) == labels.get(SPEC_LABEL)
            and task_spec.get("ForceUpdate", 0) == template.get("ForceUpdate", 0))


def _state(task: Mapping) -> str:
    return (task.get("Status") or {}).get("State", "")


def _container_id(task: Mapping) -> str | None:
    return ((task.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")


def _epoch(stamp: str | None) -> int:
    if not stamp:
        return 0
    try:
        return int(datetime.fromisoformat(stamp[:19]).timestamp())
    except ValueError:
        return 0
