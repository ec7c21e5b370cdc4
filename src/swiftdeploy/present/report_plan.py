"""`plan`: what deploy would do now, as text. Read-only: renders in memory, asks the engine and nginx."""

import difflib
from dataclasses import dataclass, field

from ..engine.build import source_hashes
from ..converge.plan import drift, plan
from ..converge.stack import Stack


@dataclass(frozen=True)
class PlanReport:
    text: str
    changes: bool  # anything to do: a file to render, a step to run
    files: dict[str, str] = field(default_factory=dict)  # generated/<name> -> "create" | "update"
    drift: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()  # what each step deploy would run does, in order
    interrupted: str | None = None  # the unfinished operation the journal holds


def plan_report(stack: Stack) -> PlanReport:
    from ..converge.operations import check_nodes

    check_nodes(stack)  # an unreachable swarm node: the one-line error deploy would give, before its first step
    target = stack.desired()
    lines = []
    pending = stack.journal.pending()
    if pending is not None:
        lines += [f"Interrupted: {pending.describe()}.",
                  "  deploy converges to manifest.yaml; rollback returns to the last confirmed release;"
                  f" running {pending.operation} again finishes it.", ""]
    diffs = file_diffs(stack, target.outputs)
    references = [target.services[track].image for track in target.tracks]
    observed = stack.observe(references)
    digest = getattr(stack.runtime, "secrets_digest", None)
    digest = digest() if digest else None
    steps = plan(target, observed, stack.desired, gates=("infra",),
                 builds=source_hashes(target.manifest, stack.root), strict=True, secrets_digest=digest)
    differences = drift(target, observed, stack.desired, digest)
    policy = policy_diff(stack, observed, target.policy_revision)
    if policy:
        lines += policy + [""]
    certificate = certificate_change(stack, target)
    if certificate:
        how = _how_nginx_takes(certificate, target.manifest)
        lines += [f"{certificate[0].upper()}{certificate[1:]}; {how}.", ""]
    if diffs:
        lines.append("Generated files that would change:")
        lines += diffs
        lines.append("")
    if differences:
        lines.append("Drift (the engine differs from manifest.yaml):")
        lines += [f"  {line}" for line in differences]
        lines.append("")
    if steps:
        lines.append("Steps deploy would run:")
        lines += [f"  {number}. {step.describe()}" for number, step in enumerate(steps, 1)]
        lines.append("")
    changes = bool(diffs or steps)
    volumes = stack.manifest.services.volumes
    if volumes:
        lines.append(f"Data: {', '.join(f'{name} ({path})' for name, path in volumes)} outlive every change; "
                     "a rollback returns to an older image, not to older data.")
    if changes:
        lines.append("Run ./swiftdeploy deploy (doit deploy) to apply them.")
    else:
        services = stack.manifest.services
        lines.append(f"No changes: {services.name} {services.version} ({services.mode} mode) runs as "
                     "manifest.yaml says.")
    return PlanReport("\n".join(lines) + "\n", changes, files=file_changes(stack, target.outputs),
                      drift=tuple(differences), steps=tuple(step.describe() for step in steps),
                      interrupted=pending.describe() if pending is not None else None)


def policy_diff(stack: Stack, observed, revision: str) -> list[str]:
    """How policies/ differs from the revision the running OPA serves (the snapshot its container mounts)."""
    from ..render.policy import revision_in, snapshot_diff, snapshot_dir

    opa = next((c for c in observed.containers if c.role == "opa" and c.state == "running"), None)
    served = revision_in(opa.version) if opa is not None else ""
    if opa is None or served == revision:
        return []
    old = snapshot_dir(stack.state_dir, served) if served else None
    shown = snapshot_diff(old, stack.policies)
    heading = (f"Policy OPA would load (revision {revision}; it serves {served or 'a policy of no revision'}):")
    return [heading] + [f"  {line}" for line in shown or ["(the snapshot OPA serves is gone: files not compared)"]]


def certificate_change(stack: Stack, target) -> str | None:
    from ..certificates import change

    try:
        served = (stack.generated / "nginx.conf").read_text()
    except OSError:
        served = None
    return change(served, target.manifest.nginx.tls)


def file_changes(stack: Stack, outputs: dict[str, str]) -> dict[str, str]:
    changes = {}
    for name, text in outputs.items():
        path = stack.generated / name
        if not path.exists():
            changes[f"generated/{name}"] = "create"
        elif path.read_text() != text:
            changes[f"generated/{name}"] = "update"
    return changes


def file_diffs(stack: Stack, outputs: dict[str, str]) -> list[str]:
    lines = []
    for name, text in outputs.items():
        path = stack.generated / name
        try:
            current = path.read_text()
        except FileNotFoundError:
            lines.append(f"  generated/{name}: would be created")
            continue
        if current == text:
            continue
        diff = difflib.unified_diff(current.splitlines(), text.splitlines(), f"generated/{name} (on disk)",
                                    f"generated/{name} (from manifest.yaml)", n=1, lineterm="")
        lines += [f"  {line}" for line in diff]
    return lines


def _how_nginx_takes(certificate: str, manifest) -> str:
    if manifest.runtime == "swarm":
        # a Swarm secret never changes: new files are new secrets, which only a new task gets
        gap = (": new connections are refused for a moment (a host-published port goes to one task at a time)"
               if manifest.swarm.publish_mode == "host" else ", the new one starting before the old one stops")
        return f"nginx's task is replaced to take it as Swarm secrets{gap}"
    if certificate.startswith("certificate renewed"):
        return "nginx loads it through a validated, confirmed reload"
    return "nginx's container is replaced, as its ports change: new connections are refused for a moment"
