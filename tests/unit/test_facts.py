import pytest

from swiftdeploy.errors import SwiftDeployError
from swiftdeploy.facts import FactsError, engine_data_path, host_facts

INFRA_INPUT_KEYS = {"disk_path", "disk_free_bytes", "disk_total_bytes", "load_1m", "load_5m", "load_15m",
                    "cpu_count", "memory_available_bytes", "memory_total_bytes"}


def test_host_facts_have_the_infra_input_shape(tmp_path):
    facts = host_facts(tmp_path)
    assert set(facts) == INFRA_INPUT_KEYS
    assert facts["disk_path"] == str(tmp_path)
    for key in INFRA_INPUT_KEYS - {"disk_path"}:
        assert isinstance(facts[key], (int, float)) and not isinstance(facts[key], bool), key
        assert facts[key] >= 0, key
    assert 0 < facts["disk_free_bytes"] <= facts["disk_total_bytes"]
    assert 0 < facts["memory_available_bytes"] <= facts["memory_total_bytes"]
    assert isinstance(facts["cpu_count"], int) and facts["cpu_count"] >= 1
    assert all(isinstance(facts[key], float) for key in ("load_1m", "load_5m", "load_15m"))


def test_missing_disk_path_names_the_path(tmp_path):
    missing = tmp_path / "var" / "lib" / "docker"
    with pytest.raises(FactsError) as caught:
        host_facts(missing)
    assert isinstance(caught.value, SwiftDeployError)
    assert str(missing) in str(caught.value) and "\n" not in str(caught.value)


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
