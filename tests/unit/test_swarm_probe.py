from swiftdeploy.engine.swarm_probe import schedulable_nodes, split_by_node


def node(node_id, hostname, state="ready", availability="active"):
    return {"ID": node_id, "Description": {"Hostname": hostname}, "Status": {"State": state},
            "Spec": {"Availability": availability, "Role": "worker"}}


def test_only_nodes_that_take_tasks_are_measured():
    nodes = [node("a1", "sd-node1"), node("b2", "sd-node2", state="down"),
             node("c3", "sd-node3", availability="drain"), node("d4", "sd-node4", availability="pause"),
             node("e5", "sd-node5")]
    assert schedulable_nodes(nodes) == {"a1": "sd-node1", "e5": "sd-node5"}


def test_interleaved_log_lines_are_grouped_by_the_node_that_wrote_them():
    log = (b"com.docker.swarm.node.id=a1,com.docker.swarm.service.id=s,com.docker.swarm.task.id=t1 disk 1 4096 2\n"
           b"com.docker.swarm.node.id=e5,com.docker.swarm.service.id=s,com.docker.swarm.task.id=t2 disk 3 4096 4\n"
           b"com.docker.swarm.node.id=a1,com.docker.swarm.service.id=s,com.docker.swarm.task.id=t1 cpus 2\n"
           b"a line without details\n")
    assert split_by_node(log) == {"a1": "disk 1 4096 2\ncpus 2\n", "e5": "disk 3 4096 4\n"}
