"""The one place external commands run (compose, `docker exec` through compose, nginx, opa).

Callers build an argv (data, tested as data); run() executes it. A missing binary, a time-out or a
non-zero exit becomes one CommandError line that says what was being done, never a traceback. Children
die with us (PR_SET_PDEATHSIG): a SIGKILLed operation must not leave a compose process changing
containers behind the back of the next command, which re-observes the engine and converges from there.
"""

import ctypes
import os
import signal
import subprocess

from .errors import SwiftDeployError

_PR_SET_PDEATHSIG = 1


class CommandError(SwiftDeployError):
    pass


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not glibc: the child may outlive a killed parent, nothing worse
        pass


def run(argv: list[str], *, what: str, timeout: float, check: bool = True, input: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run argv to completion; CommandError when it cannot start, times out, or (check) exits non-zero.
    `env` is added to our environment (the app's secrets for compose: never in argv, where ps shows them)."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input,
                                preexec_fn=_die_with_parent, env={**os.environ, **env} if env else None)
    except FileNotFoundError:
        raise CommandError(f"{what}: {argv[0]} not found") from None
    except PermissionError:
        raise CommandError(f"{what}: {argv[0]} is not executable") from None
    except subprocess.TimeoutExpired:
        raise CommandError(f"{what} did not finish within {timeout:g} s") from None
    if check and result.returncode != 0:
        raise CommandError(f"{what} failed: {last_line(result.stderr) or last_line(result.stdout) or f'exit {result.returncode}'}")
    return result


def last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


class Background:
    """A command started now and waited for later (run() semantics at the wait)."""

    def __init__(self, argv: list[str], what: str):
        self.argv, self.what = argv, what
        try:
            self.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                            preexec_fn=_die_with_parent)
        except OSError:
            self.process = None

    def wait(self, timeout: float) -> subprocess.CompletedProcess:
        if self.process is None:
            raise CommandError(f"{self.what}: {self.argv[0]} not found")
        try:
            out, err = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise CommandError(f"{self.what} did not finish within {timeout:g} s") from None
        if self.process.returncode != 0:
            raise CommandError(f"{self.what} failed: {last_line(err) or last_line(out) or f'exit {self.process.returncode}'}")
        return subprocess.CompletedProcess(self.argv, self.process.returncode, out, err)
