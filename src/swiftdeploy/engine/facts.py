"""Where the engine keeps its data (the disk the infra gate measures), and the error for facts that cannot be
measured. The measuring itself happens on the engine's host: probe.py."""

import os

from ..errors import SwiftDeployError

PODMAN_ROOTFUL_STORAGE = "/var/lib/containers/storage"


class FactsError(SwiftDeployError):
    """A host fact cannot be measured."""


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
