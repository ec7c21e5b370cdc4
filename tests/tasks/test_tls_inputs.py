"""nginx.tls's files as a user gets them wrong: each mistake is one line naming the file before anything is
written, and new files re-render nginx.conf alone (no container change)."""

import os
import subprocess
import sys

import pytest
import yaml
from cryptography.hazmat.primitives import serialization

from projectkit import run_doit
from tlskit import TestCA, new_key, write_key


def with_tls(project, **tls):
    document = yaml.safe_load((project / "manifest.yaml").read_text())
    document["nginx"]["tls"] = {"cert": "certs/site.pem", "key": "certs/site.key", "port": 8443, **tls}
    (project / "manifest.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def encrypted(path):
    key = serialization.load_pem_private_key(path.read_bytes(), None)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(b"passphrase")))


# (what the user did, how to do it to a project with a good pair in certs/site.*, the line's start and a part of it)
MISTAKES = {
    "no certificate file": (lambda p, ca: (p / "certs/site.pem").unlink(),
                            "nginx/tls/cert: ", "certs/site.pem: no such file"),
    "a folder for the key": (lambda p, ca: ((p / "certs/site.key").unlink(), (p / "certs/site.key").mkdir()),
                             "nginx/tls/key: ", "is a directory"),
    "not a certificate": (lambda p, ca: (p / "certs/site.pem").write_text("hello\n"),
                          "nginx/tls/cert: ", "not a PEM certificate"),
    "a key of another certificate": (lambda p, ca: write_key(p / "certs/site.key", new_key()),
                                     "nginx/tls/key: ", "is not the key of the certificate in"),
    "a key with a passphrase": (lambda p, ca: encrypted(p / "certs/site.key"),
                                "nginx/tls/key: ", "the key is encrypted"),
    "a key others can read": (lambda p, ca: os.chmod(p / "certs/site.key", 0o644),
                              "nginx/tls/key: ", "is readable by others (mode 644); run `chmod 600"),
    "an expired certificate": (lambda p, ca: ca.issue("site", days=-1, not_before_days=-10),
                               "nginx/tls/cert: ", "expired on"),
    "a certificate not valid yet": (lambda p, ca: ca.issue("site", days=30, not_before_days=2),
                                    "nginx/tls/cert: ", "is not valid before"),
    "names that do not cover hosts": (lambda p, ca: with_tls(p, hosts=["localhost", "shop.example.com"]),
                                      "nginx/tls/hosts: ", "shop.example.com is not a name of the certificate"),
    "the https port is the http one": (lambda p, ca: with_tls(p, port=8080),
                                       "nginx/tls/port: ", "8080 is also nginx/port"),
}


@pytest.fixture
def tls_project(project):
    ca = TestCA(project / "certs")
    ca.issue("site")
    with_tls(project)
    return project, ca


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_mistake_is_one_line_naming_the_file_and_nothing_is_written(tls_project, mistake):
    project, ca = tls_project
    do, start, part = MISTAKES[mistake]
    do(project, ca)
    for argv in ([sys.executable, "-m", "doit", "init"], [sys.executable, "swiftdeploy", "deploy"],
                 [sys.executable, "swiftdeploy", "plan"]):
        result = subprocess.run(argv, cwd=project, capture_output=True, text=True, timeout=120)
        said = [line for line in (result.stdout + result.stderr).splitlines() if part in line]
        assert result.returncode != 0 and "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
        assert len(said) == 1 and start in said[0], result.stdout + result.stderr
        assert "PRIVATE KEY" not in result.stdout + result.stderr
    assert not (project / "generated" / "nginx.conf").exists()
    assert not (project / ".swiftdeploy" / "tls").exists()


