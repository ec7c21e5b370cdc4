"""Desired state: what a manifest asks the engine and nginx to run, found by rendering it (pure).

A Desired holds the files a manifest renders to, one ServiceSpec per container role (with the spec hash
the container will carry as a label), and the routing its nginx.conf serves. The planner compares it
with what the engine and nginx report. Variants of a manifest (all traffic on the canary while stable is
replaced, stable only while a canary is replaced) are manifests too, so every intermediate state of a
change is rendered, labelled and confirmed like a final one.
"""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..model.manifest import Manifest
from .templates import generation_of, load_yaml, outputs_for, render
from ..state import APP_TRACKS


@dataclass(frozen=True)
class Route:
    """Where nginx sends unpinned traffic: stable only (canary_weight None), or a canary at a weight."""
    canary_weight: int | None = None

    @property
    def tracks(self) -> tuple[str, ...]:
        """Tracks that may receive traffic (at weight 100 stable stays as the backup server)."""
        return ("stable",) if self.canary_weight is None else ("stable", "canary")

    def describe(self) -> str:
        if self.canary_weight is None:
            return "all traffic to stable"
        if self.canary_weight == 100:
            return "all traffic to canary (stable as backup)"
        return f"stable {100 - self.canary_weight}% / canary {self.canary_weight}%"


@dataclass(frozen=True)
class ServiceSpec:
    service: str  # compose service name
    role: str  # stable | canary | nginx | opa | prometheus
    spec: str  # hash of the rendered definition: the io.swiftdeploy.spec label
    image: str
    version: str | None = None

    def describe(self) -> str:
        return f"{self.service} {self.version}" if self.version else self.service


@dataclass(frozen=True)
class Desired:
    manifest: Manifest
    outputs: Mapping[str, str]
    services: Mapping[str, ServiceSpec]  # role -> spec
    route: Route
    policy_revision: str = ""  # the policy OPA loads in this state (render/policy.py)

    @property
    def generation(self) -> str:
        return generation_of(self.outputs["nginx.conf"])

    @property
    def tracks(self) -> tuple[str, ...]:
        return tuple(track for track in APP_TRACKS if track in self.services)


def desired(manifest: Manifest, templates: str | Path = "templates", policy_revision: str = "") -> Desired:
    return _desired(manifest, str(templates), policy_revision)


@lru_cache(maxsize=64)
def _desired(manifest: Manifest, templates: str, policy_revision: str) -> Desired:
    outputs = {name: render(name, manifest, templates, policy_revision) for name in outputs_for(manifest)}
    compose = load_yaml(outputs[definition_file(manifest)])
    services = {}
    for name, definition in compose["services"].items():
        labels = definition.get("labels") or {}
        role = labels["io.swiftdeploy.role"]
        services[role] = ServiceSpec(service=name, role=role, spec=labels["io.swiftdeploy.spec"],
                                     image=definition["image"], version=labels.get("io.swiftdeploy.version"))
    canary = manifest.services.canary
    route = Route(canary.weight if manifest.services.mode == "canary" else None)
    return Desired(manifest=manifest, outputs=outputs, services=services, route=route, policy_revision=policy_revision)


def definition_file(manifest: Manifest) -> str:
    """The generated file that defines the stack's services for the manifest's runtime."""
    return "stack.yml" if manifest.runtime == "swarm" else "docker-compose.yml"


def with_route(manifest: Manifest, route: Route) -> Manifest:
    """The manifest routing as `route` says, with its tracks otherwise unchanged."""
    services = manifest.services
    if route.canary_weight is None:
        return dataclasses.replace(manifest, services=dataclasses.replace(services, mode="stable"))
    canary = dataclasses.replace(services.canary, weight=route.canary_weight)
    return dataclasses.replace(manifest, services=dataclasses.replace(services, mode="canary", canary=canary))


def carrier(manifest: Manifest) -> Manifest:
    """The state in which the canary track carries all traffic while the stable track is replaced.

    In canary mode that is the manifest's own canary; in stable mode a canary of the new stable release,
    so no request meets a version the manifest does not ask for.
    """
    services = manifest.services
    if services.mode == "canary":
        return with_route(manifest, Route(100))
    canary = dataclasses.replace(services.canary, version=services.version, image=services.image,
                                 build=services.build, weight=100)
    return dataclasses.replace(manifest, services=dataclasses.replace(services, mode="canary", canary=canary))
