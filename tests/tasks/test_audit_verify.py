"""`doit audit:verify` and `./swiftdeploy audit verify` on a project copy: exit 0 intact, 1 not, one line each."""

import subprocess
import sys

from projectkit import run_doit
from swiftdeploy.evidence.history import History


def run_wrapper(project, *words):
    return subprocess.run([sys.executable, str(project / "swiftdeploy"), *words], cwd=project,
                          capture_output=True, text=True, timeout=120)


def test_audit_verify_exit_codes_through_doit_and_the_wrapper(project):
    missing = run_wrapper(project, "audit", "verify")
    assert missing.returncode == 1
    assert missing.stderr == "swiftdeploy: audit:verify: reports/history.jsonl: missing: no history to verify\n"

    history = History(project / "reports" / "history.jsonl", key_dir=project / ".swiftdeploy")
    for n in range(5):
        history.append("deploy", n=n)
    intact = run_wrapper(project, "audit", "verify")
    assert intact.returncode == 0, intact.stderr
    assert "reports/history.jsonl: intact: records 1-5 chained, lines 1-5" in intact.stdout

    content = history.path.read_bytes().splitlines(keepends=True)
    content[1], content[2] = content[2], content[1]
    history.path.write_bytes(b"".join(content))
    for result in (run_wrapper(project, "audit", "verify"), run_doit(project, "audit:verify")):
        assert result.returncode == 1
        assert result.stderr == ("swiftdeploy: audit:verify: reports/history.jsonl:2: record 3 follows record 1: "
                                 "record 2 deleted or moved\n")

    report = run_wrapper(project, "audit")  # the report is still written from a history that is not intact
    assert report.returncode == 0, report.stderr
    assert (project / "reports" / "audit_report.md").exists()
