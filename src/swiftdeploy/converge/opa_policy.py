"""The policy as part of the desired state: a revision of policies/ reaches OPA only checked, and confirmed.

OPA mounts one revision's snapshot (render/policy.py). Before an OPA starts from a revision it has not
served, the snapshot is compiled with `opa check` in OPA's own image, once per revision: a policy that does
not compile is one line, and the running OPA, which still mounts its own snapshot, keeps deciding. After
OPA (re)starts, deploy goes on only once OPA's own answer names the revision.
"""

import time

from ..engine.api import ImageNotPresent
from ..errors import SwiftDeployError
from ..render.policy import PolicyError, prune, write_snapshot

CONFIRM_SECONDS = 30


def prepare(stack, revision: str | None = None) -> str:
    """The current revision's snapshot exists and compiles (checked once per revision): its revision.

    `revision` is the one a plan was made for: policies/ edited since then is an error, not a surprise."""
    current, folder = write_snapshot(stack.policies, stack.state_dir)
    if revision is not None and current != revision:
        raise PolicyError(f"policies/ changed during this command (now revision {current}, planned with "
                          f"{revision}); run it again")
    checked = folder.with_name(f"{current}.checked")
    if not checked.exists():
        try:
            problem = stack.runtime.policy_problem(stack.manifest.opa.image, folder)
        except ImageNotPresent:
            return current  # OPA's image comes with the stack's start, and OPA compiles the policy at its start
        if problem is not None:
            raise PolicyError(f"policies/ does not compile (revision {current}), so OPA keeps the policy it "
                              f"serves: {problem}")
        checked.touch()
    return current


def confirm(stack, revision: str, seconds: float = CONFIRM_SECONDS) -> None:
    """OPA answers, and names `revision` as the policy it serves; else one line says what it serves."""
    client = stack.opa()
    deadline = time.monotonic() + seconds
    served = None
    while time.monotonic() < deadline:
        served = client.served_revision()
        if served == revision:
            prune(stack.state_dir, keep={revision})
            return
        time.sleep(0.05)
    now = f"serves policy revision {served}" if served else "does not answer with a policy revision"
    raise SwiftDeployError(f"OPA at {stack.opa_url} {now} {seconds:.0f} s after its start; policies/ is revision "
                           f"{revision} (see ./swiftdeploy logs opa)")
