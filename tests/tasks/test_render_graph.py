"""doit init: one subtask per generated file, rebuilt only when its own inputs change."""

import os
import re
import shutil
import stat
from pathlib import Path

from projectkit import copy_project, run_doit
from swiftdeploy.model.manifest import load_manifest
from swiftdeploy.render.templates import render

OUTPUTS = ["nginx.conf", "docker-compose.yml", "opa-config.yaml", "prometheus.yml", "prometheus-rules.yml",
           "grafana-dashboard.json"]
EVERY_FILE = {f"init:{name}" for name in OUTPUTS}
CHANGED_OUTSIDE = ("generated/nginx.conf was changed outside init (a hand edit or an interrupted operation); "
                   "re-rendered from manifest.yaml")


def executed(result) -> set[str]:
    """Tasks doit ran (". name"), as opposed to skipped as up to date ("-- name")."""
    return {line[3:].strip() for line in result.stdout.splitlines() if line.startswith(".  ")}


def snapshot(project: Path) -> dict[str, bytes]:
    return {name: (project / "generated" / name).read_bytes() for name in OUTPUTS}


def test_first_run_renders_every_file_and_the_tokens(project):
    result = run_doit(project, "init", check=True)
    # init:stack.yml runs once too: it records that this runtime (compose) has no stack.yml
    assert executed(result) == EVERY_FILE | {"init:stack.yml", "init:secrets"}
    assert not (project / "generated" / "stack.yml").exists()
    for name in OUTPUTS:
        assert (project / "generated" / name).stat().st_size > 0
    secrets = project / ".swiftdeploy"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    for name in ("opa.env", "app.env"):
        assert stat.S_IMODE((secrets / name).stat().st_mode) == 0o600
    token = (secrets / "opa.env").read_text().split("=", 1)[1].strip()
    assert len(token) == 64 and token not in result.stdout + result.stderr


def test_a_second_run_does_nothing_and_touches_no_file(project):
    run_doit(project, "init", check=True)
    mtimes = {n: (project / "generated" / n).stat().st_mtime_ns for n in OUTPUTS}
    result = run_doit(project, "init", check=True)
    assert executed(result) == set()
    assert {n: (project / "generated" / n).stat().st_mtime_ns for n in OUTPUTS} == mtimes


def test_deleting_generated_regenerates_byte_identical_files(project):
    run_doit(project, "init", check=True)
    before = snapshot(project)
    tokens = (project / ".swiftdeploy" / "opa.env").read_bytes()
    shutil.rmtree(project / "generated")
    result = run_doit(project, "init", check=True)
    assert executed(result) == EVERY_FILE
    assert snapshot(project) == before
    assert (project / ".swiftdeploy" / "opa.env").read_bytes() == tokens, "existing tokens are never replaced"


def test_changing_only_the_nginx_template_rerenders_only_nginx_conf(project):
    run_doit(project, "init", check=True)
    template = project / "templates" / "nginx.conf.j2"
    template.write_text(template.read_text().replace("keepalive_timeout 65s;", "keepalive_timeout 60s;"))
    result = run_doit(project, "init", check=True)
    assert executed(result) == {"init:nginx.conf"}
    assert "keepalive_timeout 60s;" in (project / "generated" / "nginx.conf").read_text()
    assert executed(run_doit(project, "init", check=True)) == set()


def test_a_policy_edit_rerenders_only_the_files_that_mount_its_snapshot(project):
    from swiftdeploy.render.policy import revision

    run_doit(project, "init", check=True)
    data = project / "policies" / "data.json"
    data.write_text(data.read_text().replace('"max_p99_ms": 500', '"max_p99_ms": 400'))
    test = project / "policies" / "infra_test.rego"
    result = run_doit(project, "init", check=True)
    # stack.yml too: it records again that this runtime has none
    assert executed(result) == {"init:docker-compose.yml", "init:stack.yml"}
    rev = revision(project / "policies")
    assert f"../.swiftdeploy/policy/{rev}:/policies:ro" in (project / "generated" / "docker-compose.yml").read_text()
    assert '"max_p99_ms": 400' in (project / ".swiftdeploy" / "policy" / rev / "data.json").read_text()
    test.write_text(test.read_text() + "\n# a test is no part of what OPA loads\n")
    assert executed(run_doit(project, "init", check=True)) == set()


