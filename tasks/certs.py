"""certs: the certificate nginx serves, renewed from ACME when due."""

from .actions import hold_stack_lock, load_stack, operator_action, recorded


def task_certs():
    """Show the certificate's names and expiry; renew it from ACME when a third of its lifetime is left."""
    return {
        "actions": [certs],
        "task_dep": ["init"],
        "params": [{"name": "renew", "long": "renew", "type": bool, "default": False,
                    "help": "renew from ACME now, whatever the date (a key that may have leaked)"}],
        "uptodate": [False],
        "verbosity": 2,
    }


@operator_action
def certs(renew):
    from swiftdeploy.converge import certs as certificates, operations

    hold_stack_lock("certs")
    stack = load_stack()
    cert = certificates.current(stack)
    if cert is None:
        print("no nginx.tls in manifest.yaml: nginx serves plain http only")
        return None
    print(certificates.describe(stack, cert))
    if not certificates.renew_due(stack, force=renew):
        return None
    outcome = recorded(stack, "deploy", {"reason": "certificate renewed"}, lambda: operations.deploy(stack))
    print(f"nginx serves the new certificate (config {stack.desired().generation}) in {outcome.seconds} s")
    return None
