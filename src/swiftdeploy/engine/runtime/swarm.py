"""The stack as a Docker Swarm stack, driven from a manager: `docker stack deploy` of generated/stack.yml (or of
the services one step changes), services and tasks read through the engine API.

Where Swarm differs from Compose the difference stays here: a role is a service (see swarm_state), a step
updates a service in place (Swarm rolls its tasks, start-first, and rolls back a failed update), and a track's
metrics are the sum over all its tasks, read across the overlay from inside one of them.
"""

import dataclasses
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import api as engine
from ...commands import run
from ...errors import SwiftDeployError
from ...files import write_atomic
from ...render.templates import load_yaml
from ...state import APP_TRACKS, Container
from . import swarm_images, swarm_registry
from .app_inputs import HEALTH_PROBE, AppInputs
from .images import EngineImages, repository_digest
from .output import EngineOutput
from .swarm_state import STACK_LABEL, service_as_container

SERVICE_LABEL = "com.docker.swarm.service.id"
# Runs in an app task (its image has Python): every healthy task of `tasks.<service>` on the overlay, any node.
SCRAPE_EVERY_TASK = """\
import http.client, os, socket, sys
port = int(os.environ.get("APP_PORT", "3000"))
addresses = sorted({a[4][0] for a in socket.getaddrinfo("tasks." + sys.argv[1], port, socket.AF_INET)})
for address in addresses:
    connection = http.client.HTTPConnection(address, port, timeout=5)
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    if response.status != 200:
        sys.exit(f"GET /metrics of the task at {address} answered {response.status}")
    sys.stdout.write(response.read().decode() + "\\n\\x1e\\n")
"""
TASK_SEPARATOR = "\n\x1e\n"
# Chaos for every task of a track (nginx would hand a POST to one of them), with the token the task holds.
POST_TO_EVERY_TASK = """\
import http.client, json, os, socket, sys
port = int(os.environ.get("APP_PORT", "3000"))
answers = []
for address in sorted({a[4][0] for a in socket.getaddrinfo("tasks." + sys.argv[1], port, socket.AF_INET)}):
    connection = http.client.HTTPConnection(address, port, timeout=10)
    connection.request("POST", sys.argv[2], sys.argv[3], {"Content-Type": "application/json",
                                                          "X-Chaos-Token": os.environ.get("CHAOS_TOKEN", "")})
    response = connection.getresponse()
    answers.append([address, response.status, response.read().decode(errors="replace")])
print(json.dumps(answers))
"""


class SwarmError(SwiftDeployError):
    pass


