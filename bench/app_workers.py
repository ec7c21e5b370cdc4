"""What the bundled app's gunicorn workers buy: req/s and latency through the generated nginx.conf with the app
behind it on 1 and on N workers, beside nginx alone (a second nginx answering 200 where the app would be), in
one run.

The app is app/gunicorn.conf.py run by the project's .venv on loopback (WORKERS=1 and WORKERS=N, stable mode),
the nginx is the host's with the seed manifest's rendered config, and the load is ApacheBench (apache2-utils)
on the same machine, with a fresh connection per request (as the e2e load does) and with keep-alive.

Usage: .venv/bin/python bench/app_workers.py [--workers N] [--requests N] [--concurrency C]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nginx_hop import HEADER, ROOT, figures, free_port, require_ab, run_variant, start_upstream, wait_for

sys.path.insert(0, str(ROOT / "app"))
from swiftdeploy_app.settings import usable_cpus  # noqa: E402

GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"


def start_app(workers: int, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "APP_PORT": str(port), "MODE": "stable", "APP_VERSION": "1.0.0", "WORKERS": str(workers)}
    with log.open("wb") as out:
        process = subprocess.Popen([str(GUNICORN), "--config", str(ROOT / "app" / "gunicorn.conf.py")], env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
    wait_for(port)
    deadline = time.monotonic() + 30  # gunicorn answers once its first worker has booted: wait for them all
    while len(Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()) < workers:
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit(f"gunicorn did not start {workers} workers:\n{log.read_text()}")
        time.sleep(0.1)
    time.sleep(2)  # the workers finish importing the app
    return process


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(timeout=40)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=usable_cpus(), help="N (default: the usable CPUs)")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    require_ab()
    with tempfile.TemporaryDirectory(prefix="sd-bench-workers-") as tmp:
        tmp = Path(tmp)
        print(f"{os.cpu_count()} CPUs; ab -n {args.requests} -c {args.concurrency}; through the rendered nginx.conf "
              "(stable mode)")
        print(f"{'behind nginx':<22} {HEADER}")
        upstreams = {"nginx alone (200)": None, "app, 1 worker": 1, f"app, {args.workers} workers": args.workers}
        for number, (name, workers) in enumerate(upstreams.items()):
            port = free_port()
            backend = (start_upstream(tmp, port) if workers is None
                       else start_app(workers, port, tmp / f"gunicorn-{workers}.log"))
            try:
                fresh, kept = run_variant(ROOT / "templates", "stable", port, tmp / f"variant{number}", args.requests,
                                          args.concurrency)
            finally:
                stop(backend)
            print(f"{name:<22} {figures(fresh, kept)}")


if __name__ == "__main__":
    main()
