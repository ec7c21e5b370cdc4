"""`doit list` reads like a man page: every task of SPEC O, each with a one-line imperative doc."""

import importlib.machinery
import importlib.util
import subprocess
import sys

import pytest

from projectkit import ROOT, run_doit

SPEC_TASKS = ["init", "validate", "build", "infra-gate", "compose-up", "deploy", "canary-gate", "promote",
              "rollback", "chaos", "status", "audit", "teardown"]


def test_doit_list_shows_every_task_with_a_one_line_doc():
    result = run_doit(ROOT, "list", check=True)
    docs = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert set(SPEC_TASKS) <= set(docs)
    for name in SPEC_TASKS:
        doc = docs[name]
        assert doc[0].isupper() and not doc.endswith(":"), (name, doc)


def test_subtasks_have_docs_too():
    result = run_doit(ROOT, "list", "--all", check=True)
    docs = dict((line.split(None, 1) + [""])[:2] for line in result.stdout.splitlines())
    for name in ["init:nginx.conf", "init:docker-compose.yml", "init:opa-config.yaml", "init:secrets",
                 "promote:canary", "promote:stable"]:
        assert docs.get(name, "").strip(), name


@pytest.mark.parametrize("task, option", [("chaos", "--mode"), ("chaos", "--rate"), ("chaos", "--duration"),
                                          ("status", "--once"), ("teardown", "--clean")])
def test_doit_help_shows_each_tasks_options(task, option):
    assert option in run_doit(ROOT, "help", task, check=True).stdout


def load_wrapper():
    loader = importlib.machinery.SourceFileLoader("swiftdeploy_wrapper", str(ROOT / "swiftdeploy"))
    spec = importlib.util.spec_from_loader("swiftdeploy_wrapper", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@pytest.mark.parametrize("words, doit_args", [
    ("init", ["init"]),
    ("deploy", ["deploy"]),
    ("promote canary", ["promote:canary"]),
    ("promote stable", ["promote:stable"]),
    ("rollback", ["rollback"]),
    ("status --once", ["status", "--once"]),
    ("teardown --clean", ["teardown", "--clean"]),
    ("chaos error --rate 0.5", ["chaos", "--mode", "error", "--rate", "0.5"]),
    ("chaos slow --duration 3", ["chaos", "--mode", "slow", "--duration", "3"]),
    ("chaos recover", ["chaos", "--mode", "recover"]),
    ("chaos error --rate=0.25", ["chaos", "--mode", "error", "--rate", "0.25"]),
])
def test_the_wrapper_maps_the_articles_commands_onto_tasks(words, doit_args):
    assert load_wrapper().doit_argv(words.split()) == doit_args


@pytest.mark.parametrize("words, message", [
    ("promote", "swiftdeploy: promote needs one of: canary, stable"),
    ("promote sideways", "swiftdeploy: promote needs one of: canary, stable (got 'sideways')"),
    ("chaos meltdown", "swiftdeploy: chaos needs one of: error, recover, slow (got 'meltdown')"),
    ("deplyo", "swiftdeploy: unknown command 'deplyo'; commands: audit, build, chaos, deploy, init, promote, "
               "rollback, status, teardown, validate"),
    ("chaos error --rate abc", "swiftdeploy: chaos error: --rate needs a number, got 'abc'"),
    ("chaos error --rate", "swiftdeploy: chaos error: --rate needs a number"),
    ("chaos slow --rate 0.5", "swiftdeploy: chaos slow: unknown option '--rate'; chaos slow takes --duration"),
    ("status --bogus", "swiftdeploy: status: unknown option '--bogus'; status takes --once"),
    ("teardown --clean=yes", "swiftdeploy: teardown: --clean takes no value"),
    ("deploy --force", "swiftdeploy: deploy: unknown option '--force'; deploy takes no options"),
    ("promote canary --now", "swiftdeploy: promote canary: unknown option '--now'; promote canary takes no options"),
])
def test_the_wrapper_refuses_bad_words_in_one_line(words, message):
    result = subprocess.run([sys.executable, str(ROOT / "swiftdeploy"), *words.split()], capture_output=True,
                            text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == message
