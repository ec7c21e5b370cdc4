"""The Docker test hosts of scripts/test-engine: a 3-node swarm and a remote engine, each dockerd in a network
namespace of its own. Needs root (namespaces, bridge, tmpfs). The tests run in file order: the last ones tear
everything down and check that nothing is left. They use `swarm down` and `remote down`, never plain `down`,
which would also stop the engine scripts/test runs the rest of the suite on."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from opakit import running_opa, set_infra_limits
from swiftdeploy.judge.policy import OpaClient

from hostskit import (ENGINE, ENGINE_DIR, docker, engine_script, in_netns, leftovers, read_env, residue,
                      stopped_nodes, swarm_nodes, wait_for)  # noqa: F401 - stopped_nodes is a fixture

# the first test also waits for `swarm up`: a minute with the images at hand, minutes if it has to build them
pytestmark = [pytest.mark.hosts, pytest.mark.timeout(900)]

NODES = ["sd-node1", "sd-node2", "sd-node3"]
STANDINS = ["swiftdeploy/standin-base:bookworm", "nginx:latest", "openpolicyagent/opa:1.22.3",
            "prom/prometheus:v2.42.0"]


def down_hosts() -> None:
    """Not plain `down`: under scripts/test that would also stop the engine the rest of the suite runs on."""
    for what in ("remote", "swarm"):
        engine_script(what, "down")


@pytest.fixture(scope="class")
def hosts():
    try:
        engine_script("swarm", "up", "3", timeout=840)
        engine_script("remote", "up")
        yield read_env(ENGINE_DIR / "swarm.env"), read_env(ENGINE_DIR / "remote.env")
    finally:
        down_hosts()


@pytest.fixture
def hosts_down_after():
    """For a test that brings hosts up and down itself: whatever it leaves when it fails goes."""
    yield
    down_hosts()


def node_env(swarm: dict, number: int, what: str) -> str:
    return swarm[f"SWIFTDEPLOY_NODE{number}_{what}"]


def cluster_facts(manager: str) -> dict:
    """The infra gate's facts of every node, measured through the manager as the swarm runtime does."""
    code = ("import json; from swiftdeploy.engine import probe; "
            "print(json.dumps(probe.cluster_facts('swift-deploy-1-node:latest', '/var/lib/docker')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180,
                            env={**os.environ, "DOCKER_HOST": manager})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class TestHostsUp:
    """One swarm of 3 and the remote host, up for these tests in order; down right after the last (before the
    tests below, which bring hosts up and down themselves), even when one fails."""

    def test_three_nodes_form_one_swarm(self, hosts):
        swarm, _ = hosts
        nodes = swarm_nodes(swarm["DOCKER_HOST"])
        assert sorted(nodes) == NODES
        assert {name: node["Status"]["State"] for name, node in nodes.items()} == dict.fromkeys(NODES, "ready")
        assert nodes["sd-node1"]["Spec"]["Role"] == "manager"
        assert [nodes[name]["Spec"]["Role"] for name in NODES[1:]] == ["worker", "worker"]
        info = json.loads(docker(swarm["DOCKER_HOST"], "info", "--format", "{{json .Swarm.Cluster.Spec}}").stdout)
        assert info["Dispatcher"]["HeartbeatPeriod"] == 1_000_000_000  # 1 s, so a dead node is noticed in seconds

    def test_every_node_has_the_standin_images_and_answers_over_tcp(self, hosts):
        swarm, _ = hosts
        for number in (1, 2, 3):
            listed = docker(node_env(swarm, number, "TCP"), "images", "--format", "{{.Repository}}:{{.Tag}}").stdout
            assert set(STANDINS) <= set(listed.split()), f"node{number} lacks {set(STANDINS) - set(listed.split())}"

    def test_an_overlay_network_carries_requests_between_nodes(self, hosts):
        swarm, _ = hosts
        manager = swarm["DOCKER_HOST"]
        docker(manager, "network", "create", "--driver", "overlay", "hosts-test-net")
        try:
            # host-mode port: one task per worker (the port is taken on the node that has one)
            docker(manager, "service", "create", "--detach", "--no-resolve-image", "--name", "hosts-test-web",
                   "--network", "hosts-test-net", "--replicas", "2", "--endpoint-mode", "dnsrr",
                   "--publish", "mode=host,target=80,published=8097", "--constraint", "node.role==worker",
                   "nginx:latest")

            def running_nodes():
                lines = docker(manager, "service", "ps", "hosts-test-web", "--filter", "desired-state=running",
                               "--format", "{{.Node}} {{.CurrentState}}").stdout.splitlines()
                nodes = sorted(line.split()[0] for line in lines if line.split()[1] == "Running")
                return nodes if nodes == ["sd-node2", "sd-node3"] else None

            wait_for("both tasks running, one on each worker", running_nodes, 90)

            for number in (2, 3):
                answer = wait_for(f"node{number}'s published port from the manager's namespace", lambda: in_netns(
                    "sd-node1", "curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3",
                    f"http://{node_env(swarm, number, 'ADDR')}:8097/").stdout == "200", 30)
                assert answer
                # and from the host itself, over the bridge (where an nginx on the host would send)
                assert subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3",
                                       f"http://{node_env(swarm, number, 'ADDR')}:8097/"],
                                      capture_output=True, text=True).stdout == "200"

            def task(number):
                host = node_env(swarm, number, "SOCKET")
                container = docker(host, "ps", "-q", "--filter", "label=com.docker.swarm.service.name=hosts-test-web"
                                   ).stdout.split()[0]
                address = docker(host, "inspect", "--format",
                                 '{{(index .NetworkSettings.Networks "hosts-test-net").IPAddress}}', container).stdout
                return host, container, address.strip()

            host2, container2, address2 = task(2)
            _, _, address3 = task(3)
            fetch = ("import sys, urllib.request; "
                     "print(urllib.request.urlopen('http://' + sys.argv[1] + '/', timeout=5).status)")
            assert docker(host2, "exec", container2, "python3", "-c", fetch, address3).stdout.strip() == "200"
            # dnsrr: the service name resolves to both tasks, across the two nodes
            resolved = docker(host2, "exec", container2, "getent", "ahostsv4", "hosts-test-web").stdout
            assert {address2, address3} <= {line.split()[0] for line in resolved.splitlines()}
        finally:
            docker(manager, "service", "rm", "hosts-test-web", check=False)
            wait_for("the service's tasks gone from the overlay network", lambda: docker(
                manager, "network", "rm", "hosts-test-net", check=False).returncode == 0, 60, period=1)

    def test_the_infra_facts_come_from_every_node_and_opa_names_the_failing_ones(self, hosts, tmp_path):
        swarm, _ = hosts
        facts = cluster_facts(swarm["DOCKER_HOST"])
        assert set(facts["nodes"]) == set(NODES)
        here = os.statvfs(ENGINE_DIR)
        for node in facts["nodes"].values():
            # the nodes' data roots live on this machine's disk, and their /proc is this kernel's
            assert node["disk_total_bytes"] == here.f_blocks * here.f_frsize and node["cpu_count"] == os.cpu_count()
        wait_for("no probe left on any node", lambda: residue(swarm) == [], 30, period=1)

        token = "hosts-test-token"
        with running_opa(tmp_path / "opa.log", token, writable=True) as url:
            client = OpaClient(url, token)

            set_infra_limits(url, token, {"min_disk_free_gb": 0, "max_load_1m": 1000.0})
            assert client.decide("infra", facts).allow
            set_infra_limits(url, token, {"min_disk_free_gb": 10**9, "max_load_1m": 1000.0})
            decision = client.decide("infra", facts)
        assert not decision.allow
        assert [reason.split(":")[0] for reason in decision.reasons] == [f"node {node}" for node in NODES]
        assert all("is below the minimum 1000000000 GB" in reason for reason in decision.reasons)

    def test_a_stopped_node_goes_down_in_the_swarm_and_comes_back(self, hosts, stopped_nodes):
        swarm, _ = hosts
        manager = swarm["DOCKER_HOST"]

        def state_of_node3():
            return swarm_nodes(manager)["sd-node3"]["Status"]["State"]

        stopped_nodes(3)
        stopped = time.monotonic()
        wait_for("node3 down in the swarm", lambda: state_of_node3() == "down", 15)
        print(f"node3 seen down {time.monotonic() - stopped:.1f} s after its dockerd stopped")
        assert docker(node_env(swarm, 3, "TCP"), "info", check=False, timeout=10).returncode != 0
        assert set(cluster_facts(manager)["nodes"]) == {"sd-node1", "sd-node2"}, "a down node takes no task: not judged"

        engine_script("swarm", "start-node", "3")
        started = time.monotonic()
        wait_for("node3 ready again", lambda: state_of_node3() == "ready", 30)
        print(f"node3 ready {time.monotonic() - started:.1f} s after its dockerd answered")

    def test_the_remote_engine_has_a_64_mb_tmpfs_data_root_reached_over_tcp(self, hosts):
        _, remote = hosts
        host = remote["DOCKER_HOST"]
        assert host.startswith("tcp://")
        data_root = remote["SWIFTDEPLOY_REMOTE_DATA_ROOT"]
        assert docker(host, "info", "--format", "{{.DockerRootDir}}").stdout.strip() == data_root
        mounts = {line.split()[1]: line.split()[2] for line in open("/proc/self/mounts")}
        assert mounts[data_root] == "tmpfs"
        stat = os.statvfs(data_root)
        assert stat.f_blocks * stat.f_frsize == 64 * 1024 * 1024
        # what a probe container sees of it: its root filesystem lives on that data root
        df = docker(host, "run", "--rm", remote["SWIFTDEPLOY_REMOTE_IMAGE"], "df", "-k", "/").stdout
        assert df.splitlines()[1].split()[1] == "65536", df

    def test_down_leaves_nothing_behind(self, hosts):
        swarm, _ = hosts
        # state for the next `swarm up` on the same data roots to clear away
        docker(swarm["DOCKER_HOST"], "network", "create", "--driver", "overlay", "hosts-test-stale")
        docker(swarm["DOCKER_HOST"], "service", "create", "--detach", "--no-resolve-image", "--name", "hosts-test-stale",
               "--mode", "global", "--network", "hosts-test-stale", "nginx:latest")
        docker(node_env(swarm, 2, "SOCKET"), "volume", "create", "hosts-test-stale")
        wait_for("the stale service's task on node2", lambda: docker(node_env(swarm, 2, "SOCKET"), "ps", "-q").stdout, 60)
        left = residue(swarm)
        assert {"service hosts-test-stale", "node2: volume hosts-test-stale",
                "node1: network hosts-test-stale"} <= set(left), left
        took = engine_script("remote", "down") + engine_script("swarm", "down")
        assert leftovers() == []
        assert not (ENGINE_DIR / "swarm.env").exists() and not (ENGINE_DIR / "remote.env").exists()
        print(f"down of 3 nodes and the remote host: {took:.1f} s")


