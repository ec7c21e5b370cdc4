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


def test_segments_through_the_cli_verify_audit_and_name_a_missing_one(project):
    """Sealed segments as the CLI sees them: verify walks them all, audit counts every record, a removed
    segment is named by `audit verify`, and retention's removal keeps it green."""
    import datetime

    history = History(project / "reports" / "history.jsonl", key_dir=project / ".swiftdeploy", segment_bytes=3_000)
    for n in range(25):
        history.append("deploy", n=n, pad="x" * 150)
    assert len(history.files()) == 3
    intact = run_wrapper(project, "audit", "verify")
    assert intact.returncode == 0, intact.stderr
    assert "intact: records 1-25 chained across 3 segments" in intact.stdout
    report = run_wrapper(project, "audit")
    assert report.returncode == 0 and "(25 records)" in report.stdout, report.stdout + report.stderr

    middle = history.path.with_name("history-000002.jsonl")
    kept = middle.read_bytes()
    middle.unlink()
    broken = run_wrapper(project, "audit", "verify")
    assert broken.returncode == 1
    assert broken.stderr == ("swiftdeploy: audit:verify: reports/history-000002.jsonl is missing (or more): "
                             "records 11-20 gone\n")
    middle.write_bytes(kept)

    history.keep_days = 1
    assert len(history.remove_expired(now=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2))) == 2
    retained = run_wrapper(project, "audit", "verify")
    assert retained.returncode == 0, retained.stderr
    assert "segments 1-2 removed by retention" in retained.stdout
