"""One command on every schedulable Swarm node, through a manager's API.

A global service whose tasks never restart places one task on each node that is ready and active (a
drained or down node takes none, so it is not judged: Swarm would not place the stack there either). Not a
global *job*: removing a job service leaves its task containers and their volumes on every node
(moby/moby#44312, seen here on 20.10), where removing a service removes them. The output comes back through
the manager's service logs, whose details name the node of each line."""

import time
import uuid

from . import api as engine
from ..errors import SwiftDeployError

TERMINAL = {"complete", "failed", "rejected", "shutdown", "orphaned"}


def schedulable_nodes(nodes: list[dict]) -> dict[str, str]:
    """{node id: hostname} of the nodes that take tasks, from the API's node list."""
    return {node["ID"]: node["Description"]["Hostname"] for node in nodes
            if node["Status"]["State"] == "ready" and node["Spec"].get("Availability") == "active"}


def split_by_node(log: bytes) -> dict[str, str]:
    """Service log lines with details ("com.docker.swarm.node.id=N,... text") grouped by node id."""
    by_node: dict[str, list[str]] = {}
    for line in log.decode(errors="replace").splitlines():
        details, _, text = line.partition(" ")
        attributes = dict(part.partition("=")[::2] for part in details.split(","))
        node = attributes.get("com.docker.swarm.node.id")
        if node:
            by_node.setdefault(node, []).append(text)
    return {node: "\n".join(lines) + "\n" for node, lines in by_node.items()}


def run_global_probe(image: str, command: list[str], timeout: float) -> tuple[dict, dict]:
    """({node id: hostname}, {node id: (task state, output)}) of `command` run once on each node."""
    from docker.types import ContainerSpec, Mount, RestartPolicy, ServiceMode

    client = engine.client()
    with engine.asking("listing the swarm's nodes"):
        nodes = schedulable_nodes(client.api.nodes())
    if not nodes:
        raise SwiftDeployError("the swarm has no ready, active node to measure")
    name = f"swiftdeploy-probe-{uuid.uuid4().hex[:8]}"
    with engine.asking(f"creating the facts probe job {name}"):
        service = client.api.create_service(
            {"ContainerSpec": ContainerSpec(image, command=command, user="65534:65534", read_only=True,
                                            mounts=[Mount("/data", None, type="volume")], cap_drop=["ALL"]),
             "RestartPolicy": RestartPolicy(condition="none")},
            name=name, mode=ServiceMode("global"), labels={"org.swiftdeploy.probe": "true"})
    try:
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        outputs: dict[str, str] = {}
        while time.monotonic() < deadline:
            with engine.asking(f"reading the tasks of {name}"):
                tasks = client.api.tasks(filters={"service": service["ID"]})
            states = {task["NodeID"]: task["Status"]["State"] for task in tasks if task.get("NodeID") in nodes}
            if set(states) == set(nodes) and set(states.values()) <= TERMINAL:
                with engine.asking(f"reading the output of {name}"):
                    log = b"".join(client.api.service_logs(service["ID"], details=True, stdout=True, stderr=True))
                outputs = split_by_node(log)
                # Logs reach the manager a moment after a task ends.
                if all(node in outputs or states[node] != "complete" for node in nodes):
                    break
            time.sleep(0.25)
        return nodes, {node: (states[node], outputs.get(node, "")) for node in states if states[node] in TERMINAL}
    finally:
        with engine.asking(f"removing the facts probe job {name}"):
            client.api.remove_service(service["ID"])
