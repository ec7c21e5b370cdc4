"""`doit audit`'s action on histories of growing size: wall time, peak RSS and report sizes side by side.

Each history is written to a temporary project (reports/history.jsonl, policies/data.json): status records
every 2 s shaped like the real ones (stable, and canary during canary phases, with both policies), and every
~500 records a cycle of infra gate, promote canary, chaos error, denied canary gate, failed promotion, chaos
recover, allowed gate and promote stable (every third cycle a rollback instead), with failing scrapes while
the chaos lasts. The audit runs in a child process (the task's own write_report, so the same code path as
`doit audit`); its peak RSS comes from wait4() on that child alone. Prints figures and asserts nothing.

Run: .venv/bin/python bench/audit.py [--sizes 10000,100000,1000000] [--before REV] [--dir DIR]
     --before REV also runs the audit of git revision REV (from `git archive`) on the same histories.
"""

import argparse
import datetime
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START = datetime.datetime(2026, 11, 1, tzinfo=datetime.timezone.utc)
CYCLE = 500  # records between two deploy cycles


def ts(seconds: float) -> str:
    moment = START + datetime.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def track(rng: random.Random, error_rate: float) -> dict:
    requests = rng.randint(200, 300)
    errors = round(requests * error_rate)
    return {"requests": requests, "errors": errors, "error_rate": round(errors / requests, 6),
            "req_per_s": round(requests / 30, 3), "p99_ms": round(rng.uniform(35, 60), 3), "window_seconds": 30.0}


def status(rng: random.Random, clock: float, canary: bool, chaos: bool) -> dict:
    tracks = {"stable": track(rng, 0.0)}
    policies = {"infra": {"allow": True, "reasons": []}}
    if canary:
        tracks["canary"] = track(rng, 0.5 if chaos else 0.0)
        rate = tracks["canary"]["error_rate"]
        policies["canary"] = ({"allow": False, "reasons": [f"error rate {rate * 100:.2f}% is above the limit 1%"]}
                              if chaos else {"allow": True, "reasons": []})
    return {"ts": ts(clock), "event": "status", "mode": "canary" if canary else "stable",
            "chaos": "error" if chaos else "none", "tracks": tracks, "policies": policies}


def cycle_events(rng: random.Random, clock: float, number: int) -> list[tuple[float, dict]]:
    """The operations of one cycle at their offsets (s) from `clock`, and whether the canary runs after each."""
    version = f"1.{number}.0"
    infra_input = {"disk_free_bytes": 40_000_000_000, "disk_path": "/var/lib/containers", "load_1m": 0.7,
                   "cpu_count": 2}
    denied = {"window_seconds": 30.0, "requests": 250, "errors": 125, "error_rate": 0.5, "p99_ms": 48.1}
    allowed = {"window_seconds": 30.0, "requests": 251, "errors": 0, "error_rate": 0.0, "p99_ms": 41.3}
    ending = ([(200, {"event": "rollback", "outcome": "ok", "from_mode": "canary", "version": f"1.{number - 1}.0"})]
              if number % 3 == 0 else
              [(190, {"event": "gate", "domain": "canary", "operation": "promote:stable", "input": allowed,
                      "allow": True, "reasons": []}),
               (200, {"event": "promote", "to": "stable", "outcome": "ok", "from_mode": "canary", "version": version,
                      "canary_version": None, "weight": None})])
    events = [
        (0, {"event": "gate", "domain": "infra", "operation": "promote:canary", "input": infra_input, "allow": True,
             "reasons": []}),
        (5, {"event": "promote", "to": "canary", "outcome": "ok", "from_mode": "stable", "version": "1.0.0",
             "canary_version": version, "weight": 100}),
        (40, {"event": "chaos", "outcome": "ok", "mode": "error", "rate": 0.5, "status_code": 200}),
        (90, {"event": "gate", "domain": "canary", "operation": "promote:stable", "input": denied, "allow": False,
              "reasons": ["error rate 50.00% is above the limit 1%"]}),
        (91, {"event": "promote", "to": "stable", "outcome": "failed", "from_mode": "canary", "version": "1.0.0",
              "canary_version": version, "weight": 100, "error": "canary gate denied"}),
        (120, {"event": "chaos", "outcome": "ok", "mode": "recover", "status_code": 200}),
    ] + ending
    return [(clock + offset, {"ts": ts(clock + offset), **event}) for offset, event in events]


