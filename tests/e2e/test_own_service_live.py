"""A user's own service on the real engine: third-party HTTP servers this project did not write (httpbin under
gunicorn, Prometheus, a FROM scratch busybox httpd), pulled from a real registry with credentials or built from
the user's own Dockerfile, health-checked on their own path by the mounted probe, judged from nginx's request
log (they serve no SwiftDeploy /metrics), rolled out, rolled back, and given env and secrets that never leak."""

import os
import stat
import time
from pathlib import Path

import pytest
import yaml

from registrykit import forget_local, registry, registry_client, thirdparty_images  # noqa: F401 - fixtures
from stackkit import (SteadyLoad, dropped, edit_services as edit, history, keep_private, make_project, manifest_of, ok,
                      public_url, remove_everything, require_engine, swiftdeploy)

pytestmark = pytest.mark.e2e

SECRET_VALUE = "s3cret-" + os.urandom(8).hex()  # what no file SwiftDeploy writes and no output may hold


@pytest.fixture
def cleanup():
    """Registers projects to remove after the test; the images a test builds (local/...) and the release tags
    its promotions keep go too, before and after, so a later run builds and tags afresh."""
    made = []
    remove_test_images()
    yield made.append
    for project in made:
        remove_everything(project)
    remove_test_images()


def remove_test_images() -> None:
    import docker

    from swiftdeploy.engine.api import client

    for image in client().images.list():
        for tag in image.tags:
            if tag.removeprefix("localhost/").removeprefix("docker.io/").startswith("local/") or (tag.startswith(REGISTRY_PREFIX) and ":release-" in tag):
                try:
                    client().images.remove(tag)
                except docker.errors.APIError as err:
                    if err.status_code != 409:  # 409: a container outside the tests still runs it
                        raise


REGISTRY_PREFIX = "127.0.0.1:5000/thirdparty/"


