"""What HTTPS costs: req/s and latency through the generated nginx.conf over https beside plain http, one run.

The rendered config (seed manifest, stable mode) is run by the host's nginx, once as it is and once with
nginx.tls (an ECDSA P-256 certificate from a CA made here, Mozilla's intermediate profile, the shared session
cache), the tracks pointed at a second nginx on loopback that answers 200 itself. ApacheBench loads it with a
fresh connection per request (a full handshake each: ab does not resume sessions) and with keep-alive;
`openssl s_time` then counts handshakes per second, new and resumed from the session cache.

Usage: .venv/bin/python bench/https.py [--requests N] [--concurrency C] [--seconds S]
"""

import argparse
import dataclasses
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import nginx_hop as hop  # noqa: E402
from swiftdeploy.model.manifest import Tls  # noqa: E402
from tlskit import TestCA  # noqa: E402


def config(workdir: Path, upstream: int, port: int, tls_port: int | None, issued) -> str:
    manifest = hop.manifest_in("stable")
    if tls_port:
        tls = Tls(cert=str(issued.cert), key=str(issued.key), port=tls_port, fingerprint=issued.fingerprint,
                  material="bench", not_after="-")
        manifest = dataclasses.replace(manifest, nginx=dataclasses.replace(manifest.nginx, tls=tls))
        (workdir / "swiftdeploy-tls" / "bench").mkdir(parents=True)
        for name, source in (("cert.pem", issued.cert), ("key.pem", issued.key)):
            (workdir / "swiftdeploy-tls" / "bench" / name).write_bytes(source.read_bytes())
    text = hop.localized(hop.render("nginx.conf", manifest, hop.ROOT / "templates"), workdir, upstream, port)
    return text.replace("/run/swiftdeploy-tls/", f"{workdir}/swiftdeploy-tls/").replace(
        f"listen {tls_port} ssl;", f"listen 127.0.0.1:{tls_port} ssl;")


def s_time(port: int, seconds: int, resume: bool) -> float:
    out = subprocess.run(["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-www", "/",
                          "-reuse" if resume else "-new", "-time", str(seconds)],
                         capture_output=True, text=True, timeout=seconds * 3 + 30).stdout
    return float(re.findall(r"([\d.]+) connections/user sec", out)[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=5, help="per openssl s_time run")
    args = parser.parse_args()
    hop.require_ab()
    with tempfile.TemporaryDirectory(prefix="sd-bench-https-") as tmp:
        tmp = Path(tmp)
        issued = TestCA(tmp / "ca").issue("site", names=("localhost", "127.0.0.1"))
        upstream = hop.free_port()
        backend = hop.start_upstream(tmp, upstream)
        workdir, port, tls_port = tmp / "nginx", hop.free_port(), hop.free_port()
        workdir.mkdir()
        (workdir / "nginx.conf").write_text(config(workdir, upstream, port, tls_port, issued))
        plain = tmp / "plain"
        plain.mkdir()
        (plain / "nginx.conf").write_text(config(plain, upstream, hop.free_port(), None, issued))
        servers = []
        try:
            for folder in (plain, workdir):
                servers.append(subprocess.Popen([hop.nginx(), "-c", str(folder / "nginx.conf"), "-g",
                                                 "daemon off; user root;"], stderr=subprocess.DEVNULL))
            plain_port = int(re.search(r"listen 127.0.0.1:(\d+);", (plain / "nginx.conf").read_text())[1])
            hop.wait_for(plain_port)
            hop.wait_for(tls_port)
            print(f"{os.cpu_count()} CPUs; ab -n {args.requests} -c {args.concurrency}; upstream: nginx answering 200; "
                  f"certificate ECDSA P-256; ab negotiated {protocol(f'https://127.0.0.1:{tls_port}/')}")
            print(f"{'through nginx':<14} {hop.HEADER}")
            for name, url in (("http", f"http://127.0.0.1:{plain_port}/"), ("https", f"https://127.0.0.1:{tls_port}/")):
                figures = [ab(url, min(args.requests, 2000), args.concurrency, False)]  # warm up
                figures = [ab(url, args.requests, args.concurrency, keep) for keep in (False, True)]
                print(f"{name:<14} {hop.figures(*figures)}")
            new, resumed = s_time(tls_port, args.seconds, False), s_time(tls_port, args.seconds, True)
            print(f"openssl s_time -www / for {args.seconds} s, one client: {new:.0f} new handshakes/s, "
                  f"{resumed:.0f} resumed from the session cache/s ({resumed / new:.1f}x)")
        finally:
            for server in servers:
                server.terminate()
                server.wait(timeout=10)
            backend.terminate()
            backend.wait(timeout=10)


def protocol(url: str) -> str:
    out = subprocess.run(["ab", "-n", "1", url], capture_output=True, text=True, timeout=60).stdout
    found = re.search(r"SSL/TLS Protocol:\s+(\S+)", out)
    return found[1].rstrip(",") if found else "(ab did not say)"


def ab(url: str, requests: int, concurrency: int, keepalive: bool) -> tuple[float, float, float]:
    argv = ["ab", "-q", "-n", str(requests), "-c", str(concurrency), *(["-k"] if keepalive else []), url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600).stdout
    failed = int(re.search(r"Failed requests:\s+(\d+)", out)[1])
    if failed or "Non-2xx" in out:
        raise SystemExit(f"ab saw failures on {url}: {out[-400:]}")
    return (float(re.search(r"Requests per second:\s+([\d.]+)", out)[1]), float(re.search(r"\n\s+50%\s+(\d+)", out)[1]),
            float(re.search(r"\n\s+99%\s+(\d+)", out)[1]))


if __name__ == "__main__":
    main()