def write_history(path: Path, count: int) -> None:
    rng = random.Random(count)
    clock, written, number = 0.0, 0, 0
    with open(path, "w", encoding="utf-8") as out:
        while written < count:
            number += 1
            operations = cycle_events(rng, clock + 60, number)
            canary_from, chaos_from, chaos_to, canary_to = (operations[i][0] for i in (1, 2, 5, -1))
            for i in range(min(CYCLE, count - written)):
                while operations and operations[0][0] <= clock and written < count:
                    out.write(json.dumps(operations.pop(0)[1]) + "\n")
                    written += 1
                if written >= count:
                    break
                canary = canary_from <= clock < canary_to
                out.write(json.dumps(status(rng, clock, canary, chaos_from <= clock < chaos_to)) + "\n")
                written += 1
                clock += 2


def project_for(directory: Path, history_source: Path) -> Path:
    project = directory / "project"
    shutil.rmtree(project, ignore_errors=True)
    (project / "reports").mkdir(parents=True)
    (project / "policies").mkdir()
    shutil.copy(ROOT / "policies" / "data.json", project / "policies" / "data.json")
    os.link(history_source, project / "reports" / "history.jsonl")
    return project


_AUDIT = """
import sys
sys.path[:0] = [{code!r}, {code!r} + "/src"]
from tasks.audit import write_report
failed = write_report()
if failed:
    sys.exit(str(failed))
"""


def run_audit(project: Path, code: Path) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MB) of one audit in a child process."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", _AUDIT.format(code=str(code))], cwd=project,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             env={**os.environ, "PYTHONPATH": ""})
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    error = child.stderr.read().decode(errors="replace")
    if child.returncode != 0:
        raise SystemExit(f"audit failed on {project}: {error.strip().splitlines()[-1:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # ru_maxrss is in KB on Linux


def revision_tree(revision: str, directory: Path) -> Path:
    tree = directory / f"rev-{revision}"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "src", "tasks"], capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="history sizes, comma-separated")
    parser.add_argument("--before", metavar="REV", help="also run the audit of this git revision")
    parser.add_argument("--dir", type=Path, help="where to write the histories (default: a temporary directory)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    directory = Path(tempfile.mkdtemp(prefix="bench-audit-", dir=args.dir))
    print(f"{os.cpu_count()} CPUs ({cpu_model()}), Linux {platform.release()}, Python {platform.python_version()}")
    codes = [("this tree", ROOT)] + ([(args.before, revision_tree(args.before, directory))] if args.before else [])
    print(f"{'records':>9} {'history':>9} {'code':>12} {'wall':>8} {'CPU':>8} {'peak RSS':>9} {'report.md':>10} "
          f"{'report.html':>12}")
    try:
        for size in sizes:
            history = directory / f"history-{size}.jsonl"
            write_history(history, size)
            megabytes = history.stat().st_size / 1e6
            for label, code in codes:
                project = project_for(directory, history)
                seconds, cpu, peak = run_audit(project, code)
                reports = project / "reports"
                markdown = (reports / "audit_report.md").stat().st_size / 1e6
                html = reports / "audit_report.html"
                html_size = f"{html.stat().st_size / 1e6:.2f} MB" if html.exists() else "-"
                print(f"{size:>9} {megabytes:>6.1f} MB {label[:12]:>12} {seconds:>6.2f} s {cpu:>6.2f} s {peak:>6.0f} MB "
                      f"{markdown:>7.2f} MB {html_size:>12}", flush=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
