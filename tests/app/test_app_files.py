"""Static checks of the image recipe and the scripts (SPEC A-7, C-2, C-4); no engine needed."""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import json
import os
import re
import subprocess
import sys

import pytest
from app_testkit import APP_DIR, VENV_PYTHON


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (APP_DIR / "Dockerfile").read_text()
    text = re.sub(r"\\\n", " ", text)  # join continuation lines
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def test_requirements_are_pinned_to_what_the_tests_ran_with():
    pins = {}
    for line in (APP_DIR / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and re.fullmatch(r"[0-9][0-9A-Za-z.]*", version), line
            pins[name.lower()] = version
    assert {"flask", "gunicorn", "prometheus-client"} <= set(pins)
    for name, version in pins.items():
        assert importlib.metadata.version(name) == version, name


def test_dockerfile_shape():
    instructions = dockerfile_instructions()
    assert instructions[0] == ("ARG", "BASE_IMAGE=python:3.12-slim")
    assert instructions[1] == ("FROM", "${BASE_IMAGE}")
    keywords = [k for k, _ in instructions]
    assert "HEALTHCHECK" not in keywords  # compose defines it
    assert keywords.count("FROM") == 1
    assert ("USER", "10001:10001") in instructions
    assert ("EXPOSE", "3000") in instructions
    env = " ".join(v for k, v in instructions if k == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    runs = " ".join(v for k, v in instructions if k == "RUN")
    assert "python3 -m venv /opt/venv" in runs
    assert "pip install --no-cache-dir -r" in runs
    assert "--uid 10001" in runs and ":10001:10001:" in runs  # useradd, or a passwd line without it
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k in ("RUN", "COPY"))
    cmd = json.loads(dict(instructions)["CMD"])  # exec form: gunicorn is PID 1 and gets SIGTERM
    assert cmd == ["/opt/venv/bin/gunicorn", "--config", "/app/gunicorn.conf.py"]


def test_every_copied_file_exists_and_is_not_dockerignored():
    ignored = [p.strip() for p in (APP_DIR / ".dockerignore").read_text().splitlines() if p.strip()[:1] not in ("", "#")]
    for keyword, rest in dockerfile_instructions():
        if keyword != "COPY":
            continue
        sources = rest.split()[:-1]
        for source in sources:
            assert not source.startswith("--"), "keep COPY flags out: the legacy builder lacks some"
            assert (APP_DIR / source).exists(), source
            assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source


@pytest.mark.parametrize("name", ["healthcheck", "scrape"])
def test_scripts_are_executable_stdlib_only_python(name):
    path = APP_DIR / name
    assert os.access(path, os.X_OK)
    text = path.read_text()
    assert text.splitlines()[0] == "#!/opt/venv/bin/python"
    modules = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            modules.add(node.module.split(".")[0])
    assert modules <= set(sys.stdlib_module_names), modules


def test_app_modules_stay_small():
    for path in (APP_DIR / "swiftdeploy_app").glob("*.py"):
        assert len(path.read_text().splitlines()) < 200, path.name


def test_wsgi_entry_point_exits_with_one_line_on_bad_settings():
    env = {k: v for k, v in os.environ.items() if k not in ("MODE", "APP_PORT")}
    env["MODE"] = "green"
    result = subprocess.run(
        [str(VENV_PYTHON), "-c", "import swiftdeploy_app.wsgi"],
        cwd=APP_DIR,
        env=env,
        capture_output=True,
        timeout=30,
    )
    assert result.returncode == 3  # gunicorn's "worker failed to boot": no respawn loop
    assert result.stderr.decode() == "swiftdeploy-app: MODE must be 'stable' or 'canary', got 'green'\n"


@pytest.mark.parametrize(("cpu_max", "expected"), [("max 100000\n", 2), ("150000 100000\n", 2), ("50000 100000\n", 1),
                                                     ("100000 100000\n", 1), ("800000 100000\n", 2), ("garbage", 2)])
def test_the_usable_cpus_are_the_affinity_capped_by_the_cgroup_quota(tmp_path, monkeypatch, cpu_max, expected):
    from swiftdeploy_app import settings

    monkeypatch.setattr(settings.os, "sched_getaffinity", lambda pid: {0, 1})
    (tmp_path / "cpu.max").write_text(cpu_max)
    assert settings.usable_cpus(str(tmp_path)) == expected
    assert settings.usable_cpus(str(tmp_path / "absent")) == 2