def own_project(tmp_path: Path, cleanup, image: str, port: int, health: str, *, canary: dict | None = None,
                services: dict | None = None, registry=None) -> Path:
    """The e2e project with services: naming the user's image (build: false unless `services` says), its port
    and health path; the registry's credentials kept as a user would (0600) when `registry` is given."""
    project = make_project(tmp_path / "project", canary={"interval_seconds": 2, **(canary or {})})
    cleanup(project)
    document = yaml.safe_load((project / "manifest.yaml").read_text())
    document["services"].update({"image": image, "port": port, "version": "1", "build": False,
                                 "health": {"path": health, "interval_seconds": 1}, **(services or {})})
    (project / "manifest.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    if registry is not None:
        keep_private(project / ".swiftdeploy" / "registries" / registry.address, f"{registry.user}:{registry.password}")
    return project


def container_of(project: Path, track: str) -> dict:
    from swiftdeploy.engine import api as engine

    name = manifest_of(project).project
    [entry] = [c for c in engine.containers(f"io.swiftdeploy.project={name}")
               if c["Labels"].get("io.swiftdeploy.role") == track]
    return engine.inspect_container(entry["Id"])


def pulls_during(action) -> tuple[object, list[str]]:
    """Run action(); the images the engine pulled meanwhile (from its own event stream)."""
    from swiftdeploy.engine.api import client

    since = time.time() - 1
    result = action()
    events = client().events(since=since, until=time.time() + 1, decode=True, filters={"type": "image", "event": "pull"})
    return result, [event.get("id") for event in events]


def files_holding(root: Path, text: str, skip: Path) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and skip not in path.parents and text.encode() in path.read_bytes():
            found.append(str(path.relative_to(root)))
    return found


def test_httpbin_from_the_registry_deploys_rolls_out_and_a_failing_canary_is_rolled_back_on_nginx_figures(
        tmp_path, cleanup, registry, thirdparty_images):
    require_engine()
    one, two = thirdparty_images["httpbin:1"], thirdparty_images["httpbin:2"]
    forget_local(one.ref)
    forget_local(two.ref)
    project = own_project(tmp_path, cleanup, one.ref, one.port, one.health_path, registry=registry,
                          canary={"image": two.ref, "version": "2", "steps": [20, 50, 100], "step_seconds": 6},
                          services={"env": {"GREETING": "hello"}, "secrets": ["DB_PASSWORD"]})
    keep_private(project / ".swiftdeploy" / "secrets" / "DB_PASSWORD", SECRET_VALUE + "\n")
    outputs = []

    deployed, pulled = pulls_during(lambda: ok(swiftdeploy(project, "deploy")))
    outputs.append(deployed.stdout + deployed.stderr)
    assert f"pull {one.ref}" in deployed.stdout and one.ref in pulled, deployed.stdout
    stable = container_of(project, "stable")
    env = dict(line.split("=", 1) for line in stable["Config"]["Env"])
    assert env["DB_PASSWORD"] == SECRET_VALUE and env["GREETING"] == "hello"
    assert not {"MODE", "APP_VERSION", "APP_PORT", "CHAOS_TOKEN"} & set(env)  # the demo's, never a user app's
    assert stable["Config"]["User"] == one.user  # the image's own user
    assert stable["State"]["Health"]["Log"][-1]["Output"].strip() == f"GET {one.health_path}: 200"
    import requests

    # a rotated secret: plan shows it, deploy replaces the track (through a carrier, as any change) with it
    keep_private(project / ".swiftdeploy" / "secrets" / "DB_PASSWORD", SECRET_VALUE + "-rotated\n")
    planned = swiftdeploy(project, "plan")
    outputs.append(planned.stdout + planned.stderr)
    assert planned.returncode == 2 and "it started with other secret values" in planned.stdout, planned.stdout
    rotated = ok(swiftdeploy(project, "deploy"))
    outputs.append(rotated.stdout + rotated.stderr)
    env = dict(line.split("=", 1) for line in container_of(project, "stable")["Config"]["Env"])
    assert env["DB_PASSWORD"] == SECRET_VALUE + "-rotated"
    assert swiftdeploy(project, "plan").returncode == 0
    answer = requests.get(public_url(project) + "/get", timeout=10)
    assert answer.status_code == 200 and answer.headers["X-SwiftDeploy-Track"] == "stable" and "X-Mode" not in answer.headers

    # a rollout 20/50/100 of version 2, judged on nginx's figures, promoted with no failed request
    with SteadyLoad(public_url(project)) as load:
        rolled = swiftdeploy(project, "rollout", timeout=300)
    outputs.append(rolled.stdout + rolled.stderr)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert "promoted: stable is now 2" in rolled.stdout
    assert load.failures() == {} and load.total > 300, dropped(load, project)
    verdicts = [r for r in history(project) if r["event"] == "rollout_verdict"]
    assert [v["weight"] for v in verdicts if v["verdict"] == "pass"][-1] == 100
    assert all(v["input"]["requests"] > 0 for v in verdicts if v["verdict"] == "pass")  # figures without /metrics

    # a canary built from the user's Dockerfile (a context outside app/) that answers 500 on a share of requests
    bad = project / "bad-canary"
    bad.mkdir()
    (bad / "Dockerfile").write_text(f"FROM {two.ref}\nENV HTTPBIN_FAIL_RATE=0.3\n")
    (bad / "notes.txt").write_text("ignored by .dockerignore\n")
    (bad / ".dockerignore").write_text("notes.txt\n")
    edit(project, canary__image="local/httpbin-bad:3", canary__version="3", canary__build={"context": "bad-canary"})
    with SteadyLoad(public_url(project)) as load:
        failed = swiftdeploy(project, "rollout", timeout=300)
    outputs.append(failed.stdout + failed.stderr)
    assert failed.returncode != 0 and "rolled back by itself" in failed.stdout + failed.stderr, failed.stdout + failed.stderr
    assert "build local/httpbin-bad:3 from bad-canary (Dockerfile)" in failed.stdout
    assert "error rate" in (failed.stdout + failed.stderr)
    assert set(load.failures()) <= {500}, load.outcomes  # the app's own 500s; nothing dropped by the switch
    services = manifest_of(project).services
    assert (services.mode, services.version) == ("stable", "2")

    # unchanged inputs: not built again (a note the .dockerignore leaves out does not count either)
    (bad / "notes.txt").write_text("edited, still ignored\n")
    again = ok(swiftdeploy(project, "promote", "canary"))
    outputs.append(again.stdout + again.stderr)
    assert "build " not in again.stdout, again.stdout

    # rollback to the last release: what the engine kept, with the registry's tags gone and no pull
    forget_local(two.ref)
    rolled_back, pulled = pulls_during(lambda: ok(swiftdeploy(project, "rollback")))
    outputs.append(rolled_back.stdout + rolled_back.stderr)
    assert pulled == [] and "pull" not in rolled_back.stdout, (pulled, rolled_back.stdout)
    assert requests.get(public_url(project) + "/get", timeout=10).headers["X-SwiftDeploy-Track"] == "stable"
    assert container_of(project, "stable")["Image"] == two.image_id

    status = swiftdeploy(project, "status")
    outputs.append(status.stdout + status.stderr)
    audit = ok(swiftdeploy(project, "audit"))
    outputs.append(audit.stdout + audit.stderr)

    # the secret reached the container and nothing else
    secrets_dir = project / ".swiftdeploy" / "secrets"
    for directory in ("generated", "reports", ".swiftdeploy"):
        assert (project / directory).is_dir(), directory
    assert files_holding(project, SECRET_VALUE, skip=secrets_dir) == []  # the doit database included
    assert not any(SECRET_VALUE in text for text in outputs)


def test_a_secret_file_is_readable_by_the_apps_own_user_only_and_a_rotation_is_a_new_container(
        tmp_path, cleanup, registry, thirdparty_images):
    """services.secret_files: /run/secrets/NAME, read-only, readable by the image's own non-root user through
    the group SwiftDeploy adds; a rotated value is a new folder and container, the old folder goes with it."""
    from swiftdeploy.engine.api import client

    require_engine()
    one = thirdparty_images["httpbin:1"]
    project = own_project(tmp_path, cleanup, one.ref, one.port, one.health_path, registry=registry,
                          services={"secret_files": ["db_password"]})
    keep_private(project / ".swiftdeploy" / "secrets" / "db_password", SECRET_VALUE + "\n")
    outputs = [ok(swiftdeploy(project, "deploy")).stdout]

    def read_in_container(command):
        container = client().containers.get(container_of(project, "stable")["Id"])
        code, out = container.exec_run(["sh", "-c", command])  # as the container's own user
        return code, out.decode().strip()

    stable = container_of(project, "stable")
    assert stable["Config"]["User"] == one.user and one.user not in ("", "root", "0")
    assert read_in_container("cat /run/secrets/db_password") == (0, SECRET_VALUE)
    assert read_in_container("stat -c %a /run/secrets/db_password")[1] == "440"
    assert read_in_container("touch /run/secrets/x")[0] != 0, "the folder is read-only"
    assert "db_password" not in " ".join(stable["Config"]["Env"]) and SECRET_VALUE not in " ".join(stable["Config"]["Env"])
    folders = sorted((project / ".swiftdeploy" / "run-secrets").iterdir())
    assert len(folders) == 1 and stat.S_IMODE(folders[0].stat().st_mode) == 0o750

    keep_private(project / ".swiftdeploy" / "secrets" / "db_password", SECRET_VALUE + "-rotated\n")
    planned = swiftdeploy(project, "plan")
    assert planned.returncode == 2 and "it started with other secret values" in planned.stdout, planned.stdout
    outputs += [planned.stdout, ok(swiftdeploy(project, "deploy")).stdout]
    assert read_in_container("cat /run/secrets/db_password") == (0, SECRET_VALUE + "-rotated")
    assert swiftdeploy(project, "plan").returncode == 0
    assert len(list((project / ".swiftdeploy" / "run-secrets").iterdir())) == 1, "removed with the old container"
    assert [path for path in files_holding(project, SECRET_VALUE, skip=project / ".swiftdeploy" / "secrets")
            if not path.startswith(".swiftdeploy/run-secrets/")] == []
    assert not any(SECRET_VALUE in text for text in outputs)
    ok(swiftdeploy(project, "teardown"))
    assert list((project / ".swiftdeploy" / "run-secrets").iterdir()) == [], "teardown leaves no secret values"


def test_prometheus_rolls_out_on_its_own_health_path(tmp_path, cleanup, registry, thirdparty_images):
    require_engine()
    one, two = thirdparty_images["prometheus:1"], thirdparty_images["prometheus:2"]
    forget_local(one.ref)
    project = own_project(tmp_path, cleanup, one.ref, one.port, one.health_path, registry=registry,
                          canary={"image": two.ref, "version": "2", "steps": [50, 100], "step_seconds": 6})
    ok(swiftdeploy(project, "deploy"))
    with SteadyLoad(public_url(project)) as load:
        rolled = swiftdeploy(project, "rollout", timeout=300)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert load.failures() == {} and load.total > 200, dropped(load, project)
    assert container_of(project, "stable")["Image"] == two.image_id


def scratch_site(project: Path, page: str) -> None:
    """The user's own context: a FROM scratch image with one static binary (busybox httpd) and a page."""
    from registrykit import BUSYBOX

    site = project / "site"
    (site / "www").mkdir(parents=True, exist_ok=True)
    (site / "www" / "index.html").write_text(page)
    (site / "www" / "healthz").write_text("ok\n")
    (site / "busybox").write_bytes(BUSYBOX.read_bytes())
    os.chmod(site / "busybox", 0o755)
    (site / "Dockerfile").write_text("FROM scratch\nCOPY busybox /httpd\nCOPY www /www\nUSER 65534:65534\n"
                                     'ENTRYPOINT ["/httpd", "httpd", "-f", "-p", "8080", "-h", "/www"]\n')


@pytest.mark.every_engine
def test_a_scratch_image_from_the_users_dockerfile_is_built_once_and_a_track_that_never_gets_healthy_says_why(
        tmp_path, cleanup):
    require_engine()
    project = own_project(tmp_path, cleanup, "local/site:1", 8080, "/healthz",
                          services={"build": {"context": "site"}, "volumes": {"uploads": "/data"},
                                    "health": {"path": "/healthz", "interval_seconds": 1, "retries": 2,
                                               "start_period_seconds": 0}})
    scratch_site(project, "one\n")
    first = ok(swiftdeploy(project, "deploy"))
    assert "build local/site:1 from site (Dockerfile)" in first.stdout
    import requests

    assert requests.get(public_url(project) + "/", timeout=10).text == "one\n"
    assert "build" not in ok(swiftdeploy(project, "deploy")).stdout  # unchanged inputs: nothing to do
    planned = swiftdeploy(project, "plan")
    assert planned.returncode == 0 and "No changes" in planned.stdout, planned.stdout
    assert "Data: uploads (/data) outlive every change; a rollback returns to an older image, not to older data." \
        in planned.stdout
    mounts = {m["Destination"]: m for m in container_of(project, "stable")["Mounts"]}
    assert mounts["/data"]["Name"] == f"{manifest_of(project).project}-uploads"
    assert mounts["/.swiftdeploy/health"]["RW"] is False

    edit(project, version="2", health__path="/missing")
    broken = swiftdeploy(project, "deploy", timeout=300)
    assert broken.returncode != 0
    said = broken.stdout + broken.stderr
    assert "never became healthy (GET /missing on port 8080 every 1 s)" in said, said
    assert "GET /missing: 404" in said, said
    assert requests.get(public_url(project) + "/", timeout=10).text == "one\n"  # version 1 still serves


@pytest.mark.every_engine
@pytest.mark.parametrize("change, problem", [
    ({"build": {"context": "nowhere"}}, "services build context nowhere: no such directory"),
    ({"secrets": ["API_KEY"]}, "services/secrets: API_KEY: .swiftdeploy/secrets/API_KEY is missing"),
    ({"user": "root"}, "services/user: root runs the app as root; set services/allow_root: true"),
    ({"health": {"path": "healthz"}}, "services/health/path: must be a path starting with /"),
])
def test_bad_input_is_one_line_before_anything_changes(tmp_path, cleanup, change, problem):
    require_engine()
    project = own_project(tmp_path, cleanup, "local/site:1", 8080, "/healthz", services=change)
    result = swiftdeploy(project, "deploy")
    said = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode != 0 and any(problem in line for line in said), said
    assert "Traceback" not in result.stderr
    from swiftdeploy.engine import api as engine

    assert engine.containers(f"io.swiftdeploy.project={manifest_of_raw(project)}") == []


def test_a_secret_readable_by_others_is_refused(tmp_path, cleanup):
    require_engine()
    project = own_project(tmp_path, cleanup, "local/site:1", 8080, "/healthz", services={"secrets": ["API_KEY"]})
    keep_private(project / ".swiftdeploy" / "secrets" / "API_KEY", "value")
    os.chmod(project / ".swiftdeploy" / "secrets" / "API_KEY", 0o644)
    result = swiftdeploy(project, "deploy")
    assert result.returncode != 0 and "readable by others (mode 644); run `chmod 600" in result.stdout + result.stderr
    assert stat.S_IMODE((project / ".swiftdeploy" / "secrets" / "API_KEY").stat().st_mode) == 0o644  # left as it was


def manifest_of_raw(project: Path) -> str:
    return yaml.safe_load((project / "manifest.yaml").read_text())["project"]


def test_validate_says_a_user_image_is_judged_from_nginx(tmp_path):
    project = make_project(tmp_path / "project")
    document = yaml.safe_load((project / "manifest.yaml").read_text())
    document["services"].update({"image": "local/site:1", "build": False})
    (project / "manifest.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    result = swiftdeploy(project, "validate")
    assert "figures from nginx's request log" in result.stdout, result.stdout
