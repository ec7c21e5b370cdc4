"""The planner (pure): desired state + observed state -> the ordered steps that make one the other.

Every step is idempotent and small (one compose call, one reload, one removal), and the order keeps every
request served: a container that nginx may send traffic to is never stopped or replaced; the other track
carries the traffic meanwhile. The executor runs the first step, observes again and plans again, so a plan
made from any state (a killed operation, a hand edit, an orphan) converges from there.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..engine.build import describe_source, outdated
from ..render.policy import revision_in
from ..render.desired import Desired, Route, carrier, with_route
from ..errors import SwiftDeployError
from ..model.manifest import BUNDLED, ImageSource, Manifest
from ..state import APP_TRACKS, Container, Observed

NEW = "(new)"  # the id of a container the plan itself starts


class PlanError(SwiftDeployError):
    pass


@dataclass(frozen=True)
class AskGate:
    domain: str

    def describe(self) -> str:
        return f"ask OPA: the {self.domain} gate"


@dataclass(frozen=True)
class BuildImages:
    references: tuple[str, ...]
    source: ImageSource = BUNDLED
    source_hash: str = ""

    def describe(self) -> str:
        return f"build {', '.join(self.references)} from {describe_source(self.source)}"


@dataclass(frozen=True)
class PullImages:
    """Images the manifest uses as they are (build: false) that the engine does not have yet."""
    references: tuple[str, ...]

    def describe(self) -> str:
        return f"pull {', '.join(self.references)}"


@dataclass(frozen=True)
class StartService:
    """Create the role's container (compose up), start it if it exists, or replace it (force-recreate)."""
    role: str
    target: Desired = field(repr=False)  # the state whose compose file defines the service
    replacing: Container | None = None  # recreated when set; else created, or started if stopped

    @property
    def spec(self):
        return self.target.services[self.role]

    def describe(self) -> str:
        if self.replacing is not None:
            return f"replace {self.replacing.describe()} with {self.spec.describe()}"
        return f"start {self.spec.describe()}"


@dataclass(frozen=True)
class StartStack:
    """Nothing is served yet (nginx is down): start what is missing in one compose call, in dependency order."""
    target: Desired = field(repr=False)
    services: tuple[str, ...] = ()

    def describe(self) -> str:
        names = ", ".join(spec.describe() for spec in self.target.services.values() if spec.service in self.services)
        return f"start the stack: {names}"


@dataclass(frozen=True)
class Reroute:
    target: Desired = field(repr=False)
    expect: tuple[tuple[str, str | None], ...] = ()  # (track, version) pinned requests must meet
    resolve: tuple[str, ...] = ()  # same config, reloaded so nginx resolves these tracks' new addresses
    behind: tuple[str | None, ...] = ()  # the spec of each routed container: what the reload points at

    def describe(self) -> str:
        again = f", to resolve {' and '.join(self.resolve)} again" if self.resolve else ""
        return f"reload nginx: {self.target.route.describe()} (config {self.target.generation}{again})"


@dataclass(frozen=True)
class RemoveContainers:
    containers: tuple[Container, ...]
    why: str

    def describe(self) -> str:
        return f"remove {', '.join(c.describe() for c in self.containers)}: {self.why}"


Step = AskGate | BuildImages | PullImages | StartService | StartStack | Reroute | RemoveContainers
LOAD_STEPS = (BuildImages, PullImages, StartService, StartStack)  # what the infra gate guards


def plan(target: Desired, observed: Observed, variant: Callable[[Manifest], Desired], *,
         gates: Sequence[str] = (), builds: dict | None = None, strict: bool = False,
         secrets_digest: str | None = None) -> list[Step]:
    """The steps from observed to target.

    `variant` renders a manifest (intermediate states are manifests too). `builds` maps each build source
    (BUNDLED, or the user's Build) to the hash of the inputs its images must be built from (None: never
    build or pull). `strict` also replaces a container whose image reference now names another image (a
    rebuilt tag): deploy converges that, a promotion leaves it; with `secrets_digest` (the app's secret values
    now) it also replaces an app container started with other values (a rotated secret).
    """
    planner = _Planner(target, observed, variant, builds, strict, secrets_digest)
    steps = planner.steps()
    if "canary" in gates:
        steps.insert(0, AskGate("canary"))
    if "infra" in gates:
        first_load = next((i for i, step in enumerate(steps) if isinstance(step, LOAD_STEPS)
                           and getattr(step, "role", None) != "opa"), None)
        if first_load is not None:
            steps.insert(first_load, AskGate("infra"))
    return steps


