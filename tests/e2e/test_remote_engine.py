"""A remote engine is judged by its own host: a test host's dockerd over tcp:// whose data root is a 64 MB
tmpfs is refused for its disk, while the machine running the CLI has plenty.

The test host is scripts/test-engine's `remote` (a dockerd in a network namespace). OPA runs on this
machine (`opa run` on loopback, the project's policies, the production disk limit of 10 GB; the load limit
is raised because the test host shares this machine's kernel, so its load is this busy machine's).
"""

import json
import os
import re
import subprocess
import sys

import pytest
from hostskit import ENGINE_DIR, docker, engine_script, read_env
from opakit import point_at, running_opa, set_infra_limits, token_of
from projectkit import copy_project, run_doit

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def remote():
    try:  # an up that fails half-way leaves a namespace, a dockerd or a mount for `down` to take
        engine_script("remote", "up", timeout=300)
        yield read_env(ENGINE_DIR / "remote.env")
    finally:
        engine_script("remote", "down", timeout=300)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("remote") / "project")
    (project / "manifest.yaml").write_text((project / "manifest.yaml").read_text() + "opa:\n  port: 1\n")
    run_doit(project, "init", check=True)
    return project


def test_a_remote_engine_with_a_full_disk_is_refused_while_this_machine_has_plenty(remote, project, tmp_path):
    token = token_of(project)
    with running_opa(tmp_path / "opa.log", token, project / "policies", writable=True) as opa:
        set_infra_limits(opa, token, {"min_disk_free_gb": 10, "max_load_1m": 1000.0})
        point_at(project, opa)
        env = {key: value for key, value in os.environ.items() if key != "SWIFTDEPLOY_DATA_PATH"}
        env["DOCKER_HOST"] = remote["DOCKER_HOST"]
        assert env["DOCKER_HOST"].startswith("tcp://")
        result = subprocess.run([sys.executable, "-m", "doit", "infra-gate", "--format", "json"], cwd=project,
                                env=env, capture_output=True, text=True, timeout=180)
    answer = json.loads(result.stdout)
    assert result.returncode == 1 and answer["exit_code"] == 1, result.stdout + result.stderr
    facts = answer["input"]
    assert facts["disk_path"] == remote["SWIFTDEPLOY_REMOTE_DATA_ROOT"]
    assert 32 * 2**20 < facts["disk_total_bytes"] <= 64 * 2**20, "the remote host's 64 MB tmpfs was measured"
    [reason] = answer["reasons"]
    assert re.fullmatch(rf"disk free 0\.0\d GB on {re.escape(facts['disk_path'])} is below the minimum 10 GB",
                        reason), reason

    here = os.statvfs(os.getcwd())
    assert here.f_bavail * here.f_frsize > 10 * 10**9, "the machine running the CLI has plenty"
    print(f"remote engine {remote['DOCKER_HOST']}: {reason}; the CLI's machine: "
          f"{here.f_bavail * here.f_frsize / 1e9:.1f} GB free")

    host = remote["DOCKER_HOST"]
    probes = docker(host, "ps", "-a", "--filter", "label=org.swiftdeploy.probe", "-q").stdout.split()
    assert probes == [], "the probe container is removed after it reported"
    images = docker(host, "images", "--format", "{{.Repository}}", "swiftdeploy/facts-probe").stdout.split()
    assert images == ["swiftdeploy/facts-probe"], "the probe image was imported on the remote engine"