def test_new_certificate_files_re_render_nginx_conf_and_leave_the_containers_definition_alone(tls_project):
    project, ca = tls_project
    run_doit(project, "init", check=True)
    compose = (project / "generated" / "docker-compose.yml").read_bytes()
    first = (project / "generated" / "nginx.conf").read_text()
    copies = project / ".swiftdeploy" / "tls"
    [copy] = list(copies.iterdir())
    assert oct(copy.stat().st_mode & 0o777) == "0o750" and oct((copy / "key.pem").stat().st_mode & 0o777) == "0o440"
    assert (copy / "key.pem").read_bytes() == (project / "certs/site.key").read_bytes()
    assert "-- init:nginx.conf" in run_doit(project, "init", check=True).stdout, "unchanged files: nothing to do"

    renewed = ca.issue("site")
    result = run_doit(project, "init", check=True)
    assert ".  init:nginx.conf" in result.stdout
    now = (project / "generated" / "nginx.conf").read_text()
    assert now != first and renewed.fingerprint in now and "PRIVATE" not in now
    assert (project / "generated" / "docker-compose.yml").read_bytes() == compose, "a reload, not a new nginx"
    assert len(list(copies.iterdir())) == 2, "the pair nginx may still serve is kept until a deploy confirms the new"


def test_certs_shows_the_names_and_days_left_of_your_certificate_and_status_warns_before_it_expires(tls_project):
    from datetime import datetime, timedelta, timezone

    from swiftdeploy.converge.certs import expiry_warning
    from swiftdeploy.converge.stack import Stack

    project, ca = tls_project
    issued = ca.issue("site", days=10)
    shown = subprocess.run([sys.executable, "swiftdeploy", "certs"], cwd=project, capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    line = [line for line in shown.stdout.splitlines() if line.startswith("localhost, 127.0.0.1: sha256")]
    shown_fp = ":".join(issued.fingerprint[i:i + 2] for i in range(0, 16, 2)).upper()
    assert len(line) == 1 and shown_fp in line[0] and "(10 days left); your files certs/site.pem" in line[0], shown.stdout

    stack = Stack.load(project)
    now = datetime.now(timezone.utc)
    assert expiry_warning(stack, now) == (f"certificate for localhost, 127.0.0.1 expires in 10.0 days "
                                          f"({(now + timedelta(days=10)):%Y-%m-%d}): put renewed files in place "
                                          "and run ./swiftdeploy deploy")
    ca.issue("site", days=15)
    assert expiry_warning(stack, now) is None, "15 days ahead: no warning yet"
    ca.issue("site", days=-1, not_before_days=-20)
    assert expiry_warning(stack, now).startswith("certificate: nginx/tls/cert: "), "an expired one says so"


def test_on_swarm_the_pair_is_two_secrets_named_by_their_content_and_new_files_are_a_new_nginx_task(tls_project):
    project, ca = tls_project
    document = yaml.safe_load((project / "manifest.yaml").read_text())
    document["runtime"] = "swarm"
    (project / "manifest.yaml").write_text(yaml.safe_dump(document, sort_keys=False))

    def nginx_and_secrets():
        run_doit(project, "init", check=True)
        stack = yaml.safe_load((project / "generated" / "stack.yml").read_text())
        return stack["services"]["nginx"], stack["secrets"]

    nginx, secrets = nginx_and_secrets()
    [copy] = (project / ".swiftdeploy" / "tls").iterdir()
    assert {s["name"] for s in secrets.values()} == {f"swiftdeploy-tls-{copy.name[:12]}-cert",
                                                      f"swiftdeploy-tls-{copy.name[:12]}-key"}
    assert {s["file"] for s in secrets.values()} == {f"../.swiftdeploy/tls/{copy.name}/cert.pem",
                                                      f"../.swiftdeploy/tls/{copy.name}/key.pem"}
    assert [(s["target"], s["uid"], s["mode"]) for s in nginx["secrets"]] == [
        (f"/run/swiftdeploy-tls/{copy.name}/cert.pem", "101", 0o400),
        (f"/run/swiftdeploy-tls/{copy.name}/key.pem", "101", 0o400)], "where nginx.conf names them, nginx's alone"
    assert not [v for v in nginx["volumes"] if "tls" in str(v)], "no bind mount of the pair from the manager"
    assert {p["published"] for p in nginx["ports"]} == {8080, 8443}
    assert b"PRIVATE" not in (project / "generated" / "stack.yml").read_bytes()

    ca.issue("site")
    renewed, renewed_secrets = nginx_and_secrets()
    assert renewed["labels"]["io.swiftdeploy.spec"] != nginx["labels"]["io.swiftdeploy.spec"], "a new nginx task"
    assert not {s["name"] for s in renewed_secrets.values()} & {s["name"] for s in secrets.values()}
