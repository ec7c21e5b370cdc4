"""Swarm as a runtime, without an engine: services read as the planner's Containers (from answers recorded on
Engine 20.10), and the commands the runtime runs, as data."""

from pathlib import Path

import pytest

from swiftdeploy.model.manifest import load_manifest
from swiftdeploy.render.templates import load_yaml, render
from swiftdeploy.engine.runtime.swarm import SwarmRuntime
from swiftdeploy.engine.runtime.swarm_state import service_as_container

ROOT = Path(__file__).resolve().parents[2]


def service(replicas=2, spec="2f252ac5ca54", update=None, force=0):
    answer = {
        "ID": "zrg43f1rea2i6lsgxia76mlti", "CreatedAt": "2026-11-28T15:23:39.462172265Z",
        "Spec": {"Name": "sde2e_app-stable",
                 "Labels": {"com.docker.stack.image": "swift-deploy-1-node:latest",
                            "com.docker.stack.namespace": "sde2e"},
                 "Mode": {"Replicated": {"Replicas": replicas}},
                 "TaskTemplate": {"ContainerSpec": {"Labels": {
                     "com.docker.stack.namespace": "sde2e", "io.swiftdeploy.project": "sde2e",
                     "io.swiftdeploy.role": "stable", "io.swiftdeploy.spec": spec,
                     "io.swiftdeploy.version": "1.0.0"}}, "ForceUpdate": force}}}
    if update:
        answer["UpdateStatus"] = {"State": update, "Message": "update rolled back due to failure or early termination of task 9qr1"}
    return answer


def task(slot, state="running", desired="running", spec="2f252ac5ca54", force=0, err=None, container="21c447f7695e"):
    status = {"Timestamp": "2026-11-28T15:23:51.895150333Z", "State": state, "Message": "started",
              "ContainerStatus": {"ContainerID": container, "PID": 22449, "ExitCode": 0}, "PortStatus": {}}
    if err:
        status["Err"] = err
    return {"ID": f"task{slot}{state}", "ServiceID": "zrg43f1rea2i6lsgxia76mlti", "Slot": slot, "DesiredState": desired,
            "UpdatedAt": "2026-11-28T15:23:51.988119081Z", "Status": status,
            "Spec": {"ContainerSpec": {"Labels": {"io.swiftdeploy.spec": spec}}, "ForceUpdate": force}}


def test_a_service_with_all_its_replicas_running_is_one_ready_container_of_its_role():
    container, problem = service_as_container(service(), [task(1), task(2)], lambda cid: "sha256:abc")
    assert (container.role, container.version, container.spec, container.compose_service) == (
        "stable", "1.0.0", "2f252ac5ca54", "app-stable")
    assert container.ready and container.image_id == "sha256:abc" and problem is None


def test_fewer_running_tasks_than_replicas_is_not_ready():
    container, _ = service_as_container(service(replicas=3), [task(1), task(2), task(3, state="starting")])
    assert container.state == "running" and container.health == "starting" and not container.ready


def test_a_task_of_the_old_definition_still_running_mid_update_is_not_ready():
    tasks = [task(1, spec="new"), task(2, spec="new"), task(1, spec="old")]
    container, _ = service_as_container(service(spec="new", update="updating"), tasks)
    assert not container.ready


def test_a_forced_restart_counts_only_once_its_tasks_run():
    container, _ = service_as_container(service(force=1), [task(1), task(2)])
    assert not container.ready
    assert service_as_container(service(force=1), [task(1, force=1), task(2, force=1)])[0].ready


def test_a_rolled_back_update_is_unhealthy_and_says_why():
    container, problem = service_as_container(service(update="rollback_completed"), [task(1), task(2)])
    assert container.health == "unhealthy" and not container.ready
    assert problem.startswith("its update rollback completed: update rolled back due to failure")


def test_a_service_whose_tasks_only_fail_is_exited_with_the_tasks_error():
    tasks = [task(1, state="rejected", err="No such image: swift-deploy-1-node:9.9"),
             task(1, state="rejected", desired="shutdown", err="No such image: swift-deploy-1-node:9.9")]
    container, problem = service_as_container(service(replicas=1), tasks)
    assert container.state == "exited" and problem == "its task rejected: No such image: swift-deploy-1-node:9.9"


@pytest.fixture
def runtime(tmp_path):
    manifest = load_manifest(ROOT / "manifest.yaml")
    import dataclasses

    manifest = dataclasses.replace(manifest, runtime="swarm")
    (tmp_path / "stack.yml").write_text(render("stack.yml", manifest, ROOT / "templates"))
    return SwarmRuntime(tmp_path / "stack.yml", "sde2e")


def test_the_stack_is_deployed_without_asking_a_registry(runtime, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: "/usr/bin/docker")
    assert runtime.deploy_argv(Path("generated/stack.yml")) == [
        "/usr/bin/docker", "stack", "deploy", "--resolve-image", "never", "--compose-file", "generated/stack.yml", "sde2e"]
    assert runtime.force_argv("app-stable") == ["/usr/bin/docker", "service", "update", "--force", "--detach",
                                                "sde2e_app-stable"]


def test_a_step_deploys_only_its_services_with_the_networks_and_volumes_they_use(runtime):
    partial = load_yaml(runtime.partial_file(["nginx"]))
    whole = load_yaml(runtime.stack_file.read_text())
    assert list(partial["services"]) == ["nginx"] and partial["services"]["nginx"] == whole["services"]["nginx"]
    assert partial["networks"] == whole["networks"] and partial["volumes"] == whole["volumes"]
    assert partial["version"] == "3.8"


def test_a_missing_docker_cli_is_one_line(runtime, monkeypatch):
    from swiftdeploy.engine.runtime.swarm import SwarmError

    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(SwarmError, match="^runtime: swarm needs the docker CLI"):
        runtime.deploy_argv(Path("stack.yml"))


class GossipingSwarm(SwarmRuntime):
    """The API's running tasks of a track, and what nginx's node resolves, answer by answer (gossip lags)."""

    def __init__(self, resolved_answers):
        super().__init__(Path("stack.yml"), "sde2e")
        self.resolved_answers, self.asked = list(resolved_answers), 0

    def _nginx_running(self):
        return True

    def _task_addresses(self, track):
        return {"10.0.1.7", "10.0.1.8"}

    def _resolved_on_nginx(self, track):
        self.asked += 1
        return self.resolved_answers.pop(0) if len(self.resolved_answers) > 1 else self.resolved_answers[0]


def test_a_step_waits_until_nginx_node_resolves_exactly_the_running_tasks():
    runtime = GossipingSwarm([{"10.0.1.5", "10.0.1.7"}, {"10.0.1.7"}, {"10.0.1.7", "10.0.1.8"}])
    runtime.await_resolved(["app-stable"], seconds=10)
    assert runtime.asked == 3  # a stopped task still listed, then a new one not yet: both waited out


def test_a_resolver_that_never_catches_up_fails_the_step_naming_both_sides():
    runtime = GossipingSwarm([{"10.0.1.5", "10.0.1.7"}])
    with pytest.raises(Exception) as failure:
        runtime.await_resolved(["app-stable"], seconds=1)
    assert str(failure.value) == ("nginx's node still resolves tasks.app-stable to 10.0.1.5, 10.0.1.7 1 s after Swarm "
                                  "ran its tasks at 10.0.1.7, 10.0.1.8")
