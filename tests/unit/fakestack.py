"""A fake engine and nginx for the operations: faults a real engine cannot produce on demand.

FakeWorld holds containers (with the labels compose would give them, read from the generated compose
file), images, and the nginx config being served. Every change is a tick: a test can make the Nth tick
raise Killed, which is what SIGKILL does to a run (nothing after it happens; files and containers stay as
they are). At every tick the world also checks the promise that matters: nginx never routes to a container
that cannot answer, or whose address it no longer knows: nginx resolves names when it loads its config,
and a container started since has a new address (it does on Podman).
"""

import itertools
import re
from pathlib import Path

from swiftdeploy.commands import CommandError
from swiftdeploy.converge.proxy import Answer, ProxyError, unreachable
from swiftdeploy.render.templates import generation_of, load_yaml
from swiftdeploy.state import Container, ImageFact

APP_IMAGE = "swift-deploy-1-node:latest"


class Killed(BaseException):
    """The run was killed here (a BaseException, as nothing of the run may catch it)."""


class FakeWorld:
    def __init__(self):
        self.containers: dict[str, Container] = {}
        self.images = {APP_IMAGE: ImageFact(id="sha256:" + "a" * 64, app_hash=None),
                       "nginx:latest": ImageFact(id="sha256:" + "b" * 64),
                       "openpolicyagent/opa:1.22.3": ImageFact(id="sha256:" + "c" * 64)}
        self.tags: dict[str, str] = {}
        self.served: str | None = None  # the nginx.conf text nginx runs
        self.loaded_at = 0  # the tick nginx last loaded its config (and resolved the names in it)
        self.started: dict[str, int] = {}  # container id -> the tick it started
        self.ticks = 0
        self.kill_at: int | None = None
        self.killed_in = ""  # what the last kill interrupted
        self.settled = 0  # the times a run waited for what a killed one asked of the engine
        self.unhealthy_versions: set[str] = set()
        self.violations: list[str] = []
        self.fetched: list[str] = []  # "pull" and "build", in order: what brought images here
        self.image_user = "10001"  # the USER of the images pulls and builds bring
        self.secrets_digest: str | None = None  # what compose fills into io.swiftdeploy.secrets (None: no secrets)
        # the containers nginx's old workers route to after a reload, until a drain says they have finished
        self.draining: dict[str, str] = {}  # container id -> name
        self.policy_problems: dict[str, str] = {}  # what `opa check` says of a policy revision (absent: compiles)
        self.policy_checks: list[str] = []  # the revisions checked, in order
        self._ids = itertools.count(1)

    def tick(self, what: str = "") -> None:
        self.check_routing(what)
        self.ticks += 1
        if self.kill_at is not None and self.ticks >= self.kill_at:
            self.kill_at = None
            self.killed_in = what
            raise Killed(what)

    # -- what nginx would do with a request --------------------------------------------------------------

    def nginx(self) -> Container | None:
        return next((c for c in self.containers.values() if c.role == "nginx" and c.state == "running"), None)

    def by_service(self, service: str) -> Container | None:
        return next((c for c in self.containers.values() if c.compose_service == service), None)

    def pool(self, track: str | None, served: str | None = None) -> list[tuple[str, bool]]:
        """(service, backup) servers a request pinned to track (None: unpinned) is sent to, by the served config
        (or the config text `served`)."""
        served = served or self.served
        upstream = "app_pool"
        mapped = re.search(r"map \$http_x_swiftdeploy_track \$track_pool \{(.*?)\}", served, re.S)
        if track and mapped:
            for line in mapped[1].splitlines():
                words = line.strip().rstrip(";").split()
                if len(words) == 2 and words[0] == track:
                    upstream = words[1]
        block = re.search(r"upstream " + upstream + r" \{(.*?)\}", served, re.S)[1]
        # each pool server is a track's own server in nginx (a socket), which proxies to the track's container
        return [(self.container_behind(m[1], served), "backup" in m[2])
                for m in re.finditer(r"server unix:/tmp/swiftdeploy-(\w+)\.sock([^;]*);", block)]

    def container_behind(self, track: str, served: str | None = None) -> str | None:
        """The service a track's own server proxies to (None: the config has the socket, not the track)."""
        block = re.search(r"upstream " + track + r"_containers \{(.*?)\}", served or self.served, re.S)
        return re.search(r"server ([\w-]+):\d+", block[1])[1] if block else None

    def check_routing(self, when: str) -> None:
        if self.served is None or self.nginx() is None:
            return
        for service, backup in self.pool(None):
            if not backup and not self.reachable(self.by_service(service)):
                self.violations.append(f"before {when or 'the end'}: nginx routes to {service}, which cannot answer")
        for container_id, name in self.draining.items():
            container = self.containers.get(container_id)
            if container is None or not container.ready:
                self.violations.append(f"before {when or 'the end'}: an old nginx worker still routes to {name}, "
                                       "which is gone")
        self.draining = {i: n for i, n in self.draining.items() if i in self.containers}

    def routed_containers(self) -> dict[str, str]:
        """The containers the served config routes to (not as a backup) and reaches: id -> name."""
        if self.served is None or self.nginx() is None:
            return {}
        routed = [self.by_service(service) for service, backup in self.pool(None) if not backup]
        return {c.id: c.name for c in routed if self.reachable(c)}

    def reachable(self, container: Container | None) -> bool:
        return (container is not None and container.ready
                and self.started.get(container.id, 0) <= self.loaded_at)

    def answer(self, track: str | None, path: str) -> Answer:
        if self.nginx() is None or self.served is None:
            raise ProxyError("no answer from the fake nginx")
        generation = generation_of(self.served)
        servers = self.pool(track)
        primary = [s for s, backup in servers if not backup] or [s for s, _ in servers]
        for service in primary + [s for s, backup in servers if backup]:
            container = self.by_service(service)
            if self.reachable(container):
                return Answer(200, generation, container.role, container.version)
        return Answer(504, generation, "stable", None)


