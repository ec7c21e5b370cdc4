"""status (the live dashboard) and chaos (fault injection into the canary)."""

from .actions import load_stack, not_implemented, operator_action

CHAOS_MODES = [("slow", "sleep --duration seconds before answering"),
               ("error", "answer 500 to a --rate fraction of requests"),
               ("recover", "end chaos")]


def task_status():
    """Show the live dashboard: mode, chaos, req/s, error rate, P99, policy PASS/FAIL."""
    return {
        "actions": [not_implemented],
        "params": [{"name": "once", "long": "once", "type": bool, "default": False,
                    "help": "print one frame and exit"}],
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


@operator_action
def chaos(mode, rate, duration):
    from swiftdeploy.chaos import inject

    stack = load_stack()
    answer = inject(stack, mode, rate=rate, duration=duration)
    print(f"chaos {mode}: {answer}")