def test_a_new_opa_config_is_a_new_opa_definition(project):
    run_doit(project, "init", check=True)
    before = (project / "generated" / "docker-compose.yml").read_text()
    template = project / "templates" / "opa-config.yaml.j2"
    template.write_text(template.read_text().replace("  console: true", "  console: false"))
    result = run_doit(project, "init", check=True)
    assert executed(result) == {"init:opa-config.yaml", "init:docker-compose.yml", "init:stack.yml"}
    after = (project / "generated" / "docker-compose.yml").read_text()
    spec = re.compile(r'io.swiftdeploy.role: opa\n      io.swiftdeploy.spec: "(\w+)"')
    assert spec.search(before)[1] != spec.search(after)[1], "OPA is replaced, so it reads the new config"


def test_changing_only_nginx_port_rerenders_only_the_files_that_use_it(project):
    run_doit(project, "init", check=True)
    opa_before = (project / "generated" / "opa-config.yaml").stat().st_mtime_ns
    manifest = project / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("port: 8080", "port: 8090"))
    result = run_doit(project, "init", check=True)
    assert executed(result) == {"init:nginx.conf", "init:docker-compose.yml"}
    assert "listen 8090;" in (project / "generated" / "nginx.conf").read_text()
    assert '"8090:8090"' in (project / "generated" / "docker-compose.yml").read_text()
    assert (project / "generated" / "opa-config.yaml").stat().st_mtime_ns == opa_before


def test_prometheus_settings_rerender_only_the_files_that_read_them(project):
    run_doit(project, "init", check=True)
    manifest = project / "manifest.yaml"
    manifest.write_text(manifest.read_text() + "prometheus:\n  scrape_interval_seconds: 2\n")
    result = run_doit(project, "init", check=True)
    assert executed(result) == {"init:docker-compose.yml", "init:prometheus.yml", "init:prometheus-rules.yml"}
    assert "scrape_interval: 2s" in (project / "generated" / "prometheus.yml").read_text()
    manifest.write_text(manifest.read_text().replace("  mode: stable\n", "  mode: stable\n  canary:\n    window_seconds: 20\n"))
    result = run_doit(project, "init", check=True)
    assert executed(result) == {"init:docker-compose.yml", "init:prometheus-rules.yml", "init:grafana-dashboard.json"}
    assert "job_track:http_request_duration_seconds:p99_rate20s" in (
        project / "generated" / "grafana-dashboard.json").read_text()
    manifest.write_text(manifest.read_text() + "metrics:\n  source: prometheus\n")
    assert executed(run_doit(project, "init", check=True)) == set(), "the source is read at run time only"


def test_a_comment_only_manifest_edit_rerenders_nothing(project):
    run_doit(project, "init", check=True)
    manifest = project / "manifest.yaml"
    manifest.write_text(manifest.read_text() + "# a note from the operator\n")
    assert executed(run_doit(project, "init", check=True)) == set()


def test_a_hand_edited_generated_file_is_rerendered_and_reported(project):
    run_doit(project, "init", check=True)
    fresh = snapshot(project)
    conf = project / "generated" / "nginx.conf"
    conf.write_text(conf.read_text().replace("keepalive_timeout 65s;", "keepalive_timeout 5s;"))
    result = run_doit(project, "init", check=True)
    assert executed(result) == {"init:nginx.conf"}
    assert result.stderr.splitlines() == [CHANGED_OUTSIDE]
    assert snapshot(project) == fresh
    assert executed(run_doit(project, "init", check=True)) == set()


def test_a_deleted_file_is_rendered_again_without_a_report_and_a_restored_one_is_up_to_date(project):
    run_doit(project, "init", check=True)
    conf = project / "generated" / "nginx.conf"
    saved = conf.read_bytes()
    conf.unlink()
    conf.write_bytes(saved)
    result = run_doit(project, "init", check=True)
    assert (executed(result), result.stderr) == (set(), "")
    conf.unlink()
    result = run_doit(project, "init", check=True)
    assert (executed(result), result.stderr) == ({"init:nginx.conf"}, "")
    assert conf.read_bytes() == saved


def test_a_file_out_of_date_because_its_inputs_changed_is_not_reported(project):
    run_doit(project, "init", check=True)
    manifest = project / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("port: 8080", "port: 8090"))
    template = project / "templates" / "opa-config.yaml.j2"
    template.write_text(template.read_text() + "# a note\n")
    result = run_doit(project, "init", check=True)
    # stack.yml labels OPA with opa-config.yaml's digest as the compose file does (it records again that it has none)
    assert executed(result) == {"init:nginx.conf", "init:docker-compose.yml", "init:opa-config.yaml", "init:stack.yml"}
    assert result.stderr == ""


