"""What nginx's per-track servers cost: req/s and latency through the generated nginx.conf, now and at a
git revision before them, side by side in one run.

Each variant is the real rendered config (seed manifest, stable mode and a canary at 50 %) run by the host's
nginx, with the tracks' names pointed at a second nginx on loopback that answers 200 itself (so the app is
not the bottleneck), loaded by ApacheBench (apache2-utils) with a fresh connection per request, as the e2e
load does, and with keep-alive.

Usage: .venv/bin/python bench/nginx_hop.py [--before REV] [--requests N] [--concurrency C]
"""

import argparse
import dataclasses
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from swiftdeploy.model.manifest import load_manifest  # noqa: E402
from swiftdeploy.render.templates import render  # noqa: E402

UPSTREAM_CONF = """worker_processes 1;
pid {dir}/upstream.pid;
error_log {dir}/upstream.err warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    server {{ listen 127.0.0.1:{port}; keepalive_requests 100000; location / {{ return 200 "ok"; }} }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def nginx() -> str:
    return shutil.which("nginx") or "/usr/sbin/nginx"


def wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nginx on {port} did not start")


def require_ab() -> None:
    if not shutil.which("ab"):
        raise SystemExit("ab not found: apt-get install apache2-utils (scripts/test-registry installs it)")


def start_upstream(directory: Path, port: int) -> subprocess.Popen:
    """A second nginx on loopback that answers 200 itself, where a track's app would be."""
    (directory / "upstream.conf").write_text(UPSTREAM_CONF.format(dir=directory, port=port))
    process = subprocess.Popen([nginx(), "-c", str(directory / "upstream.conf"), "-g", "daemon off; user root;"],
                               stderr=subprocess.DEVNULL)
    wait_for(port)
    return process


HEADER = (f"{'fresh conn req/s':>17} {'p50 ms':>7} {'p99 ms':>7} {'keep-alive req/s':>17} {'p50 ms':>7} {'p99 ms':>7}")


def figures(fresh, kept) -> str:
    return f"{fresh[0]:>17.0f} {fresh[1]:>7.0f} {fresh[2]:>7.0f} {kept[0]:>17.0f} {kept[1]:>7.0f} {kept[2]:>7.0f}"


def templates_at(revision: str, directory: Path) -> Path:
    out = directory / f"templates-{revision}"
    out.mkdir()
    for name in ("nginx.conf.j2",):
        text = subprocess.run(["git", "show", f"{revision}:templates/{name}"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout
        (out / name).write_text(text)
    return out


def localized(text: str, workdir: Path, upstream: int, port: int) -> str:
    return (text.replace("/var/tmp/", "@@DIR@@").replace("/tmp/", "@@DIR@@").replace("@@DIR@@", f"{workdir}/")
                .replace("app-stable:3000", f"127.0.0.1:{upstream}").replace("app-canary:3000", f"127.0.0.1:{upstream}")
                .replace("listen 8080;", f"listen 127.0.0.1:{port};"))


def manifest_in(mode: str):
    m = load_manifest(ROOT / "manifest.yaml")
    services = dataclasses.replace(m.services, mode=mode, canary=dataclasses.replace(m.services.canary, weight=50))
    return dataclasses.replace(m, services=services)


def ab(port: int, requests: int, concurrency: int, keepalive: bool) -> tuple[float, float, float]:
    argv = ["ab", "-q", "-n", str(requests), "-c", str(concurrency), *(["-k"] if keepalive else []),
            f"http://127.0.0.1:{port}/"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600).stdout
    rate = float(re.search(r"Requests per second:\s+([\d.]+)", out)[1])
    p50 = float(re.search(r"\n\s+50%\s+(\d+)", out)[1])
    p99 = float(re.search(r"\n\s+99%\s+(\d+)", out)[1])
    failed = int(re.search(r"Failed requests:\s+(\d+)", out)[1])
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", out)
    if failed or non2xx:
        raise SystemExit(f"ab saw failures: {failed} failed, {non2xx[1] if non2xx else 0} non-2xx")
    return rate, p50, p99


def run_variant(templates: Path, mode: str, upstream: int, workdir: Path, requests: int, concurrency: int):
    workdir.mkdir()
    port = free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(localized(render("nginx.conf", manifest_in(mode), templates), workdir, upstream, port))
    check = subprocess.run([nginx(), "-t", "-c", str(conf), "-g", "user root;"], capture_output=True, text=True)
    if check.returncode != 0:
        raise SystemExit(f"nginx -t refused the {templates} config: {check.stderr.strip()}")
    process = subprocess.Popen([nginx(), "-c", str(conf), "-g", "daemon off; user root;"], stderr=subprocess.DEVNULL)
    try:
        wait_for(port)
        ab(port, min(requests, 2000), concurrency, False)  # warm up
        return ab(port, requests, concurrency, False), ab(port, requests, concurrency, True)
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="b99d61f", help="a revision before the per-track servers (default b99d61f)")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    require_ab()
    with tempfile.TemporaryDirectory(prefix="sd-bench-hop-") as tmp:
        tmp = Path(tmp)
        upstream = free_port()
        backend = start_upstream(tmp, upstream)
        try:
            variants = {f"before ({args.before})": templates_at(args.before, tmp), "now": ROOT / "templates"}
            print(f"{os.cpu_count()} CPUs; ab -n {args.requests} -c {args.concurrency}; upstream: nginx answering 200")
            print(f"{'config':<18} {'mode':<7} {HEADER}")
            for mode in ("stable", "canary"):
                for number, (name, templates) in enumerate(variants.items()):
                    (fresh, kept) = run_variant(templates, mode, upstream, tmp / f"{mode}{number}", args.requests,
                                                args.concurrency)
                    print(f"{name:<18} {mode:<7} {figures(fresh, kept)}")
        finally:
            backend.terminate()
            backend.wait(timeout=10)


if __name__ == "__main__":
    main()
