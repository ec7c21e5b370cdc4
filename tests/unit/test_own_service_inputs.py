"""What a user keeps beside the manifest for their own service, read the way SwiftDeploy reads it: secrets,
registry credentials, a build context (and what its .dockerignore leaves out), the new manifest keys and
their one-line errors, and the figures nginx's request log gives a track."""

import os

import pytest

from swiftdeploy.engine.build import BuildInputError, own_hash
from swiftdeploy.engine.registry import RegistryCredentialsError, credentials, registry_of
from swiftdeploy.engine.runtime.compose import why_unready
from swiftdeploy.judge.metrics import Scrape
from swiftdeploy.judge.nginx_source import NginxLogSource
from swiftdeploy.judge.requestlog import Request
from swiftdeploy.model.manifest import BUNDLED, Build, ManifestError, parse_manifest
from swiftdeploy.secrets import SecretError, read_app_secrets

BASE = """services:
  image: registry.example:5000/team/site:1
  port: 8000
  version: "1"
  mode: stable
{extra}nginx: {{image: "nginx:latest", port: 8080}}
network: {{name: n, driver_type: bridge}}
"""


def manifest(extra: str = ""):
    """A user's image (build: false unless extra names its build)."""
    return parse_manifest(BASE.format(extra=extra if "build:" in extra else "  build: false\n" + extra))


def problems(extra: str) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        manifest(extra)
    return caught.value.problems


def private(path, text, mode=0o600):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


# -- the manifest --------------------------------------------------------------------------------------


def test_the_seed_meaning_is_kept_and_a_users_image_gets_http_health_and_nginx_figures():
    from projectkit import ROOT
    from swiftdeploy.model.manifest import load_manifest

    seed = load_manifest(ROOT / "manifest.yaml")
    assert seed.services.build == BUNDLED and seed.services.health is None and seed.metrics_source == "scrape"
    own = manifest()
    assert own.services.build is None and own.services.canary.build is None
    assert own.services.health.path == "/healthz" and own.metrics_source == "nginx"
    assert own.nginx.max_body == "64k" and own.services.writable == ("/tmp",)


def test_the_users_keys_are_read_as_written():
    m = manifest("  build: {context: site, dockerfile: Dockerfile.prod, args: {A: 1, ONE: true}, target: web}\n"
                 "  env: {LEVEL: info, DEBUG: false, WORKERS: 4}\n  secrets: [DB_PASSWORD]\n"
                 "  command: [gunicorn, app:app]\n  user: '1000:1000'\n  writable: [/tmp, /var/cache/site]\n"
                 "  volumes: {data: /data}\n  resources: {memory: 256m, cpus: 0.5}\n")
    services = m.services
    assert services.build == Build("site", "Dockerfile.prod", (("A", "1"), ("ONE", "true")), "web")
    assert services.canary.build == services.build  # the canary builds what stable builds, unless it says
    assert services.env == (("LEVEL", "info"), ("DEBUG", "false"), ("WORKERS", "4"))
    assert services.command == ("gunicorn", "app:app") and services.user == "1000:1000"
    assert services.volumes == (("data", "/data"),) and services.resources.cpus == 0.5


@pytest.mark.parametrize("extra, problem", [
    ("  health: {path: healthz}\n",
     "services/health/path: must be a path starting with /, without spaces, such as /healthz, got \"healthz\""),
    ("  user: root\n", "services/user: root runs the app as root; set services/allow_root: true to accept that "
                       "(a process that breaks out of its container as root owns the host), or name a non-root uid"),
    ("  user: '0:0'\n", "services/user: 0:0 runs the app as root; set services/allow_root: true to accept that "
                        "(a process that breaks out of its container as root owns the host), or name a non-root uid"),
    ("  build: {context: site, nope: 1}\n", "services/build/nope: unknown key (known keys: args, context, dockerfile, target)"),
    ("  build: 7\n", "services/build: must be false, \"app\" or a mapping {context, dockerfile, args, target}, got 7"),
    ("  secrets: [A, A]\n", "services/secrets: A is listed twice"),
    ("  secrets: [A]\n  env: {A: x}\n", "services/env/A: is also a secret; keep it in one of env and secrets"),
    ("  env: {'bad name': 1}\n",
     "services/env: must be an environment variable name: letters, digits and '_', not starting with a digit, got \"bad name\""),
    ("  env: {ON: 1}\n", "services/env: the key true is not a name (YAML reads unquoted yes/no/on/off as booleans "
                        "and digits as numbers: quote it)"),
    ("  resources: {memory: lots}\n", "services/resources/memory: must be a size such as 256m or 2g, got \"lots\""),
    ("  secret_files: [a, a]\n", "services/secret_files: a is listed twice"),
    ("  secret_files: [A]\n  secrets: [A]\n",
     "services/secret_files/A: is also in services/secrets; a secret reaches the app one way"),
])
def test_bad_keys_are_one_line_each(extra, problem):
    assert problems(extra) == [problem]


