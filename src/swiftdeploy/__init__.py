"""SwiftDeploy: deploy a web service safely from one declarative manifest.

The packages, in the order the data flows; each imports only those above it (and the modules beside this
file: errors, files, commands, secrets, state), which tests/unit/test_layout.py holds:

    model/     the manifest: load, validate against its JSON Schema, edit in place
    render/    the manifest rendered: generated files, and the desired state they define
    engine/    the world as it is: the Docker API, runtimes (Compose, Swarm), images, host probes
    evidence/  the tamper-evident history every operation appends to
    judge/     facts measured and OPA asked: metrics, request log, analysis, gates
    converge/  desired vs observed -> plan -> steps, journaled, locked, confirmed; operations, rollout
    present/   what an operator reads: status, the dashboard, plan reports, preflight, JSON output
    report/    the audit report, written from the history
"""

__version__ = "0.1.0"
