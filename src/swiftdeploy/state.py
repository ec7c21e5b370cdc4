"""Observed state: what the engine and nginx say is running. Parsed by pure functions from engine answers."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

PROJECT_LABEL = "io.swiftdeploy.project"
ROLE_LABEL = "io.swiftdeploy.role"
SPEC_LABEL = "io.swiftdeploy.spec"
VERSION_LABEL = "io.swiftdeploy.version"
SECRETS_LABEL = "io.swiftdeploy.secrets"  # a keyed digest of the app's secret values (never the values)
APP_HASH_LABEL = "io.swiftdeploy.app-hash"
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"
APP_TRACKS = ("stable", "canary")  # the roles that run the app (and carry a healthcheck)

_HEALTH_IN_STATUS = re.compile(r"\((healthy|unhealthy|health: starting)\)")


@dataclass(frozen=True)
class Container:
    id: str
    name: str
    role: str | None  # stable | canary | nginx | opa | prometheus; None when nothing says
    spec: str | None  # the io.swiftdeploy.spec label: a hash of the definition it was created from
    version: str | None
    image_id: str
    state: str  # running | exited | created | paused | restarting | dead
    health: str | None  # healthy | unhealthy | starting; None when it has no healthcheck
    created: int = 0
    compose_service: str | None = None
    secrets_digest: str | None = None  # what SECRETS_LABEL said when the container was made

    @property
    def ready(self) -> bool:
        """Running, and healthy if it has a healthcheck: may take traffic."""
        return self.state == "running" and self.health in (None, "healthy")

    @property
    def condition(self) -> str:
        if self.state != "running":
            return self.state
        return self.health or "running"

    def describe(self) -> str:
        version = f" {self.version}" if self.version else ""
        return f"{self.name}{version} ({self.condition})"


@dataclass(frozen=True)
class ImageFact:
    id: str | None  # None: no such image
    app_hash: str | None = None  # which app/ sources it was built from (io.swiftdeploy.app-hash)
    user: str | None = None  # the USER it runs as unless told otherwise ("" or None: root)
    digest: str | None = None  # repository@sha256:... when it came from a registry


@dataclass(frozen=True)
class Observed:
    containers: tuple[Container, ...] = ()
    served_generation: str | None = None  # None: nginx does not answer on the public port
    images: Mapping[str, ImageFact] = field(default_factory=dict)
    unreachable: tuple[str, ...] = ()  # ready tracks nginx fails to reach (it resolved an old address)

    def image_id(self, reference: str) -> str | None:
        fact = self.images.get(reference)
        return fact.id if fact else None


def container_from_list_entry(entry: Mapping, inspect=None) -> Container:
    """A Container from one entry of the engine's container list.

    Docker Engine puts the health in Status ("Up 5 seconds (healthy)"); Podman's compatible API does not,
    so for a running app container (the ones with a healthcheck) without it `inspect(id)` is asked.
    """
    labels = entry.get("Labels") or {}
    role = role_of(labels)
    state = str(entry.get("State") or "unknown").lower()
    status = str(entry.get("Status") or "")
    match = _HEALTH_IN_STATUS.search(status)
    health = {"health: starting": "starting"}.get(match[1], match[1]) if match else None
    if health is None and state == "running" and inspect is not None and role in APP_TRACKS:
        health = health_from_inspect(inspect(entry["Id"]))
    names = entry.get("Names") or [entry.get("Id", "")[:12]]
    return Container(
        id=entry["Id"], name=str(names[0]).lstrip("/"), role=role, spec=labels.get(SPEC_LABEL),
        version=labels.get(VERSION_LABEL), image_id=str(entry.get("ImageID") or ""), state=state, health=health,
        created=int(entry.get("Created") or 0), compose_service=labels.get(COMPOSE_SERVICE_LABEL),
        secrets_digest=labels.get(SECRETS_LABEL))


def health_from_inspect(answer: Mapping | None) -> str | None:
    state = (answer or {}).get("State") or {}
    health = state.get("Health") or state.get("Healthcheck") or {}
    status = health.get("Status") if isinstance(health, Mapping) else None
    return status or None


def role_of(labels: Mapping[str, str]) -> str | None:
    """Our role label; for containers made before it existed, what the compose service name says."""
    if labels.get(ROLE_LABEL):
        return labels[ROLE_LABEL]
    service = labels.get(COMPOSE_SERVICE_LABEL, "")
    if service in ("nginx", "opa", "prometheus"):
        return service
    for track in APP_TRACKS:
        if service.endswith(f"-{track}"):
            return track
    return None