def drift(target: Desired, observed: Observed, variant: Callable[[Manifest], Desired],
          secrets_digest: str | None = None) -> list[str]:
    """What differs between the engine and the manifest, one line per container or config."""
    planner = _Planner(target, observed, variant, None, strict=True, secrets_digest=secrets_digest)
    lines = []
    for role, spec in target.services.items():
        container = planner.primary.get(role)
        if container is None:
            lines.append(f"{spec.describe()}: missing")
        elif not planner.ok(role, spec):
            lines.append(f"{container.describe()}: {planner.why_not(container, spec)}")
    for role, container in planner.primary.items():
        if role not in target.services:
            lines.append(f"{container.describe()}: not in the manifest ({target.manifest.services.mode} mode)")
    lines += [f"{c.describe()}: {planner.extra_reason(c)}" for c in planner.extras]
    lines += [f"nginx cannot reach the {track} track (it resolved an address the container no longer has)"
              for track in observed.unreachable]
    served = observed.served_generation
    nginx = planner.primary.get("nginx")
    if nginx is not None and nginx.state == "running" and served != target.generation:
        route = planner.routes.get(served)
        now = route.describe() if route else ("no answer" if served is None else f"config {served}")
        lines.append(f"nginx serves {now}; the manifest asks for {target.route.describe()} "
                     f"(config {target.generation})")
    return lines


