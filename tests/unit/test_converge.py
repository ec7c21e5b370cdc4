"""Operations converge from any state: killed after every step (and inside steps), then `rollback`, or the
same command again. A fake engine and nginx (fakestack.py) stand in for the real ones, which cannot be
stopped between two API calls on demand; the e2e tests do the same with SIGKILL on the real engine.
"""

import json

import pytest

from fakestack import FakeOpa, FakeProxy, FakeRuntime, FakeWorld, Killed
from projectkit import copy_project
from swiftdeploy.converge import operations
from swiftdeploy.errors import SwiftDeployError
from swiftdeploy.model.manifest import load_manifest
from swiftdeploy.model.manifest_edit import set_fields
from swiftdeploy.converge.plan import plan
from swiftdeploy.converge.stack import Stack

QUIET = {"say": lambda line: None, "ask_gate": lambda domain: None}


def fake_stack(root, world) -> Stack:
    """The stack as a new process sees it: only the files on disk and what the engine says."""
    generated = root / "generated"
    return Stack(root, load_manifest(root / "manifest.yaml"), runtime=FakeRuntime(world, generated / "docker-compose.yml"),
                 proxy=FakeProxy(world, generated / "nginx.conf"), opa_client=FakeOpa(world))


def operate(root, world, name, **options):
    stack = fake_stack(root, world)
    return getattr(operations, name.replace(":", "_"))(stack, checkpoint=world.tick, **QUIET, **options)


def new_project(tmp_path, weight=50):
    root = copy_project(tmp_path)
    text = (root / "manifest.yaml").read_text().replace(
        "  mode: stable\n", f'  mode: stable\n  canary:\n    version: "1.1.0"\n    weight: {weight}\n')
    (root / "manifest.yaml").write_text(text)
    return root


def edit_manifest(root, changes):
    path = root / "manifest.yaml"
    path.write_text(set_fields(path.read_text(), changes))


# Each scenario: how to reach the starting state, the operation, and what it promises.
def deployed(root, world):
    operate(root, world, "deploy")


def in_canary_mode(root, world):
    deployed(root, world)
    operate(root, world, "promote:canary")


def deployed_then_edited(root, world):
    deployed(root, world)
    edit_manifest(root, {"services.version": "1.0.1"})  # a new stable version by hand: deploy replaces stable


SCENARIOS = {
    "deploy (cold)": (lambda root, world: None, "deploy", ("stable", "1.0.0")),
    "deploy (new stable version)": (deployed_then_edited, "deploy", ("stable", "1.0.1")),
    "promote:canary": (deployed, "promote:canary", ("canary", "1.0.0")),
    "promote:stable": (in_canary_mode, "promote:stable", ("stable", "1.1.0")),
    "rollback": (in_canary_mode, "rollback", ("stable", "1.0.0")),
}
ROLLBACK_TO = {"deploy (cold)": None, "deploy (new stable version)": "1.0.0", "promote:canary": "1.0.0",
               "promote:stable": "1.0.0", "rollback": "1.0.0"}


def assert_converged(root, world, mode, version):
    """The stack is exactly what the manifest says, nginx routes only to ready containers, the journal is empty."""
    stack = fake_stack(root, world)
    services = stack.manifest.services
    assert (services.mode, services.version) == (mode, version)
    desired = stack.desired()
    containers = list(world.containers.values())
    assert sorted(c.role for c in containers) == sorted(["nginx", "opa", *desired.tracks]), containers
    for container in containers:
        spec = desired.services[container.role]
        assert container.ready and container.spec == spec.spec and container.version == spec.version, container
    assert world.served is not None and stack.proxy.served_generation() == desired.generation
    assert not (root / ".swiftdeploy" / "journal.jsonl").exists(), "the journal is empty"
    observed = stack.observe([desired.services[t].image for t in desired.tracks])
    assert plan(desired, observed, stack.desired) == [], "nothing is left to do"
    world.check_routing("the end")
    assert world.violations == []


