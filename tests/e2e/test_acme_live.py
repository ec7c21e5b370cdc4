"""A certificate SwiftDeploy obtains itself: Debian's pebble plays Let's Encrypt, the stack's own nginx answers
the HTTP-01 challenge on its plain-http port, and `certs --renew` replaces the certificate under load without a
failed request."""

import time

import pytest
import yaml

from pebblekit import pebble  # noqa: F401 - fixture
from stackkit import SteadyLoad, dropped, free_port, history, make_project, manifest_of, ok, remove_everything, swiftdeploy
from tlskit import served_fingerprint

pytestmark = pytest.mark.e2e


def test_a_certificate_is_obtained_over_http01_served_and_renewed_without_a_failed_request(tmp_path, pebble):
    project = make_project(tmp_path / "project")
    try:
        server = pebble(http_port=manifest_of(project).nginx.port)
        document = yaml.safe_load((project / "manifest.yaml").read_text())
        document["nginx"]["tls"] = {"acme": {"email": "ops@example.com", "directory": server.directory,
                                             "ca_bundle": str(server.ca_bundle)},
                                    "hosts": ["localhost"], "port": free_port()}
        (project / "manifest.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
        port = manifest_of(project).nginx.tls.port

        deployed = ok(swiftdeploy(project, "deploy", timeout=600))
        assert f"asking {server.directory}" in deployed.stdout and "issued: localhost" in deployed.stdout, deployed.stdout
        roots = tmp_path / "pebble-root.pem"
        roots.write_text(server.root_pem())
        import requests

        answer = requests.get(f"https://localhost:{port}/", verify=str(roots), timeout=10)
        assert answer.status_code == 200 and answer.headers["X-Deployed-By"] == "swiftdeploy"
        first = served_fingerprint(port)
        kept = project / ".swiftdeploy" / "acme"
        assert oct((kept / "account.key").stat().st_mode & 0o777) == "0o600"
        pairs = [p for p in kept.iterdir() if p.name.startswith("pair-")]
        assert len(pairs) == 1 and (kept / "live").resolve() == pairs[0], "the placeholder's pair is gone"
        assert {p.name: oct(p.stat().st_mode & 0o777) for p in pairs[0].iterdir()} == {
            "cert.pem": "0o600", "key.pem": "0o600"}
        assert not list((project / ".swiftdeploy" / "acme-challenge").iterdir()), "answers removed after the order"

        shown = ok(swiftdeploy(project, "certs"))
        assert "days left" in shown.stdout and "asking" not in shown.stdout, shown.stdout
        with SteadyLoad(f"https://localhost:{port}", verify=str(roots)) as load:
            time.sleep(1)
            renewed = ok(swiftdeploy(project, "certs", "--renew", timeout=600))
            time.sleep(1)
        assert "nginx serves the new certificate" in renewed.stdout, renewed.stdout
        assert load.failures() == {} and load.total > 50, dropped(load, project)
        assert served_fingerprint(port) != first
        events = [r for r in history(project) if r["event"] == "certificate"]
        assert [e["source"] for e in events] == ["acme placeholder", "acme", "acme"], events
        assert events[-1]["fingerprint"] == served_fingerprint(port) and events[-1]["names"] == ["localhost"]
        assert "No changes" in ok(swiftdeploy(project, "plan")).stdout
    finally:
        swiftdeploy(project, "teardown")
        remove_everything(project)


def test_a_ca_that_cannot_reach_nginx_is_one_line_and_the_stack_keeps_serving_https(tmp_path, pebble):
    project = make_project(tmp_path / "project")
    try:
        server = pebble(http_port=free_port())  # checks a port nothing answers on, as a firewall would make it
        document = yaml.safe_load((project / "manifest.yaml").read_text())
        document["nginx"]["tls"] = {"acme": {"email": "ops@example.com", "directory": server.directory,
                                             "ca_bundle": str(server.ca_bundle)}, "hosts": ["localhost"],
                                    "port": free_port()}
        (project / "manifest.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
        failed = swiftdeploy(project, "deploy", timeout=600)
        said = [line for line in (failed.stdout + failed.stderr).splitlines() if line.startswith("swiftdeploy:")]
        assert failed.returncode != 0 and "Traceback" not in failed.stdout + failed.stderr, failed.stdout + failed.stderr
        assert len(said) == 1 and "could not check that nginx answers for localhost" in said[0], said
        assert "serving a self-signed placeholder" in said[0], said
        assert served_fingerprint(manifest_of(project).nginx.tls.port), "https is served all the same"
        assert not list((project / ".swiftdeploy" / "acme-challenge").iterdir())
    finally:
        swiftdeploy(project, "teardown")
        remove_everything(project)


def test_certs_killed_at_any_moment_then_deploy_serves_the_pair_on_disk(tmp_path, pebble):
    """SIGKILL during the order, the pair's write or the reload: the next deploy serves whichever whole pair
    acme/live names, and nothing fails under load meanwhile."""
    import signal
    import subprocess
    import sys

    from swiftdeploy import certificates

    project = make_project(tmp_path / "project")
    try:
        server = pebble(http_port=manifest_of(project).nginx.port)
        document = yaml.safe_load((project / "manifest.yaml").read_text())
        document["nginx"]["tls"] = {"acme": {"email": "ops@example.com", "directory": server.directory,
                                             "ca_bundle": str(server.ca_bundle)}, "hosts": ["localhost"],
                                    "port": free_port()}
        (project / "manifest.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
        port = manifest_of(project).nginx.tls.port
        ok(swiftdeploy(project, "deploy", timeout=600))
        roots = tmp_path / "pebble-root.pem"
        roots.write_text(server.root_pem())
        started = time.monotonic()
        ok(swiftdeploy(project, "certs", "--renew", timeout=600))
        whole = time.monotonic() - started
        outcomes = []
        with SteadyLoad(f"https://localhost:{port}", verify=str(roots)) as load:
            for delay in (whole * share for share in (0.2, 0.5, 0.75, 0.95)):
                renewing = subprocess.Popen([sys.executable, str(project / "swiftdeploy"), "certs", "--renew"],
                                            cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
                time.sleep(delay)
                finished = renewing.poll() is not None
                renewing.send_signal(signal.SIGKILL)
                renewing.wait(timeout=30)
                ok(swiftdeploy(project, "deploy", timeout=600))
                on_disk = certificates.check(manifest_of(project).nginx.tls, project)
                outcomes.append((delay, finished, served_fingerprint(port) == on_disk.fingerprint))
        print(f"\ncerts --renew takes {whole:.1f} s; SIGKILLed after (s, had finished, then served the pair on "
              f"disk): {[(round(d, 2), f, s) for d, f, s in outcomes]}")
        assert all(served for _, _, served in outcomes), outcomes
        assert load.failures() == {} and load.total > 100, dropped(load, project)
        assert "No changes" in ok(swiftdeploy(project, "plan")).stdout
        kept = project / ".swiftdeploy" / "acme"
        assert len([p for p in kept.iterdir() if p.name.startswith("pair-")]) == 1, list(kept.iterdir())
    finally:
        swiftdeploy(project, "teardown")
        remove_everything(project)
