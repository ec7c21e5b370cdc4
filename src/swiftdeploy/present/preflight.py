"""validate: the pre-flight checks, each a (name, check) pair; a check returns its detail or raises."""

import errno
import socket
from pathlib import Path

from ..errors import SwiftDeployError
from ..model.manifest import Manifest, ManifestError, load_manifest
from ..commands import CommandError, last_line, run

NGINX_CHECK_HOSTS = ("stable", "canary")


class CheckFailed(SwiftDeployError):
    pass


def run_checks(root: Path) -> list[tuple[str, bool, str]]:
    """Every check, in order: (name, passed, detail). A check never stops the others."""
    manifest, problems = _load(root)
    checks = [
        ("manifest.yaml is valid", lambda: _manifest_valid(problems)),
        ("required fields are present", lambda: _required_present(problems)),
        ("the app's inputs are in place", lambda: app_inputs(root, _need(manifest))),
        ("images are present, buildable or pullable", lambda: images_available(root, _need(manifest))),
        ("the TLS certificate is usable", lambda: certificate_usable(root, _need(manifest))),
        ("nginx port is free or held by this stack", lambda: port_available(_need(manifest), root)),
        ("generated/nginx.conf passes nginx -t", lambda: nginx_config_valid(root, _need(manifest))),
        ("generated/docker-compose.yml passes docker compose config", lambda: compose_valid(root, _need(manifest))),
        ("policies/ pass opa check --strict", lambda: policies_valid(root, _need(manifest))),
    ]
    results = []
    for name, check in checks:
        try:
            results.append((name, True, check()))
        except SwiftDeployError as err:
            results.append((name, False, str(err).replace("\n", "; ")))
    return results


def _load(root: Path):
    try:
        return load_manifest(root / "manifest.yaml"), []
    except ManifestError as err:
        return None, err.problems


def _need(manifest: Manifest | None) -> Manifest:
    if manifest is None:
        raise CheckFailed("skipped: the manifest is invalid")
    return manifest


def _manifest_valid(problems: list[str]) -> str:
    others = [p for p in problems if not p.endswith(": is required")]
    if others:
        raise CheckFailed("; ".join(others))
    return "matches the schema" if not problems else "no problem besides missing fields"


def _required_present(problems: list[str]) -> str:
    missing = [p.removesuffix(": is required") for p in problems if p.endswith(": is required")]
    if missing:
        raise CheckFailed("missing " + ", ".join(missing))
    if problems:
        raise CheckFailed("cannot tell: the manifest has other problems")
    return "services, nginx, network and their required keys"


def app_inputs(root: Path, manifest: Manifest) -> str:
    """Build contexts, secret files, and how the app is run and judged (with why root is risky)."""
    from ..engine.build import input_problem
    from ..model.manifest import Build
    from ..secrets import SecretError, read_all_app_secrets

    services = manifest.services
    problems = [problem for source in {services.build, services.canary.build} if isinstance(source, Build)
                if (problem := input_problem(root, source))]
    try:
        read_all_app_secrets(services.secrets, services.secret_files, root / ".swiftdeploy")
    except SecretError as err:
        problems.append(str(err))
    if problems:
        raise CheckFailed("; ".join(problems))
    details = [f"figures from {_SOURCES[manifest.metrics_source]}"]
    if services.secrets:
        details.append(f"secrets {', '.join(services.secrets)} present (0600)")
    if services.secret_files:
        details.append(f"secret files {', '.join(services.secret_files)} present (0600), mounted at /run/secrets")
    if services.allow_root:
        details.append("allow_root: true, risky: a process that escapes its container as root owns the host")
    elif services.user:
        details.append(f"runs as {services.user}")
    return "; ".join(details)


_SOURCES = {"scrape": "the bundled app's /metrics", "prometheus": "the stack's Prometheus",
            "nginx": "nginx's request log (no instrumentation needed)"}


def images_available(root: Path, manifest: Manifest) -> str:
    from ..engine import api as engine
    from ..model.manifest import BUNDLED

    services = manifest.services
    app_images = {services.image: services.build, services.canary.image: services.canary.build}
    missing, built, pulled = [], [], []
    stack_images = {manifest.nginx.image, manifest.opa.image}
    if manifest.prometheus.enabled:
        stack_images.add(manifest.prometheus.image)
    for image in sorted(set(app_images) | stack_images):
        if engine.image_present(image):
            continue
        source = app_images.get(image, "stack")
        if source is None:
            pulled.append(image)
        elif source != "stack" and (source != BUNDLED or (root / "app" / "Dockerfile").exists()):
            built.append(image)
        else:
            missing.append(image)
    if missing:
        raise CheckFailed(f"not present locally and not buildable here: {', '.join(missing)}")
    said = ([f"{', '.join(built)} will be built"] if built else []) + ([f"{', '.join(pulled)} will be pulled"] if pulled else [])
    return "; ".join(said) or "all present locally"


