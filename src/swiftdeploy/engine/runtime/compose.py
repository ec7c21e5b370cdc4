"""The stack on a Docker-API engine, driven with Compose. Each command is an argv (tested as data) that
commands.run() executes; observations come from the engine API in one list call."""

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .. import api as engine
from ...commands import Background, run
from ...state import COMPOSE_PROJECT_LABEL, PROJECT_LABEL, Container, container_from_list_entry
from ..tools import compose_binary
from .app_inputs import AppInputs
from .images import EngineImages
from .output import EngineOutput


@dataclass
class ComposeRuntime(AppInputs, EngineImages, EngineOutput):
    definition_file = "docker-compose.yml"
    compose_file: Path
    project: str
    compose: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()  # the app's secrets (names): their values reach compose in its environment
    secret_files: tuple[str, ...] = ()  # the app's file secrets (names): files in a folder compose mounts
    state_dir: Path = Path(".swiftdeploy")
    early: tuple | None = field(default=None, repr=False)  # (services, Background) started ahead of time

    def argv(self, *args: str) -> list[str]:
        return [*(self.compose or compose_binary()), "-f", str(self.compose_file), "-p", self.project, *args]

    def up_argv(self, services=(), *, no_deps=False, recreate=False, wait=True, wait_seconds=60):
        args = ["up", "-d", *(["--wait", "--wait-timeout", str(wait_seconds)] if wait else [])]
        if no_deps:
            args.append("--no-deps")
        if recreate:
            args.append("--force-recreate")
        return self.argv(*args, *services)

    def start_early(self, service: str) -> None:
        """Start a stopped service in the background now; the up() that asks for it later takes it over.

        For OPA, which a cold deploy must start before it can ask the infra gate: started while the deploy
        imports, reads the manifest and plans, it is up half a second sooner. A running one is left alone
        (on Podman, `compose up` recreates a running container)."""
        if any(c.compose_service == service and c.state == "running" for c in self.containers()):
            return
        argv = self.up_argv([service], no_deps=True, wait=False)
        self.early = ((service,), Background(argv, f"compose up {service}"))

    def settle(self) -> tuple[str, ...]:
        """Wait for a start_early() to finish (never two compose runs at once); the services it started."""
        if self.early is None:
            return ()
        (started, background), self.early = self.early, None
        background.wait(timeout=180)
        return started

    def up(self, services=(), *, no_deps=False, recreate=False, wait=True, wait_seconds=60) -> None:
        """Create (or recreate) and start; with wait, until running and healthy."""
        if self.settle() == tuple(services) and not recreate:
            return
        argv = self.up_argv(services, no_deps=no_deps, recreate=recreate, wait=wait, wait_seconds=wait_seconds)
        self.install_health_probe(self.compose_file)
        env = self.secrets_environment()
        run(argv, what=f"compose up {' '.join(services)}".rstrip(), timeout=wait_seconds + 120, env=env)

    def down(self) -> None:
        run(self.argv("down", "--remove-orphans", "--volumes"), what="compose down", timeout=180)
        from ...certificates import TLS_DIR
        from ...secrets import prune_secret_files

        prune_secret_files((), self.state_dir)  # no container holds any set of values now
        prune_secret_files((), self.state_dir, base=TLS_DIR)  # nor any certificate copy

    def exec(self, service: str, command: list[str]) -> subprocess.CompletedProcess:
        """Run a command in a service's running container; the caller reads returncode, stdout and stderr."""
        running = [c for c in self.containers() if c.compose_service == service and c.state == "running"]
        if not running:
            return subprocess.CompletedProcess(command, 1, "", f"no running container of {service}")
        return self.exec_container(running[0].id, command)

    def exec_container(self, container_id: str, command: list[str]) -> subprocess.CompletedProcess:
        """Through the engine API, not `compose exec`: a quarter of the time, and it reaches containers compose
        does not know (an orphan). The commands run here bound their own time (nginx -s, /app/scrape)."""
        code, out, err = engine.exec_in(container_id, command)
        return subprocess.CompletedProcess(command, code, out, err)

    def containers(self) -> list[Container]:
        """Every container of the stack: ours by label (hand-made ones too); else any that compose made for
        this project name before the labels existed (one more call only then)."""
        entries = (engine.containers(f"{PROJECT_LABEL}={self.project}")
                   or engine.containers(f"{COMPOSE_PROJECT_LABEL}={self.project}"))
        return [container_from_list_entry(entry, engine.inspect_container) for entry in entries]

    def unready_reason(self, service: str) -> str:
        """Why a service's container is not ready: its last health answers and its last log lines."""
        found = [c for c in self.containers() if c.compose_service == service]
        if not found:
            return "no container was created"
        newest = max(found, key=lambda c: c.created)
        return why_unready(engine.inspect_container(newest.id) or {}, engine.container_logs(newest.id))

    def remove(self, container_ids) -> None:
        self.settle()
        for container_id in container_ids:
            engine.remove_container(container_id)
        self.prune_secret_files()

    # A killed compose's last request goes on inside the engine: a `stop` it sent takes up to the 10 s grace,
    # and meanwhile the container still reads as running and healthy. Seen on Docker Engine: a rollback that
    # observed at once routed everything to a stable that was being stopped (504s).
    SETTLE_SECONDS = 15.0

    def settle_after_interruption(self, last_acted: float, say=print) -> None:
        """Wait until a killed run's engine requests are over before observing what they left."""
        import time

        remaining = last_acted + self.SETTLE_SECONDS - time.time()
        if remaining > 0:
            say(f"waiting {remaining:.0f} s for what the interrupted run asked of the engine to finish")
            time.sleep(remaining)

    def host_facts(self) -> dict:
        """The infra gate's facts, measured on the engine's host (probe.py), not the CLI's."""
        from .. import probe

        return probe.current_facts(engine.data_path)

    def prefetch_facts(self) -> None:
        """Start measuring the engine's host for the infra gate, in the background while OPA starts."""
        from .. import probe

        probe.measure_soon(engine.data_path)

    def metrics_texts(self, service: str, container_id: str | None = None) -> list[str]:
        """The /metrics text of a track: one container per track here (`container_id` may be an orphan's)."""
        command = ["/app/scrape"]
        return [_checked(self.exec_container(container_id, command) if container_id else self.exec(service, command))]


def why_unready(inspected: dict, log_lines: list[str]) -> str:
    """`last answers: ...; last log lines: ...` from a container's inspect answer and output (one line)."""
    state = inspected.get("State") or {}
    answers = [" ".join(str(entry.get("Output", "")).split())[:120] or f"exit {entry.get('ExitCode')}"
               for entry in ((state.get("Health") or {}).get("Log") or [])[-3:]]
    parts = []
    if state.get("Status") in ("exited", "dead"):
        parts.append(f"it exited with {state.get('ExitCode')}")
    parts.append(f"last answers: {' | '.join(answers)}" if answers else "no health answer yet")
    lines = [" ".join(line.split())[:160] for line in log_lines[-5:]]
    parts.append(f"last log lines: {' | '.join(lines)}" if lines else "it printed nothing")
    return "; ".join(parts)


def _checked(result: subprocess.CompletedProcess) -> str:
    from ...errors import SwiftDeployError

    if result.returncode != 0:
        raise SwiftDeployError((result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1])
    return result.stdout
