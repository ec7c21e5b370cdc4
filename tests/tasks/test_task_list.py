"""`doit list` reads like a man page: every task of SPEC O, each with a one-line imperative doc."""

import subprocess
import sys

import pytest

from projectkit import ROOT, load_wrapper, run_doit

SPEC_TASKS = ["init", "validate", "build", "infra-gate", "compose-up", "deploy", "canary-gate", "promote",
              "rollback", "rollout", "chaos", "status", "audit", "teardown"]


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
                                          ("status", "--once"), ("status", "--format"), ("teardown", "--clean"),
                                          ("plan", "--format"), ("infra-gate", "--format"),
                                          ("canary-gate", "--format"), ("logs", "--follow"), ("logs", "--since"),
                                          ("logs", "--tail"), ("logs", "--role")])
def test_doit_help_shows_each_tasks_options(task, option):
    assert option in run_doit(ROOT, "help", task, check=True).stdout


@pytest.mark.parametrize("words, doit_args", [
    ("init", ["init"]),
    ("deploy", ["deploy"]),
    ("plan", ["plan"]),
    ("promote canary", ["promote:canary"]),
    ("promote stable", ["promote:stable"]),
    ("rollback", ["rollback"]),
    ("status", ["status"]),
    ("status --once", ["status", "--once"]),
    ("status --once --format json", ["status", "--once", "--format", "json"]),
    ("plan --format json", ["plan", "--format", "json"]),
    ("plan --format=text", ["plan", "--format", "text"]),
    ("teardown --clean", ["teardown", "--clean"]),
    ("chaos error --rate 0.5", ["chaos", "--mode", "error", "--rate", "0.5"]),
    ("chaos slow --duration 3", ["chaos", "--mode", "slow", "--duration", "3"]),
    ("chaos recover", ["chaos", "--mode", "recover"]),
    ("chaos error --rate=0.25", ["chaos", "--mode", "error", "--rate", "0.25"]),
    ("chaos error", ["chaos", "--mode", "error"]),  # the task itself says --rate is missing
    ("audit", ["audit"]),
    ("certs", ["certs"]),
    ("certs --renew", ["certs", "--renew"]),
    ("audit verify", ["audit:verify"]),
    ("logs", ["logs"]),
    ("logs canary --follow", ["logs", "--role", "canary", "--follow"]),
    ("logs nginx --since 10m --tail 20", ["logs", "--role", "nginx", "--since", "10m", "--tail", "20"]),
    ("logs --since 90", ["logs", "--since", "90"]),
])
def test_the_wrapper_maps_the_articles_commands_onto_tasks(words, doit_args):
    assert load_wrapper().doit_argv(words.split()) == doit_args


def run_wrapper(*words):
    return subprocess.run([sys.executable, str(ROOT / "swiftdeploy"), *words], capture_output=True, text=True)