def test_root_is_allowed_when_the_manifest_says_so():
    assert manifest("  user: root\n  allow_root: true\n").services.allow_root


def test_a_users_image_is_not_judged_by_the_bundled_apps_metrics():
    doc = BASE.format(extra="  build: false\n") + "metrics: {source: scrape}\n"
    with pytest.raises(ManifestError, match="metrics/source: scrape reads the bundled app's own metrics"):
        parse_manifest(doc)


def test_workers_are_the_bundled_apps_setting_and_refused_for_a_users_image():
    assert problems("  workers: 2\n") == ["services/workers: sets the bundled app's gunicorn workers; your own image "
                                         "runs its own command (give its server's worker setting in services/command "
                                         "or services/env)"]


# -- secrets ---------------------------------------------------------------------------------------------


def test_a_secret_is_its_files_value_without_the_trailing_newline(tmp_path):
    private(tmp_path / "secrets" / "DB_PASSWORD", "p4ss word\n")
    assert read_app_secrets(["DB_PASSWORD"], tmp_path) == {"DB_PASSWORD": "p4ss word"}


@pytest.mark.parametrize("setup, problem", [
    (lambda d: None, "services/secrets: API_KEY: {d}/secrets/API_KEY is missing"),
    (lambda d: private(d / "secrets" / "API_KEY", "x", 0o640), "is readable by others (mode 640); run `chmod 600"),
    (lambda d: private(d / "secrets" / "API_KEY", "\n"), "is empty or holds a NUL byte"),
])
def test_a_missing_shared_or_empty_secret_is_one_line_without_its_value(tmp_path, setup, problem):
    setup(tmp_path)
    with pytest.raises(SecretError) as caught:
        read_app_secrets(["API_KEY"], tmp_path)
    assert problem.format(d=tmp_path) in str(caught.value) and "\n" not in str(caught.value)


def test_secret_files_are_written_once_per_set_of_values_private_to_their_group_and_pruned(tmp_path):
    import stat

    from swiftdeploy.secrets import install_secret_files, prune_secret_files, secret_files_group

    group = install_secret_files({"db_password": "one", "api.key": "two"}, "d1", tmp_path)
    folder = tmp_path / "run-secrets" / "d1"
    assert group == secret_files_group() and folder.stat().st_gid == group
    assert stat.S_IMODE(folder.stat().st_mode) == 0o750 and stat.S_IMODE(folder.parent.stat().st_mode) == 0o700
    assert (folder / "db_password").read_text() == "one" and stat.S_IMODE((folder / "api.key").stat().st_mode) == 0o440
    assert install_secret_files({"db_password": "changed"}, "d1", tmp_path) == group
    assert (folder / "db_password").read_text() == "one", "a folder is never changed: its digest names its values"
    (tmp_path / "run-secrets" / ".d2.999").mkdir()  # what a writer killed mid-write leaves
    install_secret_files({"db_password": "new"}, "d2", tmp_path)
    prune_secret_files({"d2"}, tmp_path)
    assert sorted(p.name for p in (tmp_path / "run-secrets").iterdir()) == ["d2"]


def test_a_folder_the_engine_made_for_a_missing_bind_source_is_written_again(tmp_path):
    from swiftdeploy.secrets import install_secret_files

    half = tmp_path / "run-secrets" / "d1"
    half.mkdir(parents=True)
    (half / "db_password").write_text("")
    install_secret_files({"db_password": "one"}, "d1", tmp_path)
    assert (half / "db_password").read_text() == "one"


def test_a_missing_secret_file_names_its_key(tmp_path):
    with pytest.raises(SecretError, match="^services/secret_files: db: .*/secrets/db is missing"):
        read_app_secrets(["db"], tmp_path, "services/secret_files")


# -- registry credentials ----------------------------------------------------------------------------------