def test_up_again_starts_clean_on_the_cached_data_roots(hosts_down_after):
    took = engine_script("swarm", "up", "3")
    print(f"swarm up 3 on cached data roots: {took:.1f} s")
    swarm = read_env(ENGINE_DIR / "swarm.env")
    manager = swarm["DOCKER_HOST"]
    nodes = swarm_nodes(manager)
    assert {name: node["Status"]["State"] for name, node in nodes.items()} == dict.fromkeys(NODES, "ready")
    assert residue(swarm) == []
    for number in (1, 2, 3):
        host = node_env(swarm, number, "SOCKET")
        listed = docker(host, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        assert set(STANDINS) <= set(listed)
    engine_script("swarm", "down")
    assert leftovers() == []


def test_down_after_the_dockerd_was_killed_removes_its_containers_too(hosts_down_after):
    engine_script("remote", "up")
    remote = read_env(ENGINE_DIR / "remote.env")
    docker(remote["DOCKER_HOST"], "run", "-d", remote["SWIFTDEPLOY_REMOTE_IMAGE"], "sleep", "600")
    pid = int((ENGINE_DIR / "hosts" / "remote" / "dockerd.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    left = leftovers()
    assert any("containerd-shim" in item for item in left), left  # the container outlived its dockerd
    engine_script("remote", "down")
    assert leftovers() == []


def test_down_after_a_sigkilled_up_removes_what_it_had_made(hosts_down_after):
    up = subprocess.Popen([str(ENGINE), "swarm", "up", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for("node2's dockerd started", lambda: (ENGINE_DIR / "hosts" / "node2" / "dockerd.pid").exists(), 60,
                 period=0.05)
    finally:
        up.kill()
        up.wait()
    assert leftovers() != []
    engine_script("swarm", "down")
    assert leftovers() == []
