"""The HTTP health probe (tools/health-probe), built by scripts/build-health-probe into .tools/bin."""

import subprocess

import pytest

from projectkit import ROOT

PROBE = ROOT / ".tools" / "bin" / "swiftdeploy-health"


def built_probe():
    """The probe binary, built first when it is missing or older than its sources (the script is a no-op
    otherwise). Fails, never skips, when it cannot be built."""
    result = subprocess.run([str(ROOT / "scripts" / "build-health-probe")], capture_output=True, text=True,
                            timeout=300)
    if result.returncode != 0 or not PROBE.is_file():
        pytest.fail(f"scripts/build-health-probe failed (exit {result.returncode}): {result.stderr.strip()}")
    return PROBE
