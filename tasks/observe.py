"""status (the live dashboard) and chaos (fault injection into the canary)."""

from .actions import load_stack, operator_action
from .gates import FORMAT

CHAOS_MODES = [("slow", "sleep --duration seconds before answering"),
               ("error", "answer 500 to a --rate fraction of requests"),
               ("recover", "end chaos")]


def task_status():
    """Show the live dashboard: mode, chaos, req/s, error rate, P99, policy PASS/FAIL."""
    return {
        "actions": [status],
        "params": [{"name": "once", "long": "once", "type": bool, "default": False,
                    "help": "print one frame over the metrics window and exit"},
                   {**FORMAT, "help": "text | json (one frame as one JSON document on stdout; implies --once)"}],
        "uptodate": [False],
        "verbosity": 2,
    }


def task_chaos():
    """Inject or end chaos on the canary (slow, error, recover)."""
    return {
        "actions": [chaos],
        "params": [
            {"name": "mode", "long": "mode", "default": "", "choices": CHAOS_MODES, "help": "slow | error | recover"},
            {"name": "rate", "long": "rate", "type": float, "default": None, "help": "error: fraction answered 500"},
            {"name": "duration", "long": "duration", "type": float, "default": None,
             "help": "slow: seconds of delay"},
        ],
        "uptodate": [False],
        "verbosity": 2,
    }


def task_logs():
    """Show what the stack's containers print, each line behind its track or role (--follow: as it comes)."""
    from swiftdeploy.present.logs import ROLES

    return {
        "actions": [logs],
        "params": [
            {"name": "role", "long": "role", "default": "", "help": f"one of {', '.join(ROLES)} (default: all)"},
            {"name": "follow", "long": "follow", "type": bool, "default": False, "help": "print new lines until Ctrl-C"},
            {"name": "since", "long": "since", "default": "", "help": "only lines of the last 90s, 10m, 2h, 1d"},
            {"name": "tail", "long": "tail", "default": "", "help": "only the last N lines of each container"},
        ],
        "uptodate": [False],
        "verbosity": 2,
        "meta": {"owns_stdout": True},  # only the containers' lines: `./swiftdeploy logs | grep` reads them alone
    }


@operator_action
def logs(role, follow, since, tail):
    import sys

    from swiftdeploy.present import logs as output

    stack = load_stack()
    say = lambda line: print(line, flush=True)  # noqa: E731 - a pipe reader sees each line as it comes
    (output.follow if follow else output.show)(stack.runtime, role or None, since, tail, say)
    sys.stdout.flush()


@operator_action
def chaos(mode, rate, duration):
    from swiftdeploy.converge.chaos import inject

    stack = load_stack()
    answer = inject(stack, mode, rate=rate, duration=duration)
    print(f"chaos {mode}: {answer}")


def status(once, format):  # noqa: A002 - doit passes the option by its name
    return status_json() if format == "json" else status_text(once)


def status_json():
    from doit.exceptions import TaskFailed

    from swiftdeploy.present import observe
    from swiftdeploy.errors import SwiftDeployError
    from swiftdeploy.present.json_output import emit, status_document

    try:
        emit(status_document(observe.once(load_stack())))
    except SwiftDeployError as err:
        emit(status_document(error=str(err).splitlines()[0]))
        return TaskFailed(str(err))
    return None


@operator_action
def status_text(once):
    import sys

    from swiftdeploy.present import observe
    from swiftdeploy.present.dashboard import render_text

    from swiftdeploy.converge.certs import expiry_warning

    stack = load_stack()
    warning = expiry_warning(stack)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    if once or not sys.stdout.isatty():
        print(render_text(observe.once(stack)), end="")
        return None
    try:
        observe.live(stack)
    except KeyboardInterrupt:
        print()
    return None
