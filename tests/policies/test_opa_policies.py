"""The policy checks CI runs (SPEC P-4): opa test, opa check --strict, opa fmt, and full coverage.

A missing opa binary makes these tests fail (opa_binary() raises), never skip.
"""

from __future__ import annotations

import json
import re
import subprocess

from swiftdeploy.engine.tools import PROJECT_ROOT, opa_binary

POLICIES = PROJECT_ROOT / "policies"


def opa(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([opa_binary(), *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)


def explain(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"


def test_opa_test_passes():
    result = opa("test", "policies/", "-v", "--fail-on-empty")
    assert result.returncode == 0, explain(result)
    passed = re.search(r"^PASS: (\d+)/(\d+)$", result.stdout, re.MULTILINE)
    assert passed and passed.group(1) == passed.group(2) and int(passed.group(1)) >= 50, explain(result)


def test_every_domain_and_authz_has_tests():
    for policy in ("infra.rego", "canary.rego", "system/authz.rego"):
        assert (POLICIES / policy.replace(".rego", "_test.rego")).is_file(), policy
    result = opa("test", "policies/", "-v")
    for package in ("swiftdeploy.infra_test", "swiftdeploy.canary_test", "system.authz_test"):
        assert f"data.{package}.test_" in result.stdout, package


def test_opa_check_strict_is_clean():
    result = opa("check", "--strict", "policies/")
    assert result.returncode == 0, explain(result)


def test_opa_fmt_is_clean():
    result = opa("fmt", "--list", "--fail", "policies/")
    assert result.returncode == 0 and result.stdout.strip() == "", explain(result)


def test_policy_coverage_is_complete():
    result = opa("test", "--coverage", "--threshold", "100", "policies/")
    assert result.returncode == 0, explain(result)
    report = json.loads(result.stdout)
    assert report["coverage"] == 100, {f: v.get("not_covered") for f, v in report["files"].items()}


def test_thresholds_live_only_in_data_json():
    data = json.loads((POLICIES / "data.json").read_text())
    assert data == {
        "infra": {"min_disk_free_gb": 10, "max_load_1m": 2.0},
        "canary": {"max_error_rate": 0.01, "max_p99_ms": 500, "min_requests": 20, "min_window_seconds": 30,
                   "max_error_rate_increase": 0.005, "max_p99_ratio": 1.5, "p99_ratio_floor_ms": 100,
                   "min_requests_for_p99_ratio": 500, "error_rate_increase_z": 2.33},
    }
    for policy in ("infra.rego", "canary.rego"):
        text = (POLICIES / policy).read_text()
        code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
        for figure in ("0.01", "500", "2.0", "0.005", "1.5"):
            assert figure not in code, f"{policy} writes {figure.strip()} in Rego; thresholds belong in data.json"
