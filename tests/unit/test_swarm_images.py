"""What each swarm node is given of the manager's app images (no registry), decided from recorded answers."""

from swiftdeploy.engine.runtime.swarm_images import NodeEngine, shipments, unreached
from swiftdeploy.engine.swarm_probe import schedulable_nodes

NODES = [
    {"ID": "m1", "Description": {"Hostname": "node1"}, "Status": {"State": "ready"}, "Spec": {"Availability": "active"}},
    {"ID": "w2", "Description": {"Hostname": "node2"}, "Status": {"State": "ready"}, "Spec": {"Availability": "active"}},
    {"ID": "w3", "Description": {"Hostname": "node3"}, "Status": {"State": "down"}, "Spec": {"Availability": "active"}},
    {"ID": "w4", "Description": {"Hostname": "node4"}, "Status": {"State": "ready"}, "Spec": {"Availability": "drain"}},
]


def test_only_ready_active_nodes_take_tasks():
    assert schedulable_nodes(NODES) == {"m1": "node1", "w2": "node2"}


def test_a_node_gets_what_it_lacks_by_id_and_only_a_tag_for_an_id_it_holds():
    wanted = {"app:1.1": "sha256:new", "app:1.0": "sha256:old", "app:stable": "sha256:old"}
    held = {"app:1.1": "sha256:older", "app:1.0": "sha256:old", "app:stable": None}
    assert shipments(wanted, held, {"sha256:old", "sha256:older"}) == [("load", "app:1.1"), ("tag", "app:stable")]
    assert shipments(wanted, {k: v for k, v in wanted.items()}, set(wanted.values())) == []


def test_a_ready_worker_no_engine_reaches_is_named_with_why():
    engines = [NodeEngine("tcp://10.0.0.2:2375", "w2", "node2"), NodeEngine("tcp://10.0.0.5:2375", problem="connection refused")]
    assert unreached({"m1": "node1", "w2": "node2"}, "m1", engines) == []
    [line] = unreached({"m1": "node1", "w2": "node2", "w5": "node5"}, "m1", engines)
    assert line.startswith("swarm node node5 takes tasks, but no engine of swarm.engines in manifest.yaml reaches it "
                           "(tcp://10.0.0.5:2375: connection refused)")
    assert "docker node update --availability drain node5" in line


def test_a_one_node_swarm_needs_no_engines():
    assert unreached({"m1": "node1"}, "m1", []) == []