def ticks_of(tmp_path, setup, name) -> int:
    root, world = new_project(tmp_path / "count"), FakeWorld()
    setup(root, world)
    before = world.ticks
    operate(root, world, name)
    return world.ticks - before


def killed_run(tmp_path, setup, name, at):
    root, world = new_project(tmp_path), FakeWorld()
    setup(root, world)
    world.kill_at = world.ticks + at
    with pytest.raises(Killed):
        operate(root, world, name)
    return root, world


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_each_operation_runs_through_and_converges(tmp_path, scenario):
    setup, name, (mode, version) = SCENARIOS[scenario]
    root, world = new_project(tmp_path), FakeWorld()
    setup(root, world)
    operate(root, world, name)
    assert_converged(root, world, mode, version)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_killed_at_every_point_then_rerun_finishes_the_operation(tmp_path, scenario):
    setup, name, (mode, version) = SCENARIOS[scenario]
    total = ticks_of(tmp_path, setup, name)
    assert total >= 3
    for at in range(1, total + 1):
        root, world = killed_run(tmp_path / f"kill{at}", setup, name, at)
        operate(root, world, name)
        assert_converged(root, world, mode, version)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_killed_at_every_point_then_rollback_returns_to_the_last_confirmed_release(tmp_path, scenario):
    setup, name, _promise = SCENARIOS[scenario]
    total = ticks_of(tmp_path, setup, name)
    for at in range(1, total + 1):
        root, world = killed_run(tmp_path / f"kill{at}", setup, name, at)
        last = fake_stack(root, world).releases.last()
        if at < total:  # the release record is the last thing a run does: killed before it, nothing new is confirmed
            assert (last.version if last else None) == ROLLBACK_TO[scenario]
        if last is None:  # nothing was ever confirmed: rollback returns to the manifest's stable, if anything runs
            if not any(c.role in ("stable", "canary") for c in world.containers.values()):
                with pytest.raises(SwiftDeployError, match="nothing to roll back"):
                    operate(root, world, "rollback")
                continue
        try:
            operate(root, world, "rollback")
        except SwiftDeployError as err:
            assert "nothing to roll back" in str(err)
        assert_converged(root, world, "stable", last.version if last else "1.0.0")


def test_the_next_run_waits_for_the_engine_only_when_the_killed_one_was_changing_containers(tmp_path):
    # a kill inside compose or a removal may leave a stop under way in the engine: the next run waits for it;
    # a kill between steps, at a gate or in a reload leaves nothing there, and the next run goes on at once
    total = ticks_of(tmp_path, in_canary_mode, "promote:stable")
    waited, went_on = [], []
    for at in range(1, total):
        root, world = killed_run(tmp_path / f"kill{at}", in_canary_mode, "promote:stable", at)
        # the fake engine's own ticks, not the checkpoints after a step (a step's description says why: ": ")
        inside_a_change = (world.killed_in.startswith(("compose ", "remove ", "pull", "build", "nginx drain"))
                           and ": " not in world.killed_in)
        operate(root, world, "rollback")
        (waited if world.settled else went_on).append(world.killed_in)
        assert bool(world.settled) == inside_a_change, (at, world.killed_in)
    assert waited and went_on, (waited, went_on)


def test_an_interrupted_operation_is_named_once_and_recorded_in_the_history(tmp_path):
    root, world = killed_run(tmp_path, in_canary_mode, "promote:stable", at=3)
    said = []
    operations.rollback(fake_stack(root, world), say=said.append, ask_gate=lambda d: None)
    notes = [line for line in said if line.startswith("note:")]
    assert len(notes) == 1 and "promote:stable" in notes[0] and "interrupted after step" in notes[0]
    [event] = fake_stack(root, world).history.events("interrupted")
    assert event["operation"] == "promote:stable" and event["taken_over_by"] == "rollback"


def test_a_failed_promotion_restores_the_previous_state_in_safe_order(tmp_path):
    root, world = new_project(tmp_path), FakeWorld()
    in_canary_mode(root, world)
    world.unhealthy_versions.add("1.1.0")  # the new stable will not become healthy
    with pytest.raises(SwiftDeployError, match="unhealthy"):
        operate(root, world, "promote:stable")
    assert_converged(root, world, "canary", "1.0.0")


