"""Operations: deploy, promote:canary, promote:stable, rollback, teardown.

Each one: look at the journal (say what an interrupted operation left, finish it when it is the same one),
pick the target (the manifest, or the manifest with this operation's edit), journal the start, converge to
the target with the executor, confirm through the public port, then commit in this order: generated files,
the manifest edit, the confirmed release, an empty journal, the history event. A failure restores the state
before the operation (in the same safe order: the old track healthy, nginx pointed at it, the new one
removed); a restore that fails leaves the journal for the next command.
"""

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from .. import certificates
from ..engine.build import input_problem, source_hashes
from ..secrets import read_all_app_secrets
from ..render.desired import Desired
from ..errors import SwiftDeployError
from . import opa_policy
from .executor import Executor
from ..files import write_atomic
from ..evidence.history import utc_timestamp
from .journal import Pending
from ..model.manifest import Build, Manifest
from .plan import AskGate, StartService, StartStack, describe
from .releases import Release, release_tag
from .stack import Stack
from ..state import APP_TRACKS


class OperationError(SwiftDeployError):
    pass


@dataclass
class Outcome:
    manifest: Manifest
    steps: list[str] = field(default_factory=list)
    seen: dict = field(default_factory=dict)
    interrupted: Pending | None = None
    seconds: float = 0.0


