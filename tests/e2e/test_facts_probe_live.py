"""The infra facts probe on the real engine: it measures the engine's data root, and leaves no container."""

import os
import subprocess
import sys

import pytest

from swiftdeploy.engine import api as engine
from swiftdeploy.engine import probe

pytestmark = [pytest.mark.e2e, pytest.mark.every_engine]


def probe_containers() -> list[dict]:
    return engine.client().api.containers(all=True, filters={"label": probe.PROBE_LABEL})


@pytest.fixture(autouse=True)
def no_probe_outlives_a_test():
    """A probe a failed test left would fail the next test's `no probe left` too: removed after each test."""
    yield
    for container in probe_containers():
        engine.remove_container(container["Id"], stop_seconds=0)


def test_the_probe_measures_the_data_root_it_was_given(tmp_path):
    facts = probe.engine_host_facts(str(tmp_path))
    disk = os.statvfs(tmp_path)  # the engine runs on this machine: the same filesystem seen from here
    assert facts["disk_path"] == str(tmp_path)
    assert facts["disk_total_bytes"] == disk.f_blocks * disk.f_frsize
    assert facts["cpu_count"] == len(os.sched_getaffinity(0))
    assert probe_containers() == []


def test_a_command_that_ends_while_measuring_leaves_no_probe_behind(tmp_path):
    code = ("import sys; from swiftdeploy.engine import probe; "
            f"probe.measure_soon({str(tmp_path)!r}); sys.exit(0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert probe_containers() == []


def test_probes_a_killed_process_left_are_removed_and_running_ones_kept():
    image = probe.probe_image()
    api = engine.client().api
    labels = dict([probe.PROBE_LABEL.split("=")])
    created = api.create_container(image, ["sh", "-c", "true"], labels=labels)["Id"]
    running = api.create_container(image, ["sh", "-c", "sleep 30"], labels=labels)["Id"]
    api.start(running)
    engine.remove_stopped(probe.PROBE_LABEL, older_than_seconds=0)
    assert [c["Id"] for c in probe_containers()] == [running]