def test_a_file_that_already_holds_its_fresh_rendering_is_not_rewritten(project):
    run_doit(project, "init", check=True)
    manifest = project / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("port: 8080", "port: 8090"))
    conf = project / "generated" / "nginx.conf"
    # what a promote does: write the new generated file before init runs
    conf.write_text(render("nginx.conf", load_manifest(manifest), project / "templates"))
    os.utime(conf, ns=(1_000_000_000, 1_000_000_000))
    result = run_doit(project, "init", check=True)
    assert executed(result) == {"init:nginx.conf", "init:docker-compose.yml"}
    assert result.stderr == ""
    assert conf.stat().st_mtime_ns == 1_000_000_000
    assert "listen 8090;" in conf.read_text()
    assert executed(run_doit(project, "init", check=True)) == set()


def test_the_dependency_state_survives_a_ci_cache_restored_elsewhere(project, tmp_path):
    run_doit(project, "init", check=True)
    elsewhere = tmp_path / "restored" / "checkout"
    shutil.copytree(project, elsewhere)
    for path in elsewhere.rglob("*"):  # a cache restore and a fresh checkout give new mtimes
        os.utime(path, None)
    result = run_doit(elsewhere, "init", check=True)
    assert executed(result) == set(), result.stdout
    assert (elsewhere / ".doit.db").exists()


def test_an_invalid_manifest_fails_with_one_line_per_problem_and_leaves_files_alone(project):
    run_doit(project, "init", check=True)
    before = snapshot(project)
    manifest = project / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("port: 8080", "port: 70000").replace("mode: stable", "mode: blue"))
    result = run_doit(project, "init")
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert errors == [
        "swiftdeploy: init:nginx.conf: manifest.yaml: nginx/port: must be 1-65535, got 70000",
        'swiftdeploy: init:nginx.conf: manifest.yaml: services/mode: must be one of stable, canary; got "blue"',
    ]
    assert snapshot(project) == before


def test_a_broken_template_leaves_the_previous_file(project):
    run_doit(project, "init", check=True)
    before = snapshot(project)
    (project / "templates" / "nginx.conf.j2").write_text("{{ services.image }}\n")  # a field nginx may not read
    result = run_doit(project, "init")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "templates/nginx.conf.j2:" in result.stderr and "image" in result.stderr
    assert snapshot(project) == before
    assert not list((project / "generated").glob(".*.tmp"))


def test_doit_list_reads_no_manifest(tmp_path):
    project = copy_project(tmp_path / "p")
    (project / "manifest.yaml").write_text("this: [is not valid\n")
    result = run_doit(project, "list")
    assert result.returncode == 0 and "init" in result.stdout


def test_runtime_swarm_renders_stack_yml_and_compose_again_removes_it(project):
    run_doit(project, "init", check=True)
    manifest = project / "manifest.yaml"
    compose_text = manifest.read_text()
    manifest.write_text("runtime: swarm\n" + compose_text.replace("  mode: stable\n", "  mode: stable\n  replicas: 2\n"))
    result = run_doit(project, "init", check=True)
    assert "init:stack.yml" in executed(result)
    assert "replicas: 2" in (project / "generated" / "stack.yml").read_text()
    assert executed(run_doit(project, "init", check=True)) == set()
    manifest.write_text(compose_text)
    result = run_doit(project, "init", check=True)
    assert "init:stack.yml" in executed(result) and not (project / "generated" / "stack.yml").exists()


def imports_jsonschema(project: Path, *args: str) -> tuple[bool, object]:
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "doit", *args], cwd=project,
                            capture_output=True, text=True, timeout=120)
    return re.search(r"\| jsonschema$", result.stderr, re.MULTILINE) is not None, result


def test_a_manifest_that_passed_the_schema_is_not_checked_again_until_it_or_the_schema_changes(project):
    run_doit(project, "init", check=True)
    record = project / ".swiftdeploy" / "schema-passed"
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    checked, result = imports_jsonschema(project, "init")
    assert result.returncode == 0 and not checked, "the same manifest was checked against the schema again"

    manifest = project / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("port: 3000", 'port: "three thousand"', 1))
    checked, result = imports_jsonschema(project, "init")
    assert checked and result.returncode != 0
    assert 'services/port: must be an integer, got string "three thousand"' in result.stdout + result.stderr

    manifest.write_text(manifest.read_text().replace('port: "three thousand"', "port: 3001", 1))
    assert imports_jsonschema(project, "init")[0], "an edited manifest is checked in full"
    assert not imports_jsonschema(project, "init")[0]
    record.write_text("0" * 64)  # another schema (an upgrade) gives another digest: the same as a stale record
    assert imports_jsonschema(project, "init")[0]
