"""Why history records are written with one write(): a benchmark that prints figures and asserts nothing.

Part 1: 8 processes append JSON records (200 B .. 300 KB) to one O_APPEND file at once, with one write()
per record, with two write() calls per record (JSON, then "\\n"), and through History.append. Prints how many
lines parse and how many are corrupt. Part 2: History.append throughput for 300 B and 30 KB records.
Part 3 (--big N): append throughput onto a file that already holds N chained records (the previous link
is read from the tail, so it should not depend on N), and audit:verify's time and peak memory on it.

Run: .venv/bin/python bench/history_append.py [--dir DIR] [--writers 8] [--records 150] [--big 200000]
"""

import argparse
import json
import multiprocessing
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from swiftdeploy.evidence import history_chain
from swiftdeploy.evidence.history import History

SIZES = [200, 6_000, 70_000, 300_000]


def _append(path: str, method: str, worker: int, count: int) -> None:
    rng = random.Random(worker)
    history = History(path, key_dir=Path(path).parent / "keys")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for seq in range(count):
        fields = {"worker": worker, "seq": seq, "pad": "x" * rng.choice(SIZES)}
        if method == "History.append":
            history.append("load", **fields)
            continue
        body = json.dumps(fields).encode()
        if method == "one write()":
            os.write(fd, body + b"\n")
        else:
            os.write(fd, body)
            os.write(fd, b"\n")
    os.close(fd)


def run_writers(path: Path, method: str, writers: int, count: int) -> float:
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_append, args=(str(path), method, w, count)) for w in range(writers)]
    started = time.perf_counter()
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    return time.perf_counter() - started


def count_lines(path: Path) -> tuple[int, int]:
    good = bad = 0
    for line in path.read_bytes().split(b"\n")[:-1]:
        try:
            json.loads(line)
            good += 1
        except ValueError:
            bad += 1
    return good, bad


def throughput(directory: Path, size: int, seconds: float = 1.5) -> float:
    path = directory / f"throughput-{size}.jsonl"
    history, pad, done = History(path, key_dir=directory / "keys"), "y" * size, 0
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        for _ in range(50):
            history.append("scrape", pad=pad)
        done += 50
    elapsed = time.perf_counter() - started
    path.unlink()
    path.with_suffix(".head").unlink()
    return done / elapsed


def big_history(directory: Path, records: int) -> History:
    """A history of `records` chained 300 B records, sealed in memory and written at once (fast to make)."""
    history = History(directory / "big.jsonl", key_dir=directory / "keys")
    history.append("first", pad="z" * 300)
    key, link = history._key, history_chain.Link(1, json.loads(history.path.read_bytes())["hmac"])
    with open(history.path, "a", encoding="utf-8") as file:
        for n in range(records - 1):
            record = {"ts": "2026-11-28T12:00:00.000Z", "event": "scrape", "n": n, "pad": "z" * 300}
            link = history_chain.seal(record, link, key)
            file.write(json.dumps(record, ensure_ascii=False) + "\n")
    history_chain.write_head(history.head_path, link, key)
    return history


def append_rate(history: History, seconds: float = 1.5) -> float:
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(50):
            history.append("scrape", pad="y" * 300)
        done += 50
    return done / (time.perf_counter() - started)


def filesystem_of(directory: Path) -> str:
    best = ("", "?")
    with open("/proc/mounts") as mounts:
        for line in mounts:
            _, mount_point, fs_type, *_ = line.split()
            if str(directory.resolve()).startswith(mount_point) and len(mount_point) > len(best[0]):
                best = (mount_point, fs_type)
    return f"{best[1]} (mounted on {best[0]})"


def fresh_interpreter(statement: str) -> dict:
    """Run statement in a new Python (history_chain imported) and return its time, output and peak RSS."""
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over fork and exec from this process.
    code = ("import re, time\nfrom pathlib import Path\nfrom swiftdeploy.history_chain import verify\n"
            f"started = time.perf_counter()\n{statement}\nseconds = time.perf_counter() - started\n"
            "print(seconds, re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read())[1])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    *output, figures = result.stdout.splitlines()
    seconds, rss_kb = figures.split()
    return {"seconds": float(seconds), "rss_mb": int(rss_kb) / 1024, "output": " ".join(output)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--records", type=int, default=150, help="records per writer")
    parser.add_argument("--big", type=int, default=0, help="records in the big history of part 3 (0: skip)")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="history-bench-", dir=args.dir))
    try:
        print(f"machine: nproc={os.cpu_count()} (usable {len(os.sched_getaffinity(0))}), "
              f"python {platform.python_version()}, {platform.system()} {platform.release()}, "
              f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"files: {directory} on {filesystem_of(directory)}")
        print(f"\n{args.writers} concurrent writers x {args.records} records, sizes {SIZES} bytes:")
        print(f"{'method':<24}{'records':>9}{'parsed OK':>11}{'corrupt lines':>15}{'seconds':>9}")
        for method in ["one write()", "two write()s", "History.append"]:
            path = directory / "concurrent.jsonl"
            elapsed = run_writers(path, method, args.writers, args.records)
            good, bad = count_lines(path)
            print(f"{method:<24}{args.writers * args.records:>9}{good:>11}{bad:>15}{elapsed:>9.2f}")
            path.unlink()
        print("\nHistory.append throughput, one process (flock + tail check + one write per record):")
        for size in (300, 30_000):
            print(f"  {size:>6} B records: {throughput(directory, size):>9,.0f} records/s")
        if args.big:
            history = big_history(directory, args.big)
            megabytes = history.path.stat().st_size / 1e6
            print(f"\nA history of {args.big:,} chained records ({megabytes:.0f} MB):")
            print(f"  History.append onto it, 300 B records: {append_rate(history):>9,.0f} records/s")
            floor = fresh_interpreter("pass")
            paths = ", ".join(f"Path({str(path)!r})" for path in (history.path, history.head_path, history.key_dir))
            checked = fresh_interpreter(f"print(verify({paths}).intact)")
            print(f"  verify, in a fresh interpreter: {checked['seconds']:.2f} s "
                  f"({args.big / checked['seconds']:,.0f} records/s), intact: {checked['output']}, peak RSS "
                  f"{checked['rss_mb']:.0f} MB (the same interpreter doing nothing: {floor['rss_mb']:.0f} MB)")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