class FakeRuntime:
    """ComposeRuntime's interface over a FakeWorld; reads the compose file the executor wrote."""

    def __init__(self, world: FakeWorld, compose_file: Path):
        self.world, self.compose_file = world, compose_file

    def containers(self) -> list[Container]:
        return list(self.world.containers.values())

    def images(self, references) -> dict[str, ImageFact]:
        return {ref: self.world.images.get(ref, ImageFact(id=None)) for ref in references}

    def up(self, services=(), *, no_deps=False, recreate=False, wait=True, wait_seconds=60) -> None:
        compose = load_yaml(self.compose_file.read_text())  # libyaml: the kill matrices read it thousands of times
        for name in services or list(compose["services"]):
            self._up_one(name, compose["services"][name], recreate)

    def _up_one(self, name: str, definition: dict, recreate: bool) -> None:
        world = self.world
        labels = definition.get("labels") or {}
        existing = world.by_service(name)
        image = world.images.get(definition["image"])
        if image is None or image.id is None:
            raise CommandError(f"compose up {name} failed: image {definition['image']} not found")
        if existing is not None and (recreate or existing.spec != labels.get("io.swiftdeploy.spec")
                                     or existing.health == "unhealthy"):
            world.tick(f"compose stops {name}")
            del world.containers[existing.id]
            existing = None
        if existing is not None and existing.state == "running":
            return
        world.tick(f"compose starts {name}")
        if existing is not None:
            del world.containers[existing.id]
        version = labels.get("io.swiftdeploy.version")
        healthy = version not in world.unhealthy_versions
        has_check = "healthcheck" in definition
        container = Container(id=f"c{next(world._ids)}", name=f"p-{name}-1", role=labels.get("io.swiftdeploy.role"),
                              spec=labels.get("io.swiftdeploy.spec"), version=version, image_id=image.id,
                              state="running", health=("healthy" if healthy else "unhealthy") if has_check else None,
                              compose_service=name,
                              secrets_digest=world.secrets_digest if "io.swiftdeploy.secrets" in labels else None)
        world.containers[container.id] = container
        world.started[container.id] = world.ticks
        if name == "nginx":
            world.served = (self.compose_file.parent / "nginx.conf").read_text()
            world.loaded_at = world.ticks
        if not healthy:
            raise CommandError(f"compose up {name} failed: container {container.name} is unhealthy")

    def remove(self, container_ids) -> None:
        for container_id in container_ids:
            if container_id in self.world.containers:
                self.world.tick(f"remove {self.world.containers[container_id].name}")
                del self.world.containers[container_id]

    def exec(self, service, command):
        raise AssertionError("the fake stack runs no commands in containers")

    exec_container = exec

    def down(self) -> None:
        self.world.containers.clear()
        self.world.served = None

    def settle_after_interruption(self, last_acted: float, say=print) -> None:
        self.world.settled += 1  # the fake engine does nothing after the process that asked is gone

    def prefetch_facts(self) -> None:
        pass

    def settle(self) -> tuple:
        return ()

    def secrets_digest(self) -> str | None:
        return self.world.secrets_digest

    def pull(self, references) -> None:
        self.world.tick("pull")
        self.world.fetched.append("pull")
        for reference in references:
            self.world.images[reference] = ImageFact(id="sha256:" + "p" * 64, user=self.world.image_user)

    def build(self, root, references, source_hash: str, source=None) -> str:
        self.world.tick("build")
        self.world.fetched.append("build")
        image_id = "sha256:" + source_hash.ljust(64, "0")
        for reference in references:
            self.world.images[reference] = ImageFact(id=image_id, app_hash=source_hash, user=self.world.image_user)
        return image_id

    def tag(self, image_id: str, reference: str) -> None:
        self.world.tags[reference] = image_id
        users = [fact.user for fact in self.world.images.values() if fact.id == image_id]
        self.world.images[reference] = ImageFact(id=image_id, user=users[0] if users else None)

    def untag(self, reference: str) -> None:
        self.world.tags.pop(reference, None)
        self.world.images.pop(reference, None)

    def policy_problem(self, opa_image: str, folder: Path) -> str | None:
        self.world.policy_checks.append(folder.name)
        return self.world.policy_problems.get(folder.name)