def certificate_usable(root: Path, manifest: Manifest) -> str:
    """nginx.tls: the files, the key's mode, the pair, the dates and the names, each a line naming the file."""
    from ..certificates import check

    tls = manifest.nginx.tls
    if tls is None:
        return "no nginx.tls: plain http only"
    return f"{tls.cert}: {check(tls, root).describe()}"


def port_available(manifest: Manifest, root: Path) -> str:
    tls = manifest.nginx.tls
    return "; ".join(_port_available(port, manifest, root) for port in (manifest.nginx.port, *([tls.port] if tls else [])))


def _port_available(port: int, manifest: Manifest, root: Path) -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
            return f"{port} is free"
        except OSError as err:
            if err.errno != errno.EADDRINUSE:
                raise CheckFailed(f"cannot bind {port}: {err.strerror}") from None
    if _our_nginx_publishes(root, manifest, port):
        return f"{port} is held by this stack's nginx (a redeploy)"
    raise CheckFailed(f"port {port} is already in use by another process")


def _our_nginx_publishes(root: Path, manifest: Manifest, port: int) -> bool:
    from ..engine import api as engine

    try:
        nginx = [c for c in _local_containers(root, manifest) if c.role == "nginx" and c.state == "running"]
        bindings = [(engine.inspect_container(c.id) or {}).get("HostConfig", {}).get("PortBindings") or {}
                    for c in nginx]
    except SwiftDeployError:
        return False
    return any(str(port) == b.get("HostPort") for found in bindings for spec in found.values() for b in spec or [])


def nginx_config_valid(root: Path, manifest: Manifest) -> str:
    from ..engine import api as engine

    generated = (root / "generated").resolve()
    if not (generated / "nginx.conf").exists():
        raise CheckFailed("generated/nginx.conf is missing (doit init)")
    # The upstream names resolve only inside the stack's network: point them at loopback for the check.
    hosts = {f"{manifest.services.name}-{track}": "127.0.0.1" for track in NGINX_CHECK_HOSTS}
    mounts = {str(generated): "/etc/swiftdeploy"}
    if manifest.nginx.tls:  # the certificate copies the config names (doit init put them there)
        from ..certificates import CONTAINER_DIR, TLS_DIR
        from ..secrets import SECRETS_DIR

        mounts[str((root / SECRETS_DIR / TLS_DIR).resolve())] = CONTAINER_DIR
    status, output = engine.run_once(
        manifest.nginx.image, ["nginx", "-t", "-c", "/etc/swiftdeploy/nginx.conf"], mounts,
        # as the image runs it: root master, which chowns its temp dirs for the workers (CAP_CHOWN only)
        user="0:0", cap_add=["CHOWN"], extra_hosts=hosts, tmpfs={"/tmp": "", "/var/tmp": ""})
    if status != 0:
        emerg = [line for line in output.splitlines() if "[emerg]" in line]
        raise CheckFailed(f"nginx -t in {manifest.nginx.image}: {(emerg or [last_line(output)])[0]}")
    return f"in {manifest.nginx.image}"


def _local_containers(root: Path, manifest: Manifest):
    """The stack's containers on this engine, by label: a Swarm task's too (its nginx binds the port here)."""
    from ..engine.runtime.compose import ComposeRuntime

    return ComposeRuntime(root / "generated" / "docker-compose.yml", manifest.project).containers()


def compose_valid(root: Path, manifest: Manifest) -> str:
    from ..engine.runtime.compose import ComposeRuntime

    # rendered for either runtime; Swarm's stack.yml is checked by docker stack deploy itself
    runtime = ComposeRuntime(root / "generated" / "docker-compose.yml", manifest.project)
    try:
        run(runtime.argv("config", "--quiet"), what="docker compose config", timeout=60)
    except CommandError as err:
        raise CheckFailed(str(err)) from None
    return "valid Compose Specification"


def policies_valid(root: Path, manifest: Manifest) -> str:
    from ..engine import api as engine

    policies = (root / "policies").resolve()
    status, output = engine.run_once(manifest.opa.image, ["check", "--strict", "/policies"],
                                     {str(policies): "/policies"}, network_mode="none")
    if status != 0:
        raise CheckFailed(f"opa check in {manifest.opa.image}: {last_line(output)}")
    return f"in {manifest.opa.image}"
