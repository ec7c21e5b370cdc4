"""Host facts for the infra gate (P-5), in the flat input shape of docs/CONTRACTS.md."""

import os

import psutil

from .errors import SwiftDeployError

PODMAN_ROOTFUL_STORAGE = "/var/lib/containers/storage"


class FactsError(SwiftDeployError):
    """A host fact cannot be measured."""


def host_facts(disk_path: str | os.PathLike) -> dict:
    """Disk space on disk_path (the engine's data path), load averages, CPU count and memory."""
    disk_path = os.fspath(disk_path)
    try:
        disk = psutil.disk_usage(disk_path)
    except FileNotFoundError:
        raise FactsError(f"cannot measure free disk space: {disk_path} does not exist") from None
    except OSError as err:
        raise FactsError(f"cannot measure free disk space on {disk_path}: {err.strerror}") from None
    load_1m, load_5m, load_15m = psutil.getloadavg()
    memory = psutil.virtual_memory()
    return {
        "disk_path": disk_path,
        "disk_free_bytes": disk.free,  # what an unprivileged writer can still use (f_bavail)
        "disk_total_bytes": disk.total,
        "load_1m": load_1m,
        "load_5m": load_5m,
        "load_15m": load_15m,
        # None when unknown: the policy then denies with "not a number" rather than guessing.
        "cpu_count": psutil.cpu_count(logical=True) or os.cpu_count(),
        "memory_available_bytes": memory.available,
        "memory_total_bytes": memory.total,
    }


def engine_data_path(docker_info: dict | None, exists=os.path.isdir) -> str:
    """Where the container engine keeps images and volumes, from its /info answer.

    Docker and Podman's Docker-compatible API report DockerRootDir; Podman's own /libpod/info reports
    store.graphRoot. Without either: Podman's rootful default if it exists here, else "/".
    """
    info = docker_info or {}
    root = info.get("DockerRootDir")
    if isinstance(root, str) and root:
        return root
    store = info.get("store")
    graph_root = store.get("graphRoot") if isinstance(store, dict) else None
    if isinstance(graph_root, str) and graph_root:
        return graph_root
    return PODMAN_ROOTFUL_STORAGE if exists(PODMAN_ROOTFUL_STORAGE) else "/"
