"""The planner on hand-made observations: which steps, in which order, and what `plan`/`status` call drift."""

import dataclasses

import pytest

from projectkit import ROOT
from swiftdeploy.render.desired import carrier, desired, with_route, Route
from swiftdeploy.model.manifest import BUNDLED, load_manifest
from swiftdeploy.converge.plan import (AskGate, BuildImages, PlanError, RemoveContainers, Reroute, StartService, StartStack,
                              describe, drift, plan)
from swiftdeploy.state import Container, ImageFact, Observed

IMAGE = "swift-deploy-1-node:latest"
IMAGE_ID = "sha256:" + "a" * 64


def render(manifest):
    return desired(manifest, ROOT / "templates")


@pytest.fixture
def stable():
    manifest = load_manifest(ROOT / "manifest.yaml")
    canary = dataclasses.replace(manifest.services.canary, version="1.1.0", weight=50)
    return dataclasses.replace(manifest, services=dataclasses.replace(manifest.services, canary=canary))


def canary_mode(manifest):
    return with_route(manifest, Route(manifest.services.canary.weight))


def running(state, role, name=None, version=None, image_id=IMAGE_ID, health="healthy", condition="running"):
    """The container a rendered state asks for, as the engine would list it."""
    spec = state.services[role]
    return Container(id=f"id-{name or spec.service}-{spec.spec}", name=name or f"p-{spec.service}-1", role=role,
                     spec=spec.spec, version=version or spec.version, image_id=image_id, state=condition,
                     health=health if role in ("stable", "canary") else None, compose_service=spec.service)


def observed(state, *containers, served=None, image_id=IMAGE_ID, app_hash="h1"):
    return Observed(containers=tuple(containers), served_generation=served or state.generation,
                    images={IMAGE: ImageFact(id=image_id, app_hash=app_hash)})


def steps_of(target, seen, **options):
    return plan(target, seen, render, **options)


def test_a_stack_as_the_manifest_says_needs_nothing(stable):
    target = render(stable)
    seen = observed(target, running(target, "stable"), running(target, "nginx"), running(target, "opa"))
    assert steps_of(target, seen, gates=("infra",), builds={BUNDLED: "h1"}, strict=True) == []
    assert drift(target, seen, render) == []


def test_a_cold_stack_starts_opa_asks_the_gate_builds_then_starts_the_rest(stable):
    target = render(stable)
    steps = steps_of(target, Observed(images={IMAGE: ImageFact(id=None)}), gates=("infra",), builds={BUNDLED: "h1"},
                     strict=True)
    assert [type(s) for s in steps] == [StartService, AskGate, BuildImages, StartStack]
    assert steps[0].role == "opa" and steps[3].services == ("app-stable", "nginx")


def test_promote_stable_moves_traffic_to_the_canary_replaces_stable_then_drops_the_canary(stable):
    """Before traffic returns to the new stable, nginx resolves it once under the carrier's config: the old
    workers of the reload that follows still take a few requests, and they must reach the new container too."""
    now = render(canary_mode(stable))
    services = stable.services
    promoted = dataclasses.replace(stable, services=dataclasses.replace(services, version="1.1.0"))
    seen = observed(now, running(now, "stable"), running(now, "canary"), running(now, "nginx"), running(now, "opa"))
    steps = steps_of(render(promoted), seen, gates=("canary",))
    assert describe(steps) == [
        "ask OPA: the canary gate",
        f"reload nginx: all traffic to canary (stable as backup) (config {render(carrier(promoted)).generation})",
        "replace p-app-stable-1 1.0.0 (healthy) with app-stable 1.1.0",
        f"reload nginx: all traffic to canary (stable as backup) (config {render(carrier(promoted)).generation}, "
        "to resolve stable again)",
        f"reload nginx: all traffic to stable (config {render(promoted).generation})",
        "remove p-app-canary-1 1.1.0 (healthy): the manifest is in stable mode",
    ]
    assert steps[1].expect == (("stable", "1.0.0"), ("canary", "1.1.0"))
    assert steps[3].expect == (("stable", "1.1.0"), ("canary", "1.1.0")), "the resolve is confirmed on the new stable"
    assert steps[4].expect == (("stable", "1.1.0"),)


def test_rollback_from_a_half_done_promotion_never_sends_more_traffic_to_the_new_version(stable):
    """stable was already replaced by 1.1.0 and carries the traffic; the release to return to is 1.0.0."""
    new = dataclasses.replace(stable, services=dataclasses.replace(stable.services, version="1.1.0"))
    half = render(new)
    seen = observed(half, running(half, "stable"), running(render(canary_mode(stable)), "canary"),
                    running(half, "nginx"), running(half, "opa"))
    steps = steps_of(render(stable), seen)
    kinds = [(type(s).__name__, getattr(s, "role", None)) for s in steps]
    assert kinds == [("StartService", "canary"), ("Reroute", None), ("StartService", "stable"), ("Reroute", None),
                     ("Reroute", None), ("RemoveContainers", None)]
    assert steps[0].spec.version == "1.0.0", "the canary carries the release rolled back to, not the new one"
    assert steps[1].expect == (("stable", "1.1.0"), ("canary", "1.0.0"))


