"""Gates on their own: ask OPA, never cache the answer.

Exit 0 allowed, 1 denied (OPA's reasons, one line each), 2 could not decide (OPA unreachable, its answer
malformed, no facts to ask with). `--format json` prints the answer as one JSON document on stdout
(swiftdeploy.json_output) and everything else on stderr. deploy, promote:canary and promote:stable ask their
gate as a step of their plan, right before the first step that needs it: a deploy with nothing to start
asks nothing.
"""

import sys

from .actions import hold_stack_lock, load_stack

FORMAT = {"name": "format", "long": "format", "default": "text",
          "choices": [("text", "lines for people"), ("json", "one JSON document on stdout, for CI")],
          "help": "text | json (one JSON document on stdout)"}


def task_infra_gate():
    """Ask OPA whether this host may take a deploy (disk, load, memory facts)."""
    return {"basename": "infra-gate", "actions": [infra_gate], "params": [FORMAT], "task_dep": ["init"],
            "uptodate": [False], "verbosity": 2, "meta": {"gate": "infra"}}


def task_canary_gate():
    """Ask OPA whether the canary's windowed error rate and P99 allow promotion."""
    return {"basename": "canary-gate", "actions": [canary_gate], "params": [FORMAT], "task_dep": ["init"],
            "uptodate": [False], "verbosity": 2, "meta": {"gate": "canary"}}


def infra_gate(format):  # noqa: A002 - doit passes the option by its name
    return answer("infra", format, ask_infra)


def canary_gate(format):  # noqa: A002
    return answer("canary", format, ask_canary)


def ask_infra(stack, say):
    from swiftdeploy.judge.gates import run_gate

    if not stack.opa().healthy():
        start_opa(stack)
    return run_gate(stack, "infra", "infra-gate", say)


def ask_canary(stack, say):
    from swiftdeploy.judge.gates import run_gate
    from swiftdeploy.converge.operations import require_canary

    require_canary(stack.manifest, "the canary gate")
    return run_gate(stack, "canary", "promote:stable", say)


def start_opa(stack) -> None:
    """OPA decides, so it is the one service started to ask, when nothing answers at its address."""
    from swiftdeploy.errors import SwiftDeployError
    from swiftdeploy.judge.gates import GateUnavailable

    try:
        if not any(c.role == "opa" and c.state == "running" for c in stack.runtime.containers()):
            from swiftdeploy.converge import opa_policy

            opa_policy.prepare(stack)
            stack.runtime.up(["opa"], no_deps=True)
    except SwiftDeployError as err:
        raise GateUnavailable(f"could not ask OPA at {stack.opa_url}: it does not answer, and starting it "
                              f"failed: {str(err).splitlines()[0]}") from None


def answer(domain: str, format: str, ask):  # noqa: A002
    """Ask one gate; the exit code (and the JSON document) say allowed, denied or could not decide."""
    import traceback

    from doit.exceptions import TaskFailed

    from swiftdeploy.errors import SwiftDeployError
    from swiftdeploy.judge.gates import GateDenied, GateUnavailable
    from swiftdeploy.present.json_output import ALLOWED, DENIED, emit, gate_document

    from .reporter import Undecided

    say = (lambda line: print(line, file=sys.stderr)) if format == "json" else print
    message = ""
    try:
        hold_stack_lock(f"{domain}-gate")
        document = gate_document(domain, ask(load_stack(), say))
    except GateDenied as err:
        document, message = gate_document(domain, err.decision), str(err)
    except GateUnavailable as err:
        document, message = gate_document(domain, facts=err.facts, error=str(err)), str(err)
    except SwiftDeployError as err:
        document, message = gate_document(domain, error=str(err).splitlines()[0]), str(err)
    except Exception as err:  # noqa: BLE001 - a bug is "could not decide" too, never "denied"
        traceback.print_exc()
        message = f"the {domain} gate failed with the error above (a bug: please report it)"
        document = gate_document(domain, error=f"{type(err).__name__}: {err}")
    if format == "json":
        emit(document)
    if document["exit_code"] == ALLOWED:
        return {"allow": True}
    return (TaskFailed if document["exit_code"] == DENIED else Undecided)(message)
