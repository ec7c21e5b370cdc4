"""rollout: walk services.canary.steps, judging the canary against stable; promote or roll back by itself."""

from .actions import hold_stack_lock, load_stack, operator_action


def task_rollout():
    """Walk the canary through its steps; promote it, or roll back by itself when the canary policy fails it."""
    return {"actions": [rollout], "task_dep": ["init"], "uptodate": [False], "verbosity": 2}


@operator_action
def rollout():
    from doit.exceptions import TaskFailed

    from swiftdeploy.converge.rollout import Rollout

    hold_stack_lock("rollout")
    stack = load_stack()
    result = Rollout(stack).run()
    if result.outcome == "promoted":
        print(f"promoted: stable is now {result.version} after {result.analyses} analyses in {result.seconds:.0f} s; "
              "manifest.yaml says mode: stable")
        return None
    return TaskFailed(f"rolled back by itself after {result.analyses} analyses in {result.seconds:.0f} s: "
                      f"{'; '.join(result.reasons)}; all traffic is on stable {result.version}")
