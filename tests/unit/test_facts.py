import io
import os
import subprocess
import tarfile

import pytest

from swiftdeploy.engine import probe
from swiftdeploy.errors import SwiftDeployError
from swiftdeploy.engine.facts import FactsError, engine_data_path
from swiftdeploy.engine.tools import busybox_binary

INFRA_INPUT_KEYS = {"disk_path", "disk_free_bytes", "disk_total_bytes", "load_1m", "load_5m", "load_15m",
                    "cpu_count", "memory_available_bytes", "memory_total_bytes"}

# What the probe printed on a 2-vCPU engine host with a 64 MB tmpfs data root (busybox's stat).
RECORDED = """disk 15360 4096 16384
load 0.52 1.10 2.05
MemTotal:       24683656 kB
MemAvailable:   23751200 kB
cpus 2
"""


def test_the_probe_output_is_the_infra_input():
    facts = probe.parse(RECORDED, "/srv/docker")
    assert facts == {"disk_path": "/srv/docker", "disk_free_bytes": 15360 * 4096, "disk_total_bytes": 64 * 2**20,
                     "load_1m": 0.52, "load_5m": 1.10, "load_15m": 2.05, "memory_total_bytes": 24683656 * 1024,
                     "memory_available_bytes": 23751200 * 1024, "cpu_count": 2}


@pytest.mark.parametrize("output, named", [
    (RECORDED.replace("load 0.52", "load zero"), "'load zero 1.10 2.05'"),
    (RECORDED.replace("disk 15360 4096 16384", "disk 15360 4096"), "'disk 15360 4096'"),
    (RECORDED.replace("cpus 2\n", ""), "cpu_count"),
    ("", "disk_free_bytes, load_1m, memory_available_bytes, memory_total_bytes (no output)"),
    ("sh: stat: not found\n", "(sh: stat: not found)"),
])
def test_a_probe_output_that_is_off_is_one_line_naming_what(output, named):
    with pytest.raises(FactsError) as caught:
        probe.parse(output, "/data")
    assert named in str(caught.value) and "\n" not in str(caught.value)


def _script_in(shell: list[str], path, env=None) -> dict:
    result = subprocess.run([*shell, "-c", probe.SCRIPT, "probe", str(path)], capture_output=True, text=True,
                            timeout=10, env=env, check=True)
    return probe.parse(result.stdout, str(path))


def _assert_measures(facts, path):
    assert set(facts) == INFRA_INPUT_KEYS
    disk = os.statvfs(path)
    assert facts["disk_total_bytes"] == disk.f_blocks * disk.f_frsize
    assert abs(facts["disk_free_bytes"] - disk.f_bavail * disk.f_frsize) < 64 * 2**20  # others write meanwhile
    assert 0 < facts["memory_available_bytes"] <= facts["memory_total_bytes"]
    assert facts["cpu_count"] == len(os.sched_getaffinity(0))
    assert abs(facts["load_1m"] - os.getloadavg()[0]) < 2


def test_the_script_measures_with_coreutils(tmp_path):
    """The app image's userland (Debian's coreutils), as on a Swarm node where the probe runs in it."""
    _assert_measures(_script_in(["/bin/sh"], tmp_path), tmp_path)


def test_the_script_measures_with_the_probe_images_busybox(tmp_path):
    applets = tmp_path / "bin"
    applets.mkdir()
    for applet in probe.APPLETS:
        (applets / applet).symlink_to(busybox_binary())
    _assert_measures(_script_in([str(applets / "sh")], tmp_path, env={"PATH": str(applets)}), tmp_path)


def test_the_probe_image_is_one_static_busybox_and_its_applets():
    busybox = open(busybox_binary(), "rb").read()
    with tarfile.open(fileobj=io.BytesIO(probe.probe_image_tarball(busybox))) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile("bin/busybox").read() == busybox
    assert members["bin/busybox"].mode == 0o755
    assert {f"bin/{a}" for a in probe.APPLETS} <= set(members)
    assert all(members[f"bin/{a}"].linkname == "busybox" for a in probe.APPLETS)
    assert sum(m.size for m in members.values()) < 3 * 2**20  # fits on a nearly full host
    assert b"\x7fELF" == busybox[:4] and b"/lib64/ld-linux" not in busybox[:4096]  # static: no interpreter


def test_an_engine_that_cannot_run_the_probe_is_one_line(monkeypatch):
    def refuse(*args, **kwargs):
        raise SwiftDeployError("could not start swiftdeploy/facts-probe:abc: no space left on device\nmore")

    monkeypatch.setattr(probe.engine, "remove_stopped", lambda *args, **kwargs: None)  # no engine here
    monkeypatch.setattr(probe.engine, "run_once", refuse)
    with pytest.raises(FactsError) as caught:
        probe.engine_host_facts("/var/lib/docker", image="swiftdeploy/facts-probe:abc")
    assert str(caught.value) == ("cannot measure the engine's host: could not start swiftdeploy/facts-probe:abc: "
                                 "no space left on device")


# Trimmed recorded /info answers.
DOCKER_INFO = {"ID": "7TRN:...", "Driver": "overlay2", "DockerRootDir": "/var/lib/docker",
               "OperatingSystem": "Debian GNU/Linux 12 (bookworm)", "ServerVersion": "27.3.1"}
PODMAN_COMPAT_INFO = {"Driver": "overlay", "DockerRootDir": "/home/ci/.local/share/containers/storage",
                      "ServerVersion": "4.3.1", "Name": "ci-runner"}
PODMAN_LIBPOD_INFO = {"host": {"arch": "amd64"},
                      "store": {"graphDriverName": "overlay", "graphRoot": "/var/lib/containers/storage",
                                "runRoot": "/run/containers/storage"},
                      "version": {"Version": "4.3.1"}}


@pytest.mark.parametrize("info, expected", [
    (DOCKER_INFO, "/var/lib/docker"),
    (PODMAN_COMPAT_INFO, "/home/ci/.local/share/containers/storage"),
    (PODMAN_LIBPOD_INFO, "/var/lib/containers/storage"),
    ({**PODMAN_LIBPOD_INFO, "DockerRootDir": "/srv/engine"}, "/srv/engine"),
])
def test_engine_data_path_from_recorded_info(info, expected):
    assert engine_data_path(info, exists=lambda path: False) == expected


@pytest.mark.parametrize("info", [None, {}, {"DockerRootDir": ""}, {"store": "odd"}, {"DockerRootDir": None}])
def test_engine_data_path_fallbacks(info):
    assert engine_data_path(info, exists=lambda path: True) == "/var/lib/containers/storage"
    assert engine_data_path(info, exists=lambda path: False) == "/"
