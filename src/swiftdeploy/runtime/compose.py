"""The stack as Docker Compose sees it. Each method builds an argv (tested as data), then runs it."""

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import SwiftDeployError
from ..tools import compose_binary


class ComposeError(SwiftDeployError):
    pass


@dataclass(frozen=True)
class ComposeRuntime:
    compose_file: Path
    project: str
    compose: tuple[str, ...] = ()

    def argv(self, *args: str) -> list[str]:
        return [*(self.compose or compose_binary()), "-f", str(self.compose_file), "-p", self.project, *args]

    def up_argv(self, services=(), *, no_deps=False, recreate=None, remove_orphans=False, wait_seconds=60):
        args = ["up", "-d", "--wait", "--wait-timeout", str(wait_seconds)]
        if no_deps:
            args.append("--no-deps")
        if recreate == "force":
            args.append("--force-recreate")
        elif recreate == "never":
            args.append("--no-recreate")
        if remove_orphans:
            args.append("--remove-orphans")
        return self.argv(*args, *services)

    def up(self, services=(), **options) -> None:
        """Start (or converge) services and wait until they are running and healthy."""
        wait = options.get("wait_seconds", 60)
        self._run(self.up_argv(services, **options), timeout=wait + 120, what="compose up")

    def down(self, volumes=True) -> None:
        args = ["down", "--remove-orphans"] + (["--volumes"] if volumes else [])
        self._run(self.argv(*args), timeout=180, what="compose down")

    def remove(self, services) -> None:
        """Stop and remove the containers of some services (they stay in the compose file)."""
        self._run(self.argv("rm", "--stop", "--force", *services), timeout=120, what="compose rm")

    def exec(self, service: str, command: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a command in a service's container; the caller reads returncode, stdout and stderr."""
        argv = self.argv("exec", "-T", service, *command)
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ComposeError(f"{' '.join(command)} in {service} did not finish within {timeout:.0f} s") from None

    def running(self) -> dict[str, dict]:
        """Service name -> its container's state ({"State", "Health", ...}) for this project's containers."""
        result = self._run(self.argv("ps", "--all", "--format", "json"), timeout=60, what="compose ps")
        return {entry["Service"]: entry for entry in parse_ps(result.stdout)}

    def _run(self, argv, timeout, what) -> subprocess.CompletedProcess:
        try:
            result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ComposeError(f"{what} did not finish within {timeout} s") from None
        except FileNotFoundError:
            raise ComposeError(f"{what}: {argv[0]} not found") from None
        if result.returncode != 0:
            raise ComposeError(f"{what} failed: {last_line(result.stderr) or f'exit {result.returncode}'}")
        return result


def parse_ps(text: str) -> list[dict]:
    """`compose ps --format json` prints one JSON object per line (v2.21+) or one JSON array (older)."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""
