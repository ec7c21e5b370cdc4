"""A user's own service converges from any state like the bundled app: its stable image pulled (build: false),
its canary built from the user's Dockerfile, each operation killed at every point and run again, or rolled
back. The fake engine (fakestack.py) counts pulls and builds, so "a rollback never pulls or builds" is checked
at every point too."""

import pytest

from fakestack import FakeWorld, Killed
from projectkit import copy_project
from swiftdeploy.errors import SwiftDeployError
from test_converge import assert_converged, operate

STABLE_IMAGE = "registry.example:5000/team/site:1"
CANARY_IMAGE = "local/site:2"


def own_project(tmp_path):
    root = copy_project(tmp_path)
    text = (root / "manifest.yaml").read_text()
    text = text.replace("  image: swift-deploy-1-node:latest\n  port: 3000\n",
                        f"  image: {STABLE_IMAGE}\n  build: false\n  port: 8000\n  health: {{path: /up}}\n")
    text = text.replace("  mode: stable\n", f'  mode: stable\n  canary:\n    version: "1.1.0"\n    image: {CANARY_IMAGE}\n'
                                            "    build: {context: site}\n    weight: 50\n")
    (root / "manifest.yaml").write_text(text)
    (root / "site").mkdir()
    (root / "site" / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    return root


def deployed(root, world):
    operate(root, world, "deploy")


def in_canary_mode(root, world):
    deployed(root, world)
    operate(root, world, "promote:canary")


SCENARIOS = {
    "deploy (cold)": (lambda root, world: None, "deploy", ("stable", "1.0.0")),
    "promote:canary": (deployed, "promote:canary", ("canary", "1.0.0")),
    "promote:stable": (in_canary_mode, "promote:stable", ("stable", "1.1.0")),
    "rollback": (in_canary_mode, "rollback", ("stable", "1.0.0")),
}


def fetches(world) -> list[str]:
    return world.fetched


def test_deploy_pulls_the_stable_image_and_a_canary_start_builds_the_users_context(tmp_path):
    root, world = own_project(tmp_path), FakeWorld()
    deployed(root, world)
    assert fetches(world) == ["pull"] and STABLE_IMAGE in world.images
    operate(root, world, "promote:canary")
    assert fetches(world) == ["pull", "build"] and world.images[CANARY_IMAGE].app_hash is not None
    operate(root, world, "rollback")
    operate(root, world, "promote:canary")  # the same inputs: built once
    assert fetches(world) == ["pull", "build"]
    assert_converged(root, world, "canary", "1.0.0")


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_killed_at_every_point_then_rerun_finishes_and_rollback_fetches_nothing(tmp_path, scenario):
    setup, name, (mode, version) = SCENARIOS[scenario]
    counting_root, counting = own_project(tmp_path / "count"), FakeWorld()
    setup(counting_root, counting)
    before = counting.ticks
    operate(counting_root, counting, name)
    total = counting.ticks - before
    for at in range(1, total + 1):
        for then in ("again", "rollback"):
            root, world = own_project(tmp_path / f"kill{at}{then}"), FakeWorld()
            setup(root, world)
            world.kill_at = world.ticks + at
            with pytest.raises(Killed):
                operate(root, world, name)
            if then == "again":
                operate(root, world, name)
                assert_converged(root, world, mode, version)
                continue
            fetched = len(fetches(world))
            try:
                operate(root, world, "rollback")
            except SwiftDeployError as err:
                assert "nothing to roll back" in str(err)
                continue
            assert len(fetches(world)) == fetched, f"rollback after a kill at {at} pulled or built"
            assert fake_version(root, world) in ("1.0.0", "1.1.0")


def fake_version(root, world):
    from test_converge import fake_stack

    return fake_stack(root, world).manifest.services.version


def test_an_image_that_runs_as_root_is_refused_before_it_starts_unless_the_manifest_allows_it(tmp_path):
    root, world = own_project(tmp_path), FakeWorld()
    world.image_user = ""  # no USER in the image: root
    with pytest.raises(SwiftDeployError, match=r"image registry.example:5000/team/site:1 runs as root \(its USER is unset\)"):
        operate(root, world, "deploy")
    assert not any(c.role == "stable" for c in world.containers.values())
    text = (root / "manifest.yaml").read_text().replace("  build: false\n", "  build: false\n  allow_root: true\n")
    (root / "manifest.yaml").write_text(text)
    operate(root, world, "deploy")
    assert_converged(root, world, "stable", "1.0.0")


def test_a_rotated_secret_is_a_new_container_through_the_canary_safe_replacement(tmp_path):
    root, world = own_project(tmp_path), FakeWorld()
    text = (root / "manifest.yaml").read_text().replace("  build: false\n", "  build: false\n  secrets: [DB_PASSWORD]\n")
    (root / "manifest.yaml").write_text(text)
    secret = root / ".swiftdeploy" / "secrets" / "DB_PASSWORD"
    secret.parent.mkdir(parents=True)
    secret.write_text("one")
    secret.chmod(0o600)
    world.secrets_digest = "digest-one"
    deployed(root, world)
    [before] = [c.id for c in world.containers.values() if c.role == "stable"]
    operate(root, world, "deploy")
    assert [c.id for c in world.containers.values() if c.role == "stable"] == [before]  # same values: nothing
    world.secrets_digest = "digest-two"  # the file changed: compose would fill in another digest
    from test_converge import fake_stack
    from swiftdeploy.converge.plan import drift

    stack = fake_stack(root, world)
    said = drift(stack.desired(), stack.observe([STABLE_IMAGE]), stack.desired, "digest-two")
    assert any("it started with other secret values" in line for line in said), said
    operate(root, world, "deploy")
    [after] = [c for c in world.containers.values() if c.role == "stable"]
    assert after.id != before and after.secrets_digest == "digest-two"
    assert world.violations == []  # traffic moved to a carrier first: nothing routed to a container going away
    assert_converged(root, world, "stable", "1.0.0")
