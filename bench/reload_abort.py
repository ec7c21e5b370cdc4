"""Responses cut by nginx reloads: a real Prometheus (its chunked /classic/graph) behind the generated nginx.conf,
ApacheBench at 16 connections, a reload every 0.3 s alternating the stable and canary configs; per variant the
requests, the failed ones (ab: wrong length, i.e. cut short) and the old workers that aborted mid-response.

Variants: the config before the per-track servers (b99d61f), now (track servers stream, `proxy_buffering off`),
and now with the track servers buffering. Needs the engine (it runs prom/prometheus:v2.42.0, the stand-in
scripts/test-engine builds) and ab (apache2-utils).

Usage: .venv/bin/python bench/reload_abort.py [seconds per variant, default 15]
"""

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nginx_hop as hop  # noqa: E402  (its render, localize and nginx helpers)

PROMETHEUS = "prom/prometheus:v2.42.0"
PATH = "/classic/graph"  # about 5 KB, sent chunked


def config_text(templates: Path, mode: str, workdir: Path, upstream: int, port: int, buffered: bool) -> str:
    text = hop.localized(hop.render("nginx.conf", hop.manifest_in(mode), templates), workdir, upstream, port)
    text = text.replace("error_log /dev/stderr warn;", f"error_log {workdir}/error.log warn;")
    return text.replace("proxy_buffering off;", "") if buffered else text


def run(name: str, templates: Path, tmp: Path, upstream: int, seconds: int, buffered: bool = False) -> None:
    workdir = tmp / re.sub(r"\W+", "-", name)  # the config names paths in it unquoted
    workdir.mkdir()
    port = hop.free_port()
    conf = workdir / "nginx.conf"
    texts = [config_text(templates, mode, workdir, upstream, port, buffered) for mode in ("stable", "canary")]
    conf.write_text(texts[0])
    server = subprocess.Popen([hop.nginx(), "-c", str(conf), "-g", "daemon off; user root;"], stderr=subprocess.DEVNULL)
    try:
        hop.wait_for(port)
        load = subprocess.Popen(["ab", "-q", "-t", str(seconds), "-n", "10000000", "-c", "16",
                                 f"http://127.0.0.1:{port}{PATH}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        reloads, deadline = 0, time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.3)
            reloads += 1
            conf.write_text(texts[reloads % 2])
            subprocess.run([hop.nginx(), "-c", str(conf), "-g", "user root;", "-s", "reload"], capture_output=True)
        out = load.communicate(timeout=120)[0]
        complete = int(re.search(r"Complete requests:\s+(\d+)", out)[1])
        failed = int(re.search(r"Failed requests:\s+(\d+)", out)[1])
        aborts = (workdir / "error.log").read_text().count("aborting")
        print(f"{name:<26} {reloads:>7} {complete:>9} {failed:>7} {aborts:>14}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    port = hop.free_port()
    config = Path(tempfile.mkdtemp(prefix="sd-bench-prometheus-")) / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\n")
    config.parent.chmod(0o755)
    config.chmod(0o644)
    container = subprocess.run(["docker", "run", "-d", "--rm", "-p", f"127.0.0.1:{port}:9090",
                                "-v", f"{config}:/etc/prometheus/prometheus.yml:ro", PROMETHEUS],
                               capture_output=True, text=True)
    if container.returncode != 0:
        raise SystemExit(f"docker run {PROMETHEUS} failed (scripts/test-engine up builds it): {container.stderr.strip()}")
    try:
        hop.wait_for(port)
        time.sleep(2)  # its web handler answers a moment after the port opens
        with tempfile.TemporaryDirectory(prefix="sd-bench-reload-") as tmp:
            tmp = Path(tmp)
            before = hop.templates_at("b99d61f", tmp)
            print(f"ab -c 16 for {seconds} s per variant on GET {PATH} of {PROMETHEUS}; a reload every 0.3 s")
            print(f"{'config':<26} {'reloads':>7} {'requests':>9} {'failed':>7} {'worker aborts':>14}")
            run("before (b99d61f)", before, tmp, port, seconds)
            run("now", hop.ROOT / "templates", tmp, port, seconds)
            run("now, track servers buffer", hop.ROOT / "templates", tmp, port, seconds, buffered=True)
    finally:
        subprocess.run(["docker", "rm", "-f", container.stdout.strip()], capture_output=True)


if __name__ == "__main__":
    main()