class _Planner:
    def __init__(self, target: Desired, observed: Observed, variant, builds: dict | None, strict: bool,
                 secrets_digest: str | None = None):
        self.target, self.variant, self.observed, self.strict = target, variant, observed, strict
        self.secrets_digest = secrets_digest if strict else None
        self.images = {ref: fact.id for ref, fact in observed.images.items()}
        self.builds = self._builds(builds)
        self.building = tuple(ref for step in self.builds for ref in step.references)
        self.pulling = self._images_to_pull(builds)
        self.primary, self.extras = _assign(observed.containers, target, self)
        self.generation = observed.served_generation
        self.stale = set(observed.unreachable)  # tracks nginx must resolve again (their address changed)
        self._routes: dict[str, Route] | None = None
        self._states: dict[str, Desired] = {}  # config generation -> the state that renders it, where known
        self.out: list[Step] = []

    # -- facts --------------------------------------------------------------------------------------------

    @property
    def routes(self) -> dict[str, Route]:
        """Config generation -> the routing it serves, for every routing of the target's tracks (rendered
        only when asked: a stack that needs nothing never renders them)."""
        if self._routes is None:
            known = [self.target.manifest, carrier(self.target.manifest)]
            known += [with_route(self.target.manifest, Route(w)) for w in (None, 100)]
            self._routes = {}
            for manifest in known:
                rendered = self.variant(manifest)
                self._routes[rendered.generation] = rendered.route
                self._states[rendered.generation] = rendered
        return self._routes

    def ok(self, role: str, spec) -> bool:
        """The role's container is ready and is exactly what spec asks for."""
        container = self.primary.get(role)
        return container is not None and container.ready and self._matches(container, spec)

    def _matches(self, container: Container, spec) -> bool:
        if container.spec != spec.spec:
            return False
        if container.id == NEW or not self.strict:
            return True
        if self.secrets_digest is not None and spec.role in APP_TRACKS and container.secrets_digest != self.secrets_digest:
            return False
        if spec.image not in self.images:
            return True  # images are compared only for the app tracks, the ones the stack builds
        return spec.image not in self.building and container.image_id == self.images[spec.image]

    def opa_kept(self) -> bool:
        """A running OPA of another definition (an edited policy, a new image) is replaced by deploy only: a
        promotion or a rollback decides under the policy that was deployed."""
        opa = self.primary.get("opa")
        return not self.strict and opa is not None and opa.ready and opa.health != "unhealthy"

    def why_not(self, container: Container, spec) -> str:
        if container.role == "opa" and container.version != spec.version and container.spec != spec.spec:
            return (f"serves policy revision {revision_in(container.version) or 'unknown'}; policies/ is revision "
                    f"{revision_in(spec.version)}")
        if container.version != spec.version:
            return f"runs version {container.version}, the manifest asks for {spec.version}"
        if container.spec != spec.spec:
            return "its definition differs from the manifest's (a changed setting, or made by hand)"
        if spec.image in self.images and (container.image_id != self.images[spec.image] or spec.image in self.building):
            return f"runs another image than {spec.image} is now"
        if self.secrets_digest is not None and spec.role in APP_TRACKS and container.secrets_digest != self.secrets_digest:
            return "it started with other secret values (a secret in .swiftdeploy/secrets/ changed)"
        return {"exited": "stopped", "created": "created but not started"}.get(container.condition,
                                                                                container.condition)

    def extra_reason(self, container: Container) -> str:
        if container.role is None:
            return "not part of the stack the manifest describes (an orphan)"
        return f"a second {container.role} container (an orphan)"

    def routed(self, track: str) -> bool:
        """nginx may be sending requests to the track's container now."""
        container = self.primary.get(track)
        if container is None or not container.ready or self.generation is None:
            return False
        route = self.routes.get(self.generation)
        return route is None or track in route.tracks  # an unknown config may send anywhere

    def _sources(self) -> dict[str, ImageSource]:
        """Each target track's image reference -> where it comes from."""
        services = self.target.manifest.services
        found = {}
        for track in self.target.tracks:
            source = services.build if track == "stable" else services.canary.build
            found.setdefault(self.target.services[track].image, source)
        return found

    def _builds(self, builds: dict | None) -> tuple[BuildImages, ...]:
        if builds is None:
            return ()
        by_source: dict = {}
        for reference, source in self._sources().items():
            if source is not None and source in builds:
                by_source.setdefault(source, []).append(reference)
        return tuple(BuildImages(tuple(stale), source, builds[source]) for source, references in by_source.items()
                     if (stale := outdated(references, self.observed.images, builds[source])))

    def _images_to_pull(self, builds: dict | None) -> tuple[str, ...]:
        if builds is None:
            return ()
        return tuple(ref for ref, source in self._sources().items()
                     if source is None and ":release-" not in ref and self.images.get(ref) is None)

    def require_image(self, spec) -> None:
        if spec.role not in APP_TRACKS:
            return
        if spec.image not in self.building + self.pulling and self.images.get(spec.image) is None:
            raise PlanError(f"image {spec.image} is not present here (deploy builds or pulls it)")
        services = self.target.manifest.services
        fact = self.observed.images.get(spec.image)
        if (fact is not None and fact.id is not None and not services.bundled and services.user is None
                and not services.allow_root and (fact.user or "root").partition(":")[0] in ("", "0", "root")):
            raise PlanError(f"image {spec.image} runs as root (its USER is {fact.user or 'unset'}); set services.user "
                            "to a non-root uid, or allow_root: true to accept the risk (a process that breaks out of "
                            "its container as root owns the host)")

    # -- steps ----------------------------------------------------------------------------------------------

    def steps(self) -> list[Step]:
        target = self.target
        if not self.ok("opa", target.services["opa"]) and not self.opa_kept():
            self.start("opa", target)
        self.out += self.builds
        if self.pulling:
            self.out.append(PullImages(self.pulling))
        nginx = self.primary.get("nginx")
        if nginx is None or nginx.state != "running":
            self.cold_start()
        else:
            self.converge_tracks()
        self.remove_leftovers()
        return self.out

    def cold_start(self) -> None:
        """nginx serves nothing, so order does not matter: clear what is wrong, start everything at once."""
        target = self.target
        stale = [c for role, c in self.primary.items() if role in target.services and role != "opa"
                 and (not self._matches(c, target.services[role]) or c.health == "unhealthy")]
        if stale:
            self.remove(stale, "not what the manifest asks for, and nothing is served yet")
        for track in target.tracks:
            self.require_image(target.services[track])
        missing = [role for role, spec in target.services.items() if not self.ok(role, spec)
                   and not (role == "opa" and self.opa_kept())]
        self.out.append(StartStack(target, tuple(target.services[role].service for role in missing)))
        for role in missing:
            self.primary[role] = _fresh(target.services[role])
        self.generation = target.generation
        self.stale.clear()  # nginx starts after the tracks it routes to

    def converge_tracks(self) -> None:
        target = self.target
        if not self.ok("stable", target.services["stable"]):
            via = self.carry() if self.routed("stable") else target
            self.start("stable", via)
        if "canary" in target.services and not self.ok("canary", target.services["canary"]):
            if self.routed("canary"):
                self.reroute(self.variant(with_route(target.manifest, Route(None))))
            self.start("canary", target)
        if not self.ok("nginx", target.services["nginx"]):
            self.start("nginx", target)  # its config is the target's from its first request
        self.reroute(target)
        if "prometheus" in target.services and not self.ok("prometheus", target.services["prometheus"]):
            self.start("prometheus", target)  # no traffic passes it: start or replace it at any time

    def carry(self) -> Desired:
        """Move all traffic onto a canary of the right release, so the stable track can be replaced."""
        state = self.variant(carrier(self.target.manifest))
        if not self.ok("canary", state.services["canary"]):
            if self.routed("canary"):
                self.reroute(self.variant(with_route(self.target.manifest, Route(None))))
            self.start("canary", state)
        self.reroute(state)
        return state

    def remove_leftovers(self) -> None:
        leaving = [c for role, c in self.primary.items() if role not in self.target.services]
        if leaving:
            self.remove(leaving, f"the manifest is in {self.target.manifest.services.mode} mode")
        if self.extras:
            self.remove(self.extras, "orphans: not part of the stack the manifest describes")

    def start(self, role: str, state: Desired) -> None:
        spec = state.services[role]
        self.require_image(spec)
        # A second container of the role (compose's temporary one, left by a recreate killed half way) makes
        # compose fail to give the new one its name: it goes first.
        clutter = [c for c in self.extras if c.role == role]
        if clutter:
            self.remove(clutter, f"a second {role} container, left by an interrupted change")
        current = self.primary.get(role)
        replacing = current if current is not None and (
            not self._matches(current, spec) or current.health == "unhealthy") else None
        self.out.append(StartService(role, state, replacing))
        self.primary[role] = _fresh(spec)
        if role == "nginx":
            self.generation = state.generation
            self.stale.clear()
        elif role in APP_TRACKS:
            self.stale.add(role)  # a started container may have a new address: nginx must resolve it again

    def reroute(self, state: Desired) -> None:
        resolve = tuple(track for track in state.route.tracks if track in self.stale)
        if self.generation == state.generation and not resolve:
            return
        if self.generation != state.generation:
            self.resolve_before_moving(state)
            resolve = ()  # a new config resolves every name anyway
        for track in state.route.tracks:
            container = self.primary.get(track)
            if container is None or not container.ready:
                raise PlanError(f"bug: routing to the {track} track before it is ready")
        expect = tuple((track, self.primary[track].version) for track in state.route.tracks)
        behind = tuple(self.primary[track].spec for track in state.route.tracks)
        self.out.append(Reroute(state, expect, resolve, behind))
        self.generation = state.generation
        self.routes[state.generation] = state.route
        self._states[state.generation] = state
        self.stale -= set(state.route.tracks)

    def resolve_before_moving(self, state: Desired) -> None:
        """For a moment after a reload nginx's old workers still take requests from the new ones (each track's
        own server listens on a socket they share), with the addresses they resolved at their load. So before
        traffic moves onto a track whose container started since then, the config served now is reloaded once
        to resolve it: then old and new workers alike reach the new container."""
        current = self.routes.get(self.generation) and self._states.get(self.generation)
        if current is not None and self.stale & set(current.route.tracks) & set(state.route.tracks):
            self.reroute(current)

    def remove(self, containers: Sequence[Container], why: str) -> None:
        self.out.append(RemoveContainers(tuple(containers), why))
        gone = {c.id for c in containers}
        self.primary = {role: c for role, c in self.primary.items() if c.id not in gone}
        self.extras = [c for c in self.extras if c.id not in gone]


def _fresh(spec) -> Container:
    return Container(id=NEW, name=spec.service, role=spec.role, spec=spec.spec, version=spec.version,
                     image_id=NEW, state="running", health=None)


def _assign(containers: Sequence[Container], target: Desired, planner: _Planner):
    """One primary container per role (the best candidate); every other container is an extra (orphan)."""
    by_role: dict[str, list[Container]] = {}
    extras = []
    for container in containers:
        if container.role is None:
            extras.append(container)
        else:
            by_role.setdefault(container.role, []).append(container)
    primary = {}
    for role, candidates in by_role.items():
        spec = target.services.get(role)
        expected_name = spec.service if spec else None

        def rank(c: Container, spec=spec, expected_name=expected_name):
            return (c.ready, spec is not None and planner._matches(c, spec), c.compose_service == expected_name,
                    c.state == "running", c.created)

        best, *rest = sorted(candidates, key=rank, reverse=True)
        primary[role] = best
        extras += rest
    return primary, extras


def describe(steps: Sequence[Step]) -> list[str]:
    return [step.describe() for step in steps]
