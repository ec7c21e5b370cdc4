"""Helpers for tests that need a working copy of the project or run doit in one."""

import importlib.machinery
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT_FILES = ["dodo.py", "swiftdeploy", "manifest.yaml", "tasks", "src", "templates", "policies", "app"]


def copy_project(destination: Path) -> Path:
    """A working copy of the project (code, templates, manifest, policies) without any generated state."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.exists():
            shutil.copy2(source, destination / name)
    if (ROOT / ".tools").is_dir():  # the binaries scripts/setup fetched (opa, promtool, the probe's busybox)
        (destination / ".tools").symlink_to(ROOT / ".tools")
    return destination


def run_doit(project: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "doit", *args], cwd=project, capture_output=True,
                            text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"doit {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def load_wrapper():
    """The ./swiftdeploy script as a module (it has no .py name to import it by)."""
    loader = importlib.machinery.SourceFileLoader("swiftdeploy_wrapper", str(ROOT / "swiftdeploy"))
    spec = importlib.util.spec_from_loader("swiftdeploy_wrapper", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def sigkill_a_writer(script: str, args, rng) -> None:
    """Run `python -c script *args`, wait for its "ready" line, SIGKILL it a random moment later."""
    import signal
    import time

    writer = subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "ready\n"
    time.sleep(rng.uniform(0.005, 0.15))
    writer.send_signal(signal.SIGKILL)
    writer.wait(10)
    writer.stdout.close()