class FakeOpa:
    """OPA's policy revision as the fake world's OPA container serves it (the snapshot its label names)."""

    def __init__(self, world: FakeWorld):
        self.world = world

    def served_revision(self) -> str | None:
        opa = next((c for c in self.world.containers.values() if c.role == "opa" and c.state == "running"), None)
        return (opa.version or "").removeprefix("policy ") or None if opa else None


class FakeProxy:
    def __init__(self, world: FakeWorld, nginx_conf: Path):
        self.world, self.nginx_conf = world, nginx_conf

    def served_generation(self) -> str | None:
        if self.world.nginx() is None or self.world.served is None:
            return None
        return generation_of(self.world.served)

    def answer(self, track=None, path="/") -> Answer:
        return self.world.answer(track, path)

    def unreachable(self, tracks) -> tuple[str, ...]:
        return unreachable(self, tracks)

    def drain(self, seconds: float) -> int:
        self.world.tick("nginx drain")
        self.world.draining = {}
        return 0

    def reload(self, generation: str) -> None:
        world = self.world
        world.tick("nginx reload")
        world.draining.update(world.routed_containers())
        loading = self.nginx_conf.read_text()
        if world.served is not None and world.nginx() is not None:
            # For a moment the old workers' track servers still take the new workers' requests, with the
            # addresses they resolved at the last load.
            for service, backup in world.pool(None, loading):
                container = world.by_service(service)
                if (not backup and container is not None and service in dict(world.pool(None))
                        and world.started.get(container.id, 0) > world.loaded_at):
                    world.violations.append(f"nginx reload: the old workers route {service} to the address it "
                                            "had before it was started again")
        world.served = loading
        self.world.loaded_at = self.world.ticks
        if generation_of(self.world.served) != generation:
            raise ProxyError("the fake nginx loaded another generation")