@dataclass
class SwarmRuntime(AppInputs, EngineImages, EngineOutput):
    LOGS_OF_SERVICES = True
    stack_file: Path
    project: str
    volumes: tuple[str, ...] = ()  # `docker stack rm` leaves volumes: down() removes these
    problems: dict[str, str] = field(default_factory=dict, repr=False)  # service id -> what went wrong (last look)
    # The facts probe runs in it on every node: an image each node has or can pull before the first build
    # (the app image may not exist yet), with the shell and coreutils the probe script needs.
    probe_image: str = "nginx:latest"
    engines: tuple[str, ...] = ()  # the other nodes' Docker endpoints (swarm.engines): see swarm_images
    secrets: tuple[str, ...] = ()  # the app's secrets (names): their values reach the CLI in its environment
    secret_files: tuple[str, ...] = ()  # refused on swarm by the manifest's checks
    state_dir: Path = Path(".swiftdeploy")
    say: Callable[[str], None] = field(default=print, repr=False)
    definition_file = "stack.yml"

    def host_facts(self) -> dict:
        """The infra gate's facts of every node that takes tasks, each measured on the node itself."""
        from .. import probe

        return probe.cluster_facts(self.probe_image, engine.data_path())

    def settle_after_interruption(self, last_acted: float, say=print) -> None:
        """Nothing to wait for: Swarm carries out a service update itself, whoever asked for it."""

    def prefetch_facts(self) -> None:
        """Nothing to start early: the probe's global service is quick next to a swarm deploy."""

    # -- commands (argv as data) ----------------------------------------------------------------------------

    def deploy_argv(self, file: Path, *, registry_auth: bool = False) -> list[str]:
        # never: an image from a registry is pinned to its digest already (swarm_registry), and one built here
        # has no digest a registry could give
        return [docker_binary(), "stack", "deploy", "--resolve-image", "never",
                *(["--with-registry-auth"] if registry_auth else []), "--compose-file", str(file), self.project]

    def force_argv(self, service: str) -> list[str]:
        return [docker_binary(), "service", "update", "--force", "--detach", self.full_name(service)]

    def full_name(self, service: str) -> str:
        return f"{self.project}_{service}"

    # -- changes --------------------------------------------------------------------------------------------

    def up(self, services=(), *, no_deps=False, recreate=False, wait=True, wait_seconds=90) -> None:
        """Deploy the services (all when none are named) as stack.yml defines them, and wait until each runs
        exactly its replicas of that definition. Services not named are left as they are (no --prune).
        recreate restarts a service whose definition did not change (its image tag moved: a rebuild)."""
        definitions = load_yaml(self.stack_file.read_text())["services"]
        services = tuple(services) or tuple(definitions)
        # Swarm has no depends_on: nginx cannot load a config naming a track with no healthy task yet
        tracks = tuple(s for s in services if _role(definitions.get(s)) in APP_TRACKS)
        if tracks and len(tracks) < len(services):
            self.up(tracks, recreate=recreate, wait_seconds=wait_seconds)
            services = tuple(s for s in services if s not in tracks)
        images = [definitions[s]["image"] for s in services if _role(definitions.get(s)) in APP_TRACKS]
        pins = {reference: repository_digest(reference, engine.inspect_image(reference)) for reference in images}
        shipped = [reference for reference, pin in pins.items() if pin is None]
        if shipped:
            swarm_images.ship(shipped, self.engines, self.say)
        pulled = {reference: pin for reference, pin in pins.items() if pin}
        before = {c.compose_service: c for c in self.containers()}
        partial = self.stack_file.with_name(".stack-deploy.yml")
        write_atomic(partial, self.partial_file(services, pulled, self.install_health_probe(self.stack_file)))
        try:
            with swarm_registry.registry_auth(pulled, self.state_dir) as auth:
                run(self.deploy_argv(partial, registry_auth=bool(pulled)), what=f"docker stack deploy {' '.join(services)}",
                    timeout=120, env={**self.secrets_environment(), **auth})
        finally:
            partial.unlink(missing_ok=True)
        if recreate:
            after = {c.compose_service: c for c in self.containers()}
            for service in services:
                if service in before and service in after and before[service].spec == after[service].spec:
                    run(self.force_argv(service), what=f"docker service update --force {service}", timeout=60)
        self.await_converged(services, wait_seconds)
        self.await_resolved([s for s in services if _role(definitions.get(s)) in APP_TRACKS])
        if "nginx" in services:
            self.remove_unused_secrets()

    def remove_unused_secrets(self) -> None:
        """A new certificate is a new pair of secrets (a secret never changes): the pairs no service of the stack
        names any more go, once nginx runs with the new one. One a killed deploy left goes with the next."""
        from docker.errors import APIError

        api = engine.client().api
        with engine.asking(f"listing the secrets of stack {self.project}"):
            secrets = api.secrets(filters={"label": f"{STACK_LABEL}={self.project}"})
            services = api.services(filters={"label": f"{STACK_LABEL}={self.project}"})
        named = {reference.get("SecretID") for service in services
                 for reference in service["Spec"]["TaskTemplate"]["ContainerSpec"].get("Secrets") or []}
        for secret in secrets:
            if secret["ID"] not in named and secret["Spec"]["Name"].startswith(f"{self.project}-tls-"):
                try:
                    api.remove_secret(secret["ID"])
                except APIError:  # named again meanwhile: a secret in use is never removed
                    pass

    def partial_file(self, services, pins=None, health_probe: Path | None = None) -> str:
        """stack.yml with only `services`, each image in `pins` (reference -> repository@digest) pinned, and the
        health probe's config named by its content (a Swarm config cannot change: a new probe is a new one)."""
        import hashlib

        import yaml

        stack = load_yaml(self.stack_file.read_text())
        missing = [s for s in services if s not in stack["services"]]
        if missing:
            raise SwarmError(f"{self.stack_file}: no service {', '.join(missing)}")
        stack["services"] = {name: stack["services"][name] for name in services}
        for definition in stack["services"].values():
            definition["image"] = (pins or {}).get(definition.get("image"), definition.get("image"))
        probe = (stack.get("configs") or {}).get(HEALTH_PROBE)
        if probe is not None and health_probe is not None:
            probe["name"] = f"{self.project}-health-{hashlib.sha256(health_probe.read_bytes()).hexdigest()[:12]}"
        return yaml.safe_dump(stack, sort_keys=False)

    def await_converged(self, services, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            found = {c.compose_service: c for c in self.containers()}
            for service in services:
                current = found.get(service, _NONE)
                problem = self.problems.get(current.id)
                if problem and (current.health == "unhealthy" or current.state == "exited"):
                    raise SwarmError(f"service {self.full_name(service)}: {problem} "
                                     f"(see `docker service ps --no-trunc {self.full_name(service)}`)")
            waiting = [s for s in services if not found.get(s, _NONE).ready]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise SwarmError(f"{', '.join(self.full_name(s) for s in waiting)} not running all replicas of "
                                 f"the new definition {seconds:.0f} s after deploy (see `docker service ps`)")
            time.sleep(0.5)

    def await_resolved(self, tracks, seconds: float = 30) -> None:
        """Wait until Swarm's DNS on nginx's node names exactly the tracks' running tasks. A node learns of tasks
        on other nodes by gossip, a moment after the API reports them: nginx, which resolves names when it
        loads its config, would meanwhile still reach a stopped task, or miss a new one."""
        if not tracks or not self._nginx_running():
            return
        deadline = time.monotonic() + seconds
        while True:
            stale = {}
            for track in tracks:
                running, resolved = self._task_addresses(track), self._resolved_on_nginx(track)
                if running != resolved:
                    stale[track] = (running, resolved)
            if not stale:
                return
            if time.monotonic() > deadline:
                track, (running, resolved) = next(iter(stale.items()))
                raise SwarmError(f"nginx's node still resolves tasks.{track} to {', '.join(sorted(resolved)) or 'nothing'}"
                                 f" {seconds:.0f} s after Swarm ran its tasks at {', '.join(sorted(running))}")
            time.sleep(0.3)

    def _nginx_running(self) -> bool:
        return any(c.get("State") == "running"
                   for c in engine.containers(f"com.docker.swarm.service.name={self.full_name('nginx')}"))

    def _task_addresses(self, track: str) -> set[str]:
        with engine.asking(f"listing the tasks of {self.full_name(track)}"):
            tasks = engine.client().api.tasks(filters={"service": self.full_name(track), "desired-state": "running"})
        return {address.split("/")[0] for task in tasks if (task.get("Status") or {}).get("State") == "running"
                for attachment in task.get("NetworksAttachments") or []
                if (attachment.get("Network") or {}).get("Spec", {}).get("Name") != "ingress"
                for address in attachment.get("Addresses") or []}

    def _resolved_on_nginx(self, track: str) -> set[str]:
        result = self.exec("nginx", ["sh", "-c", 'timeout 2 getent ahostsv4 "tasks.$1" | cut -d" " -f1 | sort -u', "sh", track])
        return set(result.stdout.split()) if result.returncode in (0, 2) else set()

    def remove(self, container_ids) -> None:
        """Remove services (the Containers this runtime reports), and wait until their tasks stopped here."""
        from docker.errors import NotFound

        api = engine.client().api
        for service_id in container_ids:
            with engine.asking(f"removing service {service_id[:12]}"):
                try:
                    api.remove_service(service_id)
                except NotFound:
                    pass
        self._wait_gone(lambda: [c for s in container_ids for c in engine.containers(f"{SERVICE_LABEL}={s}")
                                 if c.get("State") == "running"], "the removed services' tasks")

    def down(self) -> None:
        run([docker_binary(), "stack", "rm", self.project], what="docker stack rm", timeout=120)
        self._wait_gone(lambda: engine.containers(f"{STACK_LABEL}={self.project}"), "the stack's containers")
        self._wait_gone(lambda: engine.client().api.networks(filters={"label": f"{STACK_LABEL}={self.project}"}),
                        "the stack's networks")
        for node in swarm_images.other_nodes(self.engines):  # a worker removes its tasks' containers itself
            api = node.client.api
            self._wait_gone(lambda: api.containers(all=True, filters={"label": f"{STACK_LABEL}={self.project}"}),
                            f"the stack's containers on swarm node {node.hostname}")
            self._wait_gone(lambda: api.networks(filters={"label": f"{STACK_LABEL}={self.project}"}),
                            f"the stack's networks on swarm node {node.hostname}")
        from docker.errors import NotFound

        for volume in self.volumes:
            with engine.asking(f"removing volume {volume}"):
                try:
                    engine.client().api.remove_volume(volume)
                except NotFound:
                    pass

    def _wait_gone(self, listing, what: str, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while listing():
            if time.monotonic() > deadline:
                raise SwarmError(f"{what} still exist {seconds:.0f} s after removal")
            time.sleep(0.5)

    def check_nodes(self) -> None:
        """Every ready node gets the app's image: a node no engine of swarm.engines reaches is an error before
        the first step (ShippingError, one line), not after OPA has started."""
        swarm_images.reached_nodes(self.engines)

    def start_early(self, service: str) -> None:
        """Compose starts OPA ahead of a deploy; a Swarm service is deployed with the rest."""

    def settle(self) -> tuple[str, ...]:
        return ()

    # -- observations ---------------------------------------------------------------------------------------

    def containers(self) -> list[Container]:
        """One Container per service of the stack (see swarm_state); what went wrong with each in .problems."""
        api = engine.client().api
        with engine.asking(f"listing the services of stack {self.project}"):
            services = api.services(filters={"label": f"{STACK_LABEL}={self.project}"})
            tasks = api.tasks(filters={"service": [s["ID"] for s in services]}) if services else []
        by_service: dict[str, list] = {}
        for task in tasks:
            by_service.setdefault(task.get("ServiceID"), []).append(task)
        found, self.problems = [], {}
        for service in services:
            container, problem = service_as_container(service, by_service.get(service["ID"], []), _image_of)
            if container.state == "running" and not container.image_id:  # no task of it on this node
                reference = service["Spec"]["TaskTemplate"]["ContainerSpec"].get("Image", "")
                container = dataclasses.replace(container, image_id=engine.image_id(reference) or "")
            found.append(container)
            if problem:
                self.problems[container.id] = problem
        return found

    def exec(self, service: str, command: list[str]) -> subprocess.CompletedProcess:
        """Run a command in a running task of the service on this node (nginx and OPA run on the manager)."""
        local = [c for c in engine.containers(f"com.docker.swarm.service.name={self.full_name(service)}")
                 if c.get("State") == "running"]
        if not local:
            return subprocess.CompletedProcess(command, 1, "", f"no running task of {self.full_name(service)} here")
        code, out, err = engine.exec_in(local[0]["Id"], command)
        return subprocess.CompletedProcess(command, code, out, err)

    def metrics_texts(self, service: str, container_id: str | None = None) -> list[str]:
        """The /metrics text of every healthy task of the track, fetched over the overlay from one of them."""
        out = self._in_an_app_task(service, ["/opt/venv/bin/python", "-c", SCRAPE_EVERY_TASK, service])
        return [text for text in out.split(TASK_SEPARATOR) if text.strip()]

    def post_to_every_task(self, service: str, path: str, payload: dict) -> list[tuple[str, int, str]]:
        """POST `payload` to `path` of every healthy task of the service: [(address, status, body)]."""
        import json

        out = self._in_an_app_task(service, ["/opt/venv/bin/python", "-c", POST_TO_EVERY_TASK, service, path,
                                             json.dumps(payload)])
        return [tuple(answer) for answer in json.loads(out)]

    def _in_an_app_task(self, service: str, command: list[str]) -> str:
        """Run in a task of the service, else in any app task of the stack (the overlay reaches them all): on this
        node first, then on the nodes of swarm.engines."""
        def engines():  # the other nodes are asked only when this one runs no app task
            yield engine.client().api
            yield from (node.client.api for node in swarm_images.other_nodes(self.engines))

        result = None
        for api in engines():
            with engine.asking("listing the stack's running tasks"):
                running = api.containers(filters={"label": f"{STACK_LABEL}={self.project}", "status": "running"})
            apps = [c for c in running if (c.get("Labels") or {}).get("io.swiftdeploy.role") in APP_TRACKS]
            apps.sort(key=lambda c: (c.get("Labels") or {}).get("com.docker.swarm.service.name") != self.full_name(service))
            if apps:
                code, out, err = engine.exec_in(apps[0]["Id"], command, api)
                result = subprocess.CompletedProcess(command, code, out, err)
                break
        if result is None:
            raise SwarmError(f"no running app task of stack {self.project} on this node"
                             f"{' or on any node of swarm.engines' if self.engines else ''} to read from")
        if result.returncode != 0:
            raise SwarmError((result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1])
        return result.stdout


_NONE = Container(id="", name="", role=None, spec=None, version=None, image_id="", state="missing", health=None)


def _role(definition) -> str | None:
    return ((definition or {}).get("labels") or {}).get("io.swiftdeploy.role")


def _image_of(container_id: str) -> str | None:
    answer = engine.inspect_container(container_id)  # None for a task on another node
    return answer.get("Image") if answer else None


def docker_binary() -> str:
    found = shutil.which("docker")
    if not found:
        raise SwarmError("runtime: swarm needs the docker CLI (docker stack deploy); install docker.io or docker-ce-cli")
    return found