@dataclass
class Operation:
    stack: Stack
    name: str
    say: Callable[[str], None] = print
    ask_gate: Callable | None = None  # tests answer gates themselves
    checkpoint: Callable[[str], None] | None = None  # tests stop the run here, as SIGKILL would
    pending: Pending | None = field(init=False, default=None)  # an unfinished run of this same operation
    interrupted: Pending | None = field(init=False, default=None)
    finished: Pending | None = field(init=False, default=None)  # a run that committed, its journal left behind

    def __post_init__(self):
        self.started = time.monotonic()
        self.journal = self.stack.journal
        found = self.journal.pending()
        last = self.stack.releases.last() if found is not None else None
        if found is not None and last is not None and last.op_id == found.id:
            self.journal.finish()  # it committed (the release is its commit point); only its journal was left
            self.finished, found = found, None
        if found is not None:
            self.interrupted = found
            self.say(f"note: {found.describe()}")
            record_interrupted(self.stack, found, taken_over_by=self.name)
            if found.engine_busy:
                self.stack.runtime.settle_after_interruption(self.journal.last_written(), say=self.say)
            if found.operation == self.name:
                self.pending = found
        self._checkpoint = self.checkpoint or (lambda where: None)

    def already_done(self) -> Outcome | None:
        """When the last run of this same operation committed before it was killed, there is nothing to finish."""
        if self.finished is None or self.finished.operation != self.name:
            return None
        self.say(f"{self.name} had finished (killed only after it committed); nothing left to do")
        return Outcome(self.stack.manifest)

    def executor(self) -> Executor:
        return Executor(self.stack, self.name, self.journal, say=self.say, ask_gate=self.ask_gate,
                        checkpoint=self._checkpoint)

    def run(self, changes: dict, undo: dict, **options) -> Outcome:
        try:
            return self._run(changes, undo, **options)
        finally:
            self.stack.runtime.settle()  # a service started ahead of time (start_early) is up before we exit

    def _run(self, changes: dict, undo: dict, *, gates=(), build=False, pull=False, strict=False, release=False,
             restore: bool = True, nothing: str = "nothing to do", nothing_is_error: bool = False) -> Outcome:
        stack = self.stack
        if self.pending is not None:  # finish what the interrupted run started: its edit, its passed gates
            changes, undo = self.pending.changes, self.pending.undo
        text = stack.manifest_path.read_text()
        new_text, target_manifest = _edit(text, changes) if changes else (text, stack.manifest)
        target = stack.desired(target_manifest)
        read_all_app_secrets(target.manifest.services.secrets, target.manifest.services.secret_files,
                             stack.state_dir)  # a missing one fails before any change
        # deploy builds and pulls; a canary's start builds or pulls the canary's image only; nothing else
        # fetches an image (a rollback runs what the engine kept)
        builds = (source_hashes(target.manifest, stack.root) if build else
                  source_hashes(target.manifest, stack.root, canary_only=True) if pull else None)
        executor = self.executor()
        executor.passed = set(self.pending.gates) if self.pending else set()
        steps = executor.plan(target, gates, builds=builds, strict=strict)
        if any(getattr(step, "role", None) == "opa" for step in steps):
            opa_policy.prepare(stack, target.policy_revision)  # a policy that does not compile changes nothing
        if any(isinstance(step, (StartService, StartStack)) for step in steps):
            check_nodes(stack)  # a node that cannot get the image: one line before anything starts
        if not steps and new_text == text and not self.pending:
            self.journal.finish()
            if nothing_is_error:
                raise OperationError(nothing)
            self.say(nothing)
            return Outcome(stack.manifest, interrupted=self.interrupted)
        if steps:
            self.say(f"{self.name}: {len(steps)} step{'s' if len(steps) != 1 else ''}")
        if any(isinstance(step, AskGate) and step.domain == "infra" for step in steps):
            stack.runtime.prefetch_facts()
        op_id = uuid.uuid4().hex[:12]
        self.journal.begin(op_id, self.name, changes, undo, describe(steps),
                           resumes=self.pending.id if self.pending else None)
        self._checkpoint("journal started")
        try:
            executor.converge(target, gates, builds=builds, strict=strict, planned=steps)
            seen = executor.confirm(target)
        except SwiftDeployError as err:
            self._failed(err, executor, undo if restore else None)
            raise

        self._commit(target, new_text if new_text != text else None, op_id, release)
        return Outcome(target.manifest, steps=executor.ran, seen=seen, interrupted=self.interrupted,
                       seconds=round(time.monotonic() - self.started, 1))

    def _commit(self, target: Desired, manifest_text: str | None, op_id: str, release: bool) -> None:
        stack = self.stack
        self._record_certificate(target)
        for name, text in target.outputs.items():
            write_atomic(stack.generated / name, text)
        tls = target.manifest.nginx.tls
        certificates.prune(stack.state_dir, {tls.material} if tls else ())  # nginx loaded the one it serves at its reload
        if manifest_text is not None:
            _write_manifest(stack.manifest_path, manifest_text)
            self._checkpoint("manifest written")
        stack.manifest = target.manifest
        if release:
            self._record_release(target, op_id)
            self._checkpoint("release recorded")
        self.journal.finish()

    def _record_certificate(self, target: Desired) -> None:
        """A certificate event when the confirmed config serves another certificate than the last one recorded
        (fingerprint, names and dates: never key material)."""
        state_dir, tls = self.stack.state_dir, target.manifest.nginx.tls
        change = certificates.change_since_recorded(state_dir, tls)
        if change is None:
            return
        fields = {"change": change.split(":")[0]}
        if tls:
            cert = certificates.check(tls, self.stack.root)
            fields.update(fingerprint=cert.fingerprint, names=list(cert.names), not_after=tls.not_after,
                          source="acme placeholder" if cert.placeholder else "acme" if tls.acme else "files")
        self.stack.history.append("certificate", outcome="ok", **fields)
        certificates.record(state_dir, tls)

    def _record_release(self, target: Desired, op_id: str) -> None:
        stack = self.stack
        spec = target.services["stable"]
        [image_id] = [c.image_id for c in stack.runtime.containers() if c.role == "stable" and c.ready] or [None]
        if not image_id:
            raise OperationError("the stable track was confirmed, yet the engine shows no ready stable container")
        tag = release_tag(spec.image, spec.version, image_id)
        stack.runtime.tag(image_id, tag)
        digest = stack.runtime.images([spec.image])[spec.image].digest
        dropped = stack.releases.record(Release(version=spec.version, image=spec.image, image_id=image_id, tag=tag,
                                                operation=self.name, op_id=op_id, confirmed_at=utc_timestamp(),
                                                digest=digest))
        for old in dropped:
            stack.runtime.untag(old.tag)

    def _failed(self, err: SwiftDeployError, executor: Executor, undo: dict | None) -> None:
        """Put back the state before the operation, if it changed anything; else just end the journal."""
        from ..judge.gates import GateDenied, GateUnavailable

        stack = self.stack
        if isinstance(err, (GateDenied, GateUnavailable)) and not executor.ran:
            self.journal.finish()
            return
        if isinstance(err, (GateDenied, GateUnavailable)) and not executor.first_observed.containers:
            stack.runtime.remove([c.id for c in stack.runtime.containers()])  # a denied first deploy leaves nothing
            self.journal.finish()
            return
        if undo is None or not executor.ran:
            self.journal.finish()
            return
        self.journal.restoring(str(err).splitlines()[0])
        self.say(f"{self.name} failed: {str(err).splitlines()[0]}; restoring the previous state")
        try:
            text, previous = _edit(stack.manifest_path.read_text(), undo) if undo else (None, stack.manifest)
            restore_target = stack.desired(previous)
            restorer = self.executor()
            restorer.converge(restore_target)
            restorer.confirm(restore_target)
        except SwiftDeployError as restore_err:
            raise OperationError(f"{str(err).splitlines()[0]}; restoring the previous state also failed: "
                                 f"{restore_err} (the journal keeps the operation: run rollback, or the same "
                                 "command again)") from None
        for name, output in restore_target.outputs.items():
            write_atomic(stack.generated / name, output)
        if text is not None:
            _write_manifest(stack.manifest_path, text)
        stack.manifest = previous
        self.journal.finish()