@pytest.mark.parametrize("words, message", [
    ("promote", "promote needs one of: canary, stable; see ./swiftdeploy promote --help"),
    ("promote sideways", "promote needs one of: canary, stable (got 'sideways'); see ./swiftdeploy promote --help"),
    ("promote canry", "promote needs one of: canary, stable (got 'canry', did you mean 'canary'?); "
                      "see ./swiftdeploy promote --help"),
    ("chaos meltdown", "chaos needs one of: error, recover, slow (got 'meltdown'); see ./swiftdeploy chaos --help"),
    ("deplyo", "unknown command 'deplyo' (did you mean 'deploy'?); see ./swiftdeploy --help"),
    ("frobnicate", "unknown command 'frobnicate'; commands: audit, build, certs, chaos, deploy, init, logs, plan, "
                   "promote, rollback, rollout, status, teardown, validate; see ./swiftdeploy --help"),
    ("logs canry", "logs: unexpected word 'canry' (did you mean 'canary'?); see ./swiftdeploy logs --help"),
    ("logs stable --since 10 minutes", "logs stable: unexpected word 'minutes' (logs stable takes --follow, --since, "
                                       "--tail); see ./swiftdeploy logs stable --help"),
    ("logs --since 10x", "logs: --since needs a duration such as 90s, 10m, 2h or 1d, got '10x'; "
                         "see ./swiftdeploy logs --help"),
    ("logs opa --since", "logs opa: --since needs a duration such as 90s, 10m, 2h or 1d; "
                         "see ./swiftdeploy logs opa --help"),
    ("chaos error --rate abc", "chaos error: --rate needs a number, got 'abc'; see ./swiftdeploy chaos error --help"),
    ("chaos error --rate", "chaos error: --rate needs a number; see ./swiftdeploy chaos error --help"),
    ("chaos error --rate nan", "chaos error: --rate needs a finite number, got 'nan'; "
                               "see ./swiftdeploy chaos error --help"),
    ("chaos slow --duration=-inf", "chaos slow: --duration needs a finite number, got '-inf'; "
                                   "see ./swiftdeploy chaos slow --help"),
    ("chaos slow --rate 0.5", "chaos slow: unknown option '--rate' (chaos slow takes --duration); "
                              "see ./swiftdeploy chaos slow --help"),
    ("status --bogus", "status: unknown option '--bogus' (status takes --once, --format); "
                       "see ./swiftdeploy status --help"),
    ("status --format yaml", "status: --format needs one of: text, json (got 'yaml'); see ./swiftdeploy status --help"),
    ("plan --format", "plan: --format needs one of: text, json; see ./swiftdeploy plan --help"),
    ("status --onc", "status: unknown option '--onc' (did you mean '--once'?); see ./swiftdeploy status --help"),
    ("teardown --clean=yes", "teardown: --clean takes no value; see ./swiftdeploy teardown --help"),
    ("deploy --force", "deploy: unknown option '--force' (deploy takes no options); see ./swiftdeploy deploy --help"),
    ("deploy now", "deploy: unexpected word 'now' (deploy takes no options); see ./swiftdeploy deploy --help"),
    ("promote canary --now", "promote canary: unknown option '--now' (promote canary takes no options); "
                             "see ./swiftdeploy promote canary --help"),
    ("plan --dry", "plan: unknown option '--dry' (plan takes --format); see ./swiftdeploy plan --help"),
    ("audit verfy", "audit: unexpected word 'verfy' (did you mean 'verify'?); see ./swiftdeploy audit --help"),
    ("audit verify --all", "audit verify: unknown option '--all' (audit verify takes no options); "
                           "see ./swiftdeploy audit verify --help"),
    ("--verbose deploy", "unknown option '--verbose' (options go after the command); see ./swiftdeploy --help"),
])
def test_the_wrapper_refuses_bad_words_in_one_line(words, message):
    result = run_wrapper(*words.split())
    assert result.returncode == (1 if words.startswith("plan") else 2), "plan's 2 means changes pending"
    assert result.stderr.strip() == "swiftdeploy: " + message
    assert not result.stdout


@pytest.mark.parametrize("words, mentions", [
    ("chaos error --help", ["usage: ./swiftdeploy chaos error", "--rate FRACTION", "doit chaos --mode error"]),
    ("chaos slow -h", ["usage: ./swiftdeploy chaos slow", "--duration SECONDS"]),
    ("status --help", ["usage: ./swiftdeploy status", "--once"]),
    ("teardown --help", ["--clean"]),
    ("help chaos", ["usage: ./swiftdeploy chaos", "error", "slow", "recover"]),
    ("audit --help", ["usage: ./swiftdeploy audit", "verify", "doit audit"]),
    ("help audit verify", ["usage: ./swiftdeploy audit verify", "doit audit:verify"]),
    ("--help", ["plan", "promote", "chaos", "teardown"]),
    ("help", ["plan", "promote", "chaos", "teardown"]),
])
def test_the_wrapper_shows_argparse_help_for_each_command(words, mentions):
    result = run_wrapper(*words.split())
    assert result.returncode == 0, result.stderr
    for text in mentions:
        assert text in result.stdout, text
    assert not result.stderr


def test_the_wrapper_without_words_prints_usage_and_fails():
    result = run_wrapper()
    assert result.returncode == 2
    assert "usage: ./swiftdeploy" in result.stdout and "plan" in result.stdout
