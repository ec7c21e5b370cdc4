"""Helpers for tests on the Docker test hosts of scripts/test-engine (swarm / remote, in network namespaces)."""

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from projectkit import ROOT

ENGINE = ROOT / "scripts" / "test-engine"
ENGINE_DIR = ROOT / ".engine"
HOSTS_DIR = ENGINE_DIR / "hosts"
NODE_CACHE = ENGINE_DIR / "node-data"  # the nodes' data roots, kept by `down` as image caches
BRIDGE = "sdsw0"


def read_env(path: Path) -> dict[str, str]:
    """The KEY=VALUE lines of .engine/swarm.env or .engine/remote.env."""
    pairs = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def engine_script(*args: str, timeout: float = 240) -> float:
    """Run scripts/test-engine ARGS; fail with its output if it fails. Returns the seconds it took."""
    start = time.monotonic()
    result = subprocess.run([str(ENGINE), *args], capture_output=True, text=True, timeout=timeout)
    took = time.monotonic() - start
    if result.returncode != 0:
        raise AssertionError(f"scripts/test-engine {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    print(f"scripts/test-engine {' '.join(args)}: {took:.1f} s")
    return took


@pytest.fixture
def stopped_nodes():
    """stop(K) stops swarm node K's dockerd (`swarm stop-node K`); each node stopped so starts again at the end,
    whatever the test did in between (start-node on a running node does nothing)."""
    stopped = []

    def stop(number: int) -> float:
        stopped.append(number)
        return engine_script("swarm", "stop-node", str(number))

    yield stop
    if (ENGINE_DIR / "swarm.env").exists():
        for number in stopped:
            engine_script("swarm", "start-node", str(number))


def docker(host: str, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    """The docker CLI against one engine (unix:// or tcp://)."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "DOCKER_HOST": host})
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} on {host} failed: {result.stderr.strip()}")
    return result


def swarm_nodes(manager: str) -> dict[str, dict]:
    """hostname -> the node as `docker node inspect` shows it."""
    ids = docker(manager, "node", "ls", "-q").stdout.split()
    nodes = json.loads(docker(manager, "node", "inspect", *ids).stdout)
    return {node["Description"]["Hostname"]: node for node in nodes}


def node_hosts(swarm: dict[str, str]) -> dict[str, str]:
    """node name -> its unix:// DOCKER_HOST, from .engine/swarm.env's pairs."""
    return {name: swarm[f"SWIFTDEPLOY_{name.upper()}_SOCKET"] for name in swarm["SWIFTDEPLOY_SWARM_NODES"].split(",")}


# what every swarm node has before anything is deployed
DEFAULT_NETWORKS = {"bridge", "host", "none", "ingress", "docker_gwbridge"}


def residue(swarm: dict[str, str]) -> list[str]:
    """Services, secrets, configs, containers, networks and volumes on the swarm's nodes beyond a fresh node's: empty after a
    clean teardown."""
    found = [f"{kind} {name}" for kind in ("service", "secret", "config")
             for name in docker(swarm["DOCKER_HOST"], kind, "ls", "--format", "{{.Name}}").stdout.split()]
    for node, host in node_hosts(swarm).items():
        found += [f"{node}: container {name}" for name in docker(host, "ps", "-a", "--format", "{{.Names}}").stdout.split()]
        found += [f"{node}: network {name}" for name in docker(host, "network", "ls", "--format", "{{.Name}}").stdout.split()
                  if name not in DEFAULT_NETWORKS]
        found += [f"{node}: volume {name}" for name in docker(host, "volume", "ls", "-q").stdout.split()]
    return found


def wait_for(what: str, check, seconds: float, period: float = 0.2):
    """Poll check() until it returns something truthy; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s")
        time.sleep(period)


def in_netns(netns: str, *command: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(["nsenter", f"--net=/var/run/netns/{netns}", *command], capture_output=True,
                          text=True, timeout=timeout)


def leftovers() -> list[str]:
    """Everything of the test hosts still on this machine: namespaces, links, processes, mounts, cgroups,
    the FORWARD rule. Empty when `down` did its job."""
    found = []
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n")
    found += [f"namespace {line.split()[0]}" for line in netns
              if line.startswith(("sd-node", "sd-remote"))]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout.splitlines()
    for line in links:
        name = line.split(": ")[1].split("@")[0]
        if name == BRIDGE or name.startswith(("sd-node", "sd-remote")):
            found.append(f"link {name}")
    run_dir = run_dir_of_checkout()
    roots = (str(HOSTS_DIR), str(NODE_CACHE), f"{run_dir}/hosts")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(root in cmdline for root in roots):
            found.append(f"process {proc.name}: {cmdline[:100]}")
    for line in Path("/proc/self/mounts").read_text().splitlines():
        mountpoint = line.split()[1]
        if mountpoint.startswith(roots):
            found.append(f"mount {mountpoint}")
    for cgroup in Path("/sys/fs/cgroup").glob("*/sdhosts-*"):
        found.append(f"cgroup {cgroup}")
    rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True).stdout
    found += [f"iptables {rule}" for rule in rules.splitlines() if "swiftdeploy-test-hosts" in rule]
    if HOSTS_DIR.exists():
        found.append(f"directory {HOSTS_DIR}")
    return found


def run_dir_of_checkout() -> str:
    """scripts/test-engine's RUN_DIR: /run/swiftdeploy-<first 8 hex of md5 of the checkout path>."""
    return f"/run/swiftdeploy-{hashlib.md5(str(ROOT).encode()).hexdigest()[:8]}"
