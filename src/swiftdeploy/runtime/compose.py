"""The stack on a Docker-API engine, driven with Compose. Each command is an argv (tested as data) that
commands.run() executes; observations come from the engine API in one list call."""

import subprocess
from dataclasses import dataclass
from pathlib import Path

from .. import engine
from ..commands import run
from ..state import (APP_HASH_LABEL, COMPOSE_PROJECT_LABEL, PROJECT_LABEL, Container, ImageFact,
                     container_from_list_entry)
from ..tools import compose_binary


@dataclass(frozen=True)
class ComposeRuntime:
    compose_file: Path
    project: str
    compose: tuple[str, ...] = ()

    def argv(self, *args: str) -> list[str]:
        return [*(self.compose or compose_binary()), "-f", str(self.compose_file), "-p", self.project, *args]

    def up_argv(self, services=(), *, no_deps=False, recreate=False, wait_seconds=60):
        args = ["up", "-d", "--wait", "--wait-timeout", str(wait_seconds)]
        if no_deps:
            args.append("--no-deps")
        if recreate:
            args.append("--force-recreate")
        return self.argv(*args, *services)

    def up(self, services=(), *, no_deps=False, recreate=False, wait_seconds=60) -> None:
        """Create (or recreate), start, and wait until running and healthy."""
        argv = self.up_argv(services, no_deps=no_deps, recreate=recreate, wait_seconds=wait_seconds)
        run(argv, what=f"compose up {' '.join(services)}".rstrip(), timeout=wait_seconds + 120)

    def down(self) -> None:
        run(self.argv("down", "--remove-orphans", "--volumes"), what="compose down", timeout=180)

    def exec(self, service: str, command: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a command in a service's running container; the caller reads returncode, stdout and stderr.

        Through the engine API, not `compose exec`: a quarter of the time, and it reaches containers compose
        does not know (an orphan). The commands run here bound their own time (nginx -s, /app/scrape).
        """
        running = [c for c in self.containers() if service in (c.compose_service, c.id) and c.state == "running"]
        if not running:
            return subprocess.CompletedProcess(command, 1, "", f"no running container of {service}")
        code, out, err = engine.exec_in(running[0].id, command)
        return subprocess.CompletedProcess(command, code, out, err)

    def containers(self) -> list[Container]:
        """Every container of the stack: ours by label (hand-made ones too); else any that compose made for
        this project name before the labels existed (one more call only then)."""
        entries = (engine.containers(f"{PROJECT_LABEL}={self.project}")
                   or engine.containers(f"{COMPOSE_PROJECT_LABEL}={self.project}"))
        return [container_from_list_entry(entry, engine.inspect_container) for entry in entries]

    def images(self, references) -> dict[str, ImageFact]:
        facts = {}
        for reference in dict.fromkeys(references):
            image = engine.inspect_image(reference)
            labels = ((image or {}).get("Config") or {}).get("Labels") or {}
            facts[reference] = ImageFact(id=image["Id"] if image else None, app_hash=labels.get(APP_HASH_LABEL))
        return facts

    def remove(self, container_ids) -> None:
        for container_id in container_ids:
            engine.remove_container(container_id)

    def build(self, root: Path, references, source_hash: str) -> str:
        from ..build import build

        return build(root, references, source_hash)

    def tag(self, image_id: str, reference: str) -> None:
        engine.tag_image(image_id, *engine.split_reference(reference))

    def untag(self, reference: str) -> None:
        engine.untag_image(reference)
