"""The app images on every swarm node, with no registry. SwiftDeploy builds on the manager; then each ready node
that lacks an image (by id) gets it over its own engine API, `docker save` here streamed into `docker load`
there (what unregistry's `docker pussh` does over SSH). A node that holds the id under another name only gets the
tag. The nodes' endpoints are the manifest's swarm.engines; a ready node none of them reaches is an error before
anything is deployed, since Swarm would place tasks there that cannot start.
"""

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .. import api as engine
from ...errors import SwiftDeployError
from ..swarm_probe import schedulable_nodes

CONNECT_SECONDS = 10


class ShippingError(SwiftDeployError):
    pass


@dataclass(frozen=True)
class NodeEngine:
    url: str
    node_id: str | None = None  # None when it did not answer
    hostname: str = ""
    problem: str | None = None
    client: object = None


def connect(url: str) -> NodeEngine:
    import docker

    try:
        client = docker.DockerClient(base_url=url, version=engine.API_VERSION, timeout=300,
                                     use_ssh_client=url.startswith("ssh://"))
        client.api.timeout = CONNECT_SECONDS
        info = client.info()
        client.api.timeout = 300
    except engine.engine_errors() as err:
        return NodeEngine(url, problem=engine.short(err))
    swarm = info.get("Swarm") or {}
    if not swarm.get("NodeID"):
        return NodeEngine(url, problem="that engine is in no swarm")
    return NodeEngine(url, swarm["NodeID"], info.get("Name", ""), client=client)


def unreached(ready: Mapping[str, str], manager_id: str, engines: list[NodeEngine]) -> list[str]:
    """One line per ready node, other than the manager, that no engine of swarm.engines reaches."""
    reached = {e.node_id for e in engines if e.node_id}
    failures = "; ".join(f"{e.url}: {e.problem}" for e in engines if e.problem)
    lines = []
    for node_id, hostname in sorted(ready.items(), key=lambda item: item[1]):
        if node_id != manager_id and node_id not in reached:
            lines.append(f"swarm node {hostname} takes tasks, but no engine of swarm.engines in manifest.yaml "
                         f"reaches it{f' ({failures})' if failures else ''}: with no registry, the app image built "
                         "on the manager cannot get there; list its Docker endpoint (tcp:// or ssh://) there, or "
                         f"drain it (docker node update --availability drain {hostname})")
    return lines


def shipments(wanted: Mapping[str, str], held: Mapping[str, str | None], ids_held: set[str]) -> list[tuple[str, str]]:
    """What one node needs, as ("load" | "tag", reference): `wanted` maps each reference to the manager's image
    id, `held` to the node's (None: no such name there), `ids_held` the ids the node has under any name."""
    needed = []
    for reference, image_id in wanted.items():
        if held.get(reference) == image_id:
            continue
        needed.append(("tag" if image_id in ids_held else "load", reference))
    return needed


def ship(references, urls, say: Callable[[str], None] = print) -> None:
    """Every ready node holds the manager's image of each reference, or ShippingError says which cannot."""
    manager = engine.client()
    wanted = {}
    for reference in dict.fromkeys(references):
        image_id = engine.image_id(reference)
        if image_id is None:
            raise ShippingError(f"{reference}: no such image on the manager to give the swarm's nodes")
        wanted[reference] = image_id
    ready, manager_id, engines = reached_nodes(urls)
    targets = [e for e in engines if e.node_id in ready and e.node_id != manager_id]
    with ThreadPoolExecutor(max_workers=max(len(targets), 1)) as pool:
        for line in pool.map(lambda node: _give(node, wanted), targets):
            if line:
                say(line)


def reached_nodes(urls) -> tuple[dict[str, str], str, list[NodeEngine]]:
    """(the ready nodes, the manager's id, the engines of swarm.engines), or ShippingError naming a ready node
    that none of them reaches: what the plan checks before the first step, and each shipment again."""
    manager = engine.client()
    with engine.asking("listing the swarm's nodes"):
        ready = schedulable_nodes(manager.api.nodes())
        manager_id = manager.info()["Swarm"]["NodeID"]
    if len(ready) <= 1 and not urls:
        return ready, manager_id, []
    engines = connect_all(urls)
    problems = unreached(ready, manager_id, engines)
    if problems:
        raise ShippingError(problems[0])
    return ready, manager_id, engines


def connect_all(urls) -> list[NodeEngine]:
    """Every engine of swarm.engines, asked in parallel; the ones that did not answer say why."""
    if not urls:
        return []
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        return list(pool.map(connect, urls))


def other_nodes(urls) -> list[NodeEngine]:
    """The engines of swarm.engines that answer (a stopped node's does not)."""
    return [e for e in connect_all(urls) if e.node_id]


def _give(node: NodeEngine, wanted: Mapping[str, str]) -> str | None:
    api = node.client.api
    with engine.asking(f"listing the images of swarm node {node.hostname} ({node.url})"):
        held = {reference: engine.image_id(reference, api) for reference in wanted}
        ids_held = {image["Id"] for image in api.images()}
    needed = shipments(wanted, held, ids_held)
    start = time.monotonic()
    for action, reference in needed:
        with engine.asking(f"giving {reference} to swarm node {node.hostname} ({node.url})"):
            if action == "tag":
                api.tag(wanted[reference], *engine.split_reference(reference), force=True)
            else:
                # save | load as a stream: the image is never whole in memory or on disk here
                for _ in api.load_image(engine.client().api.get_image(reference)):
                    pass
        if engine.image_id(reference, api) != wanted[reference]:
            raise ShippingError(f"swarm node {node.hostname} ({node.url}): {reference} is not the manager's image "
                                f"{wanted[reference][:19]} after docker load")
    if not needed:
        return None
    loaded = sorted(reference for action, reference in needed if action == "load")
    tagged = sorted(reference for action, reference in needed if action == "tag")
    parts = ([f"loaded {', '.join(loaded)}"] if loaded else []) + ([f"tagged {', '.join(tagged)}"] if tagged else [])
    return f"    swarm node {node.hostname}: {'; '.join(parts)} ({time.monotonic() - start:.1f} s, no registry)"