def test_a_failed_restore_leaves_the_journal_and_the_next_command_converges(tmp_path):
    root, world = new_project(tmp_path), FakeWorld()
    in_canary_mode(root, world)
    world.unhealthy_versions.update({"1.1.0", "1.0.0"})  # neither the new nor the old stable starts
    with pytest.raises(SwiftDeployError, match="restoring the previous state also failed"):
        operate(root, world, "promote:stable")
    assert (root / ".swiftdeploy" / "journal.jsonl").exists()
    assert world.violations == [], "nginx never routed to a container that could not answer"
    world.unhealthy_versions.clear()
    operate(root, world, "rollback")
    assert_converged(root, world, "stable", "1.0.0")


def test_an_orphan_canary_is_removed_by_deploy(tmp_path):
    root, world = new_project(tmp_path), FakeWorld()
    in_canary_mode(root, world)
    edit_manifest(root, {"services.mode": "stable"})  # the canary is now an orphan
    operate(root, world, "deploy")
    assert_converged(root, world, "stable", "1.0.0")


def test_promote_canary_at_weight_1_is_confirmed(tmp_path):
    root, world = new_project(tmp_path, weight=1), FakeWorld()
    deployed(root, world)
    operate(root, world, "promote:canary")
    assert_converged(root, world, "canary", "1.0.0")


def test_a_stopped_stable_is_started_and_nginx_resolves_its_new_address(tmp_path):
    import dataclasses

    root, world = new_project(tmp_path), FakeWorld()
    deployed(root, world)
    [stable] = [c for c in world.containers.values() if c.role == "stable"]
    world.containers[stable.id] = dataclasses.replace(stable, state="exited", health=None)
    outcome = operate(root, world, "deploy")
    world.violations.clear()  # requests failed before the deploy: that is the broken state it starts from
    assert any(step.startswith("reload nginx") and "to resolve stable again" in step for step in outcome.steps)
    assert_converged(root, world, "stable", "1.0.0")


def test_a_container_restarted_by_hand_is_found_unreachable_and_resolved_again(tmp_path):
    root, world = new_project(tmp_path), FakeWorld()
    deployed(root, world)
    [stable] = [c for c in world.containers.values() if c.role == "stable"]
    world.started[stable.id] = world.ticks + 1  # restarted after nginx loaded its config: a new address
    world.ticks += 1
    outcome = operate(root, world, "deploy")
    world.violations.clear()  # requests failed before the deploy: that is the broken state it starts from
    assert outcome.steps == [f"reload nginx: all traffic to stable (config {fake_stack(root, world).desired().generation}"
                             ", to resolve stable again)"]
    assert_converged(root, world, "stable", "1.0.0")


def test_rollback_returns_to_the_release_image_even_after_its_tag_was_rebuilt(tmp_path):
    from fakestack import APP_IMAGE
    from swiftdeploy.state import ImageFact

    root, world = new_project(tmp_path), FakeWorld()
    deployed(root, world)
    release_image = world.images[APP_IMAGE].id
    world.images[APP_IMAGE] = ImageFact(id="sha256:" + "e" * 64, app_hash="rebuilt")  # `doit build` after a change
    operate(root, world, "promote:canary")
    [canary] = [c for c in world.containers.values() if c.role == "canary"]
    assert canary.image_id == "sha256:" + "e" * 64, "the canary runs the new build"
    world.kill_at = world.ticks + 5  # promote:stable killed once the new stable runs
    with pytest.raises(Killed):
        operate(root, world, "promote:stable")
    operate(root, world, "rollback")
    [stable] = [c for c in world.containers.values() if c.role == "stable"]
    assert stable.image_id == release_image, "the stable track runs the release's own image again, no build"
    manifest = fake_stack(root, world).manifest.services
    assert manifest.image == f"swift-deploy-1-node:release-1.0.0-{release_image.split(':')[1][:12]}"
    assert_converged(root, world, "stable", "1.0.0")


