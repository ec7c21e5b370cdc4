"""One way to run external commands: every way a command can fail is one line naming what was being done."""

import os
import subprocess
import sys
import time

import pytest

from projectkit import ROOT
from swiftdeploy.commands import CommandError, run
from swiftdeploy.present.preflight import CheckFailed, compose_valid
from swiftdeploy.model.manifest import load_manifest


def test_a_missing_binary_is_one_line():
    with pytest.raises(CommandError, match=r"^compose up: /nonexistent/docker-compose not found$"):
        run(["/nonexistent/docker-compose", "up"], what="compose up", timeout=5)


def test_a_time_out_is_one_line():
    with pytest.raises(CommandError, match=r"^nginx -s reload did not finish within 0.5 s$"):
        run([sys.executable, "-c", "import time; time.sleep(5)"], what="nginx -s reload", timeout=0.5)


def test_a_non_zero_exit_names_the_last_line_of_stderr():
    script = "import sys; print('warming up', file=sys.stderr); print('no such service: app-canary', file=sys.stderr); sys.exit(3)"
    with pytest.raises(CommandError) as caught:
        run([sys.executable, "-c", script], what="compose rm", timeout=10)
    assert str(caught.value) == "compose rm failed: no such service: app-canary"


def test_check_false_returns_the_result():
    result = run([sys.executable, "-c", "import sys; sys.exit(4)"], what="x", timeout=10, check=False)
    assert result.returncode == 4


def test_a_child_dies_with_its_parent():
    """A SIGKILLed operation must not leave a compose process changing containers behind the next command."""
    code = ("import sys; sys.path.insert(0, %r); from swiftdeploy.commands import run; "
            "run(['sleep', '30'], what='sleep', timeout=60)" % str(ROOT / "src"))
    parent = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 10
    child = None
    while child is None and time.monotonic() < deadline:
        found = subprocess.run(["pgrep", "-P", str(parent.pid)], capture_output=True, text=True).stdout.split()
        child = int(found[0]) if found else None
        time.sleep(0.05)
    assert child is not None
    parent.kill()
    parent.wait()
    for _ in range(100):
        if not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail("the child outlived its killed parent")


def test_validate_with_a_missing_compose_binary_fails_its_check_in_one_line(project, monkeypatch):
    monkeypatch.setenv("SWIFTDEPLOY_COMPOSE", "/nonexistent/docker-compose")
    (project / "generated").mkdir()
    with pytest.raises(CheckFailed) as caught:
        compose_valid(project, load_manifest(project / "manifest.yaml"))
    assert str(caught.value) == "docker compose config: /nonexistent/docker-compose not found"