def test_registry_credentials_are_the_private_file_for_the_images_registry(tmp_path):
    assert registry_of("127.0.0.1:5000/team/site:1") == "127.0.0.1:5000"
    assert registry_of("team/site:1") is None and registry_of("nginx:latest") is None
    assert credentials("127.0.0.1:5000/team/site:1", tmp_path) is None  # none kept: the engine's own login
    private(tmp_path / "127.0.0.1:5000", "ops:secret\n")
    assert credentials("127.0.0.1:5000/team/site:1", tmp_path) == {
        "username": "ops", "password": "secret", "serveraddress": "127.0.0.1:5000"}
    os.chmod(tmp_path / "127.0.0.1:5000", 0o644)
    with pytest.raises(RegistryCredentialsError, match="readable by others"):
        credentials("127.0.0.1:5000/team/site:1", tmp_path)
    private(tmp_path / "127.0.0.1:5000", "no colon here\n")
    with pytest.raises(RegistryCredentialsError, match="must hold one line username:password"):
        credentials("127.0.0.1:5000/team/site:1", tmp_path)


# -- the user's build context --------------------------------------------------------------------------------


def test_the_build_hash_follows_the_context_but_not_what_dockerignore_leaves_out(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    (site / "index.html").write_text("one")
    (site / "notes.md").write_text("draft")
    (site / ".dockerignore").write_text("# not shipped\nnotes.md\n")
    build = Build("site")
    first = own_hash(tmp_path, build)
    (site / "notes.md").write_text("another draft")
    assert own_hash(tmp_path, build) == first
    (site / "index.html").write_text("two")
    changed = own_hash(tmp_path, build)
    assert changed != first
    assert own_hash(tmp_path, Build("site", args=(("A", "1"),))) != changed
    assert own_hash(tmp_path, Build("site", target="web")) != changed


@pytest.mark.parametrize("build, problem", [
    (Build("nowhere"), "services build context nowhere: no such directory"),
    (Build(".", dockerfile="Dockerfile.missing"), "services build: Dockerfile.missing not found in the context ."),
])
def test_a_missing_context_or_dockerfile_is_one_line(tmp_path, build, problem):
    with pytest.raises(BuildInputError, match=problem):
        own_hash(tmp_path, build)


# -- figures and failures --------------------------------------------------------------------------------------


def test_nginx_figures_count_the_tracks_requests_in_the_window():
    requests = [Request(at=100 + i, status=500 if i % 4 == 0 else 200, seconds=0.01 * (i + 1), track="canary", sticky=False)
                for i in range(8)] + [Request(at=103, status=200, seconds=0.5, track="stable", sticky=False)]
    source = NginxLogSource(lambda start, end: [r for r in requests if start < r.at <= end])
    base = Scrape(at=0.0, wall=99.5, requests={}, buckets={}, counts={}, gauges={})
    latest = Scrape(at=8.0, wall=107.5, requests={}, buckets={}, counts={}, gauges={})
    window = source.window("canary", base, latest)
    assert (window.requests, window.errors, window.error_rate) == (8, 2, 0.25)
    assert window.p99_ms == pytest.approx(80.0) and window.seconds == 8.0
    assert source.window("stable", base, latest).requests == 1


def test_a_track_that_never_got_healthy_is_explained_by_its_last_answers_and_output():
    inspected = {"State": {"Status": "running", "Health": {"Log": [
        {"Output": "GET /up: connection refused\n", "ExitCode": 1},
        {"Output": "GET /up: 503\n", "ExitCode": 1}]}}}
    said = why_unready(inspected, ["booting", "listening on :8000", "error: no database"])
    assert said == ("last answers: GET /up: connection refused | GET /up: 503; "
                    "last log lines: booting | listening on :8000 | error: no database")
    assert why_unready({"State": {"Status": "exited", "ExitCode": 3}}, []) == (
        "it exited with 3; no health answer yet; it printed nothing")


def test_teardown_removes_secret_files_the_manifest_no_longer_names(tmp_path, monkeypatch):
    from swiftdeploy.engine.runtime import compose
    from swiftdeploy.secrets import install_secret_files

    install_secret_files({"tok": "v"}, "d1", tmp_path)
    monkeypatch.setattr(compose, "run", lambda *args, **kwargs: None)
    compose.ComposeRuntime(tmp_path / "docker-compose.yml", "p", state_dir=tmp_path).down()  # no secret_files now
    assert list((tmp_path / "run-secrets").iterdir()) == []