def _edit(text: str, changes: dict):
    from ..model.manifest_edit import edit  # ruamel.yaml is imported only by a run that edits the manifest

    return edit(text, changes)


def _write_manifest(path, text: str) -> None:
    from ..model.manifest_edit import write_manifest

    write_manifest(path, text)


def value_at(manifest: Manifest, dotted: str):
    node = manifest
    for key in dotted.split("."):
        node = getattr(node, key)
    return node


def edits(manifest: Manifest, wanted: dict) -> tuple[dict, dict]:
    """(the changes that differ from the manifest, the changes that would put it back)."""
    changes = {key: value for key, value in wanted.items() if value_at(manifest, key) != value}
    return changes, {key: value_at(manifest, key) for key in changes}


def check_inputs(stack: Stack, manifest: Manifest | None = None) -> None:
    """What the user keeps beside the manifest is there and private (secrets, build contexts), or one line
    says what is not: before any container, OPA's included, is touched."""
    manifest = manifest or stack.manifest
    read_all_app_secrets(manifest.services.secrets, manifest.services.secret_files, stack.state_dir)
    for source in {manifest.services.build, manifest.services.canary.build}:
        if isinstance(source, Build) and (problem := input_problem(stack.root, source)):
            raise OperationError(problem)
    opa_policy.prepare(stack)
    check_nodes(stack)


def check_nodes(stack: Stack) -> None:
    """On a cluster, every node that takes tasks can get the app's image (a no-op on one engine)."""
    check = getattr(stack.runtime, "check_nodes", None)
    if check is not None:
        check()


def deploy(stack: Stack, **options) -> Outcome:
    operation = Operation(stack, "deploy", **options)
    return operation.run({}, {}, gates=("infra",), build=True, strict=True, release=True, restore=False,
                         nothing=f"nothing to do: {stack.manifest.services.name} {stack.manifest.services.version} "
                                 f"({stack.manifest.services.mode} mode) runs as the manifest says")


def promote_canary(stack: Stack, **options) -> Outcome:
    operation = Operation(stack, "promote:canary", **options)
    services = stack.manifest.services
    if operation.pending is None and services.mode == "canary":
        raise OperationError(f"already in canary mode (canary {services.canary.version} at {services.canary.weight}%); "
                             "run promote:stable or rollback")
    changes, undo = edits(stack.manifest, {"services.mode": "canary"})
    return operation.run(changes, undo, gates=("infra",), pull=True)