def test_the_last_five_releases_keep_their_image_tags(tmp_path):
    root, world = new_project(tmp_path), FakeWorld()
    deployed(root, world)
    for patch in range(1, 7):
        edit_manifest(root, {"services.version": f"1.0.{patch}"})
        operate(root, world, "deploy")
    releases = fake_stack(root, world).releases.all()
    assert [r.version for r in releases] == ["1.0.2", "1.0.3", "1.0.4", "1.0.5", "1.0.6"]
    assert set(world.tags) == {r.tag for r in releases}, "older release tags were removed"


# -- the policy as part of the desired state ----------------------------------------------------------------

def edit_policy_data(root, **canary):
    path = root / "policies" / "data.json"
    data = json.loads(path.read_text())
    data["canary"].update(canary)
    path.write_text(json.dumps(data, indent=2) + "\n")


def served_policy(root, world):
    return fake_stack(root, world).opa().served_revision()


def deployed_then_policy_edited(root, world):
    deployed(root, world)
    edit_policy_data(root, max_error_rate=0.02)


def test_a_policy_edit_is_deployed_into_opa_checked_once_and_confirmed(tmp_path):
    root, world = new_project(tmp_path), FakeWorld()
    deployed_then_policy_edited(root, world)
    before = served_policy(root, world)
    revision = fake_stack(root, world).policy_revision
    assert before != revision
    operate(root, world, "deploy")
    assert served_policy(root, world) == revision
    assert world.policy_checks[-1] == revision and world.policy_checks.count(revision) == 1
    assert_converged(root, world, "stable", "1.0.0")
    operate(root, world, "deploy")  # nothing to do: the checked revision is not checked again
    assert world.policy_checks.count(revision) == 1


def test_killed_at_every_point_of_a_policy_deploy_then_deploy_again_serves_the_new_policy(tmp_path):
    total = ticks_of(tmp_path, deployed_then_policy_edited, "deploy")
    assert total >= 2
    for at in range(1, total + 1):
        root, world = killed_run(tmp_path / f"kill{at}", deployed_then_policy_edited, "deploy", at)
        operate(root, world, "deploy")
        assert served_policy(root, world) == fake_stack(root, world).policy_revision
        assert_converged(root, world, "stable", "1.0.0")


def test_a_policy_that_does_not_compile_changes_nothing_and_opa_keeps_deciding_with_the_old_one(tmp_path):
    root, world = new_project(tmp_path), FakeWorld()
    deployed(root, world)
    served, containers = served_policy(root, world), dict(world.containers)
    (root / "policies" / "canary.rego").write_text((root / "policies" / "canary.rego").read_text() + "broken if {\n")
    revision = fake_stack(root, world).policy_revision
    world.policy_problems[revision] = "policies/canary.rego:400: rego_parse_error: unexpected eof token"
    with pytest.raises(SwiftDeployError) as failed:
        operate(root, world, "deploy")
    assert str(failed.value) == (f"policies/ does not compile (revision {revision}), so OPA keeps the policy it "
                                 "serves: policies/canary.rego:400: rego_parse_error: unexpected eof token")
    assert world.containers == containers and served_policy(root, world) == served
    assert not (root / ".swiftdeploy" / "journal.jsonl").exists()


def test_a_promotion_decides_under_the_deployed_policy_and_plan_still_shows_the_edit(tmp_path):
    root, world = new_project(tmp_path), FakeWorld()
    deployed_then_policy_edited(root, world)
    served = served_policy(root, world)
    operate(root, world, "promote:canary")
    assert served_policy(root, world) == served  # only deploy replaces OPA
    stack = fake_stack(root, world)
    desired = stack.desired()
    observed = stack.observe([desired.services[t].image for t in desired.tracks])
    steps = plan(desired, observed, stack.desired, strict=True)
    assert [step.describe() for step in steps] == [
        f"replace p-opa-1 policy {served} (running) with opa policy {stack.policy_revision}"]