def test_a_routed_canary_of_the_wrong_version_is_unrouted_before_it_is_replaced(stable):
    target = render(canary_mode(stable))
    old = render(canary_mode(dataclasses.replace(stable, services=dataclasses.replace(
        stable.services, canary=dataclasses.replace(stable.services.canary, version="0.9.0")))))
    seen = observed(target, running(target, "stable"), running(old, "canary"), running(target, "nginx"),
                    running(target, "opa"))
    steps = steps_of(target, seen)
    assert [type(s) for s in steps] == [Reroute, StartService, Reroute]
    assert steps[0].target.route == Route(None) and steps[1].replacing.version == "0.9.0"


def test_an_unknown_served_config_counts_as_routing_everywhere(stable):
    target = render(stable)
    new = dataclasses.replace(stable, services=dataclasses.replace(stable.services, version="1.0.1"))
    seen = observed(target, running(target, "stable"), running(target, "nginx"), running(target, "opa"),
                    served="hand-edited")
    steps = steps_of(render(new), seen)
    assert isinstance(steps[0], StartService) and steps[0].role == "canary", "stable is assumed routed: carry first"


def test_a_stopped_stable_with_nothing_routed_to_it_is_started_in_place(stable):
    target = render(stable)
    seen = observed(target, running(target, "stable", health=None, condition="exited"), running(target, "nginx"),
                    running(target, "opa"))
    steps = steps_of(target, seen)
    assert describe(steps) == ["start app-stable 1.0.0",
                               f"reload nginx: all traffic to stable (config {target.generation}, to resolve stable again)"]
    assert drift(target, seen, render) == ["p-app-stable-1 1.0.0 (exited): stopped"]


def test_a_ready_track_nginx_cannot_reach_is_resolved_again(stable):
    """Restarted by hand, the container has a new address; nginx still sends to the old one."""
    target = render(stable)
    seen = dataclasses.replace(observed(target, running(target, "stable"), running(target, "nginx"),
                                        running(target, "opa")), unreachable=("stable",))
    steps = steps_of(target, seen)
    assert [type(s) for s in steps] == [Reroute] and steps[0].resolve == ("stable",)
    assert "nginx cannot reach the stable track" in drift(target, seen, render)[0]


def test_orphans_and_a_canary_in_stable_mode_are_drift_and_removed_last(stable):
    target = render(stable)
    orphan = dataclasses.replace(running(render(canary_mode(stable)), "canary", name="hand-made"), compose_service=None)
    unlabelled = Container(id="x", name="leftover", role=None, spec=None, version=None, image_id="", state="exited",
                           health=None)
    seen = observed(target, running(target, "stable"), running(target, "nginx"), running(target, "opa"), orphan,
                    unlabelled)
    steps = steps_of(target, seen)
    assert [type(s) for s in steps] == [RemoveContainers, RemoveContainers]
    lines = drift(target, seen, render)
    assert "hand-made 1.1.0 (healthy): not in the manifest (stable mode)" in lines
    assert "leftover (exited): not part of the stack the manifest describes (an orphan)" in lines


def test_a_rebuilt_image_is_drift_for_deploy_but_not_for_a_promotion(stable):
    target = render(stable)
    seen = observed(target, running(target, "stable", image_id="sha256:old"), running(target, "nginx"),
                    running(target, "opa"))
    assert steps_of(target, seen) == [], "a promotion or rollback leaves the running image alone"
    assert [type(s) for s in steps_of(target, seen, strict=True)][:3] == [StartService, Reroute, StartService]
    assert drift(target, seen, render) == [f"p-app-stable-1 1.0.0 (healthy): runs another image than {IMAGE} is now"]


def test_changed_app_sources_plan_a_build_behind_the_infra_gate(stable):
    target = render(stable)
    seen = observed(target, running(target, "stable"), running(target, "nginx"), running(target, "opa"))
    steps = steps_of(target, seen, gates=("infra",), builds={BUNDLED: "h2"}, strict=True)
    assert [type(s) for s in steps[:3]] == [AskGate, BuildImages, StartService]


def test_a_missing_image_that_is_not_built_is_one_error(stable):
    target = render(stable)
    with pytest.raises(PlanError, match=f"image {IMAGE} is not present here"):
        steps_of(target, Observed(images={IMAGE: ImageFact(id=None)}))


def test_compose_s_temporary_container_from_a_killed_recreate_is_removed_before_the_track_is_replaced(stable):
    """Seen on Docker Engine: promote:stable SIGKILLed while compose recreated stable left its temporary
    container (`<id>_<name>`, the new version, created but not started) beside the old one; compose then
    failed to name the next new container ("Conflict. The container name ... is already in use")."""
    now = render(canary_mode(stable))
    promoted = dataclasses.replace(stable, services=dataclasses.replace(stable.services, version="1.1.0"))
    half_made = running(render(promoted), "stable", name="edaf1be984d7_p-app-stable-1", condition="created",
                        health=None)
    seen = observed(now, running(now, "stable"), half_made, running(now, "canary"), running(now, "nginx"),
                    running(now, "opa"))
    steps = describe(steps_of(render(promoted), seen, gates=("canary",)))
    removal = "remove edaf1be984d7_p-app-stable-1 1.1.0 (created): a second stable container, left by an interrupted change"
    assert removal in steps
    assert steps.index(removal) < steps.index("replace p-app-stable-1 1.0.0 (healthy) with app-stable 1.1.0")