def set_canary_weight(stack: Stack, weight: int, **options) -> Outcome:
    """A rollout's step: the canary at `weight` (started beside stable first, behind the infra gate)."""
    operation = Operation(stack, "rollout", **options)
    changes, undo = edits(stack.manifest, {"services.mode": "canary", "services.canary.weight": weight})
    gates = ("infra",) if changes.get("services.mode") == "canary" else ()
    return operation.run(changes, undo, gates=gates, pull=True, nothing=f"the canary already serves {weight}%")


def promote_stable(stack: Stack, **options) -> Outcome:
    operation = Operation(stack, "promote:stable", **options)
    if done := operation.already_done():
        return done
    changes, undo = {}, {}
    if operation.pending is None:
        require_canary(stack.manifest, "promote:stable")
        canary = stack.manifest.services.canary
        image = _exact_image(stack, canary.image, role="canary")
        changes, undo = edits(stack.manifest, {"services.mode": "stable", "services.version": canary.version,
                                               "services.image": image})
        if canary.build != stack.manifest.services.build:
            # stable now runs the judged image as it is: never rebuilt from stable's own build inputs
            changes["services.build"], undo["services.build"] = False, _raw_build(stack)
    return operation.run(changes, undo, gates=("canary",), release=True)


def rollback(stack: Stack, **options) -> Outcome:
    operation = Operation(stack, "rollback", **options)
    if not any(c.role in APP_TRACKS for c in stack.runtime.containers()):
        raise OperationError("nothing to roll back: no app container exists (deploy first)")
    wanted = {"services.mode": "stable"}
    release = stack.releases.last()
    if release is not None:
        wanted["services.version"] = release.version
        current = stack.runtime.images([release.image])[release.image].id
        wanted["services.image"] = release.image if current == release.image_id else release.tag
    changes, undo = edits(stack.manifest, wanted)
    where = (f"stable {release.version} (the last confirmed release)" if release
             else f"stable {stack.manifest.services.version}")
    return operation.run(changes, undo, restore=False, nothing_is_error=True,
                         nothing=f"nothing to roll back: {where} serves all traffic and no canary runs")


def teardown(stack: Stack, clean: bool) -> None:
    import shutil

    pending = stack.journal.pending()
    if pending is not None:
        record_interrupted(stack, pending, taken_over_by="teardown")
    stack.runtime.remove([c.id for c in stack.runtime.containers()])
    stack.runtime.down()
    stack.journal.finish()
    if clean:
        shutil.rmtree(stack.generated, ignore_errors=True)
    stack.history.append("teardown", outcome="ok", clean=clean)


def record_interrupted(stack: Stack, pending: Pending, taken_over_by: str) -> None:
    stack.history.append("interrupted", operation=pending.operation, op_id=pending.id, since=pending.since,
                         steps_done=len(pending.steps), last_step=pending.steps[-1] if pending.steps else None,
                         restoring=pending.restoring, taken_over_by=taken_over_by)


def require_canary(manifest: Manifest, operation: str) -> None:
    if manifest.services.mode != "canary":
        raise OperationError(f"{operation} needs a canary: the manifest is in stable mode (run promote:canary first)")


def _raw_build(stack: Stack):
    """services.build as the manifest spells it (JSON-able, for the journal's undo); absent reads as "app"."""
    from ..render.templates import load_yaml

    return (load_yaml(stack.manifest_path.read_text()).get("services") or {}).get("build", "app")


def _exact_image(stack: Stack, reference: str, role: str) -> str:
    """A reference that names the image the role's container runs now: `reference` itself, unless that tag
    has moved since (a rebuild), then a kept tag of the running image, so what was judged is what is promoted."""
    running = [c for c in stack.runtime.containers() if c.role == role and c.ready]
    if not running:
        return reference
    image_id = running[0].image_id
    if stack.runtime.images([reference])[reference].id == image_id:
        return reference
    tag = release_tag(reference, role, image_id)
    stack.runtime.tag(image_id, tag)
    return tag
