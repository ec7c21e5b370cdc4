"""init: render generated/* from manifest.yaml + templates/, and create the stack's tokens."""

import hashlib
import json
import sys
from pathlib import Path

from .actions import MANIFEST, current_manifest, operator_action

GENERATED = Path("generated")
POLICIES = Path("policies")
# Code whose change can change any output (defaults live in manifest.py, the schema decides validity).
RENDER_CODE = [
    "src/swiftdeploy/render/templates.py", "src/swiftdeploy/model/manifest.py",
    "src/swiftdeploy/model/manifest.schema.json",
]


def task_init():
    """Render generated/ (nginx, compose, OPA config) from manifest.yaml and create the tokens."""
    from swiftdeploy.render.templates import INCLUDES, OUTPUTS, POLICY_READERS, SWARM_ONLY
    from swiftdeploy.secrets import SECRETS_DIR, TOKENS

    for output, (template, _fields) in OUTPUTS.items():
        as_written = TargetAsWritten(output)
        target = GENERATED / output
        # A file only one runtime uses is absent under the other, and doit runs a task whose target is
        # missing: such a file is no target, TargetAsWritten tells whether it is as the last render left it.
        files = {"clean": [(_remove, [target])]} if output in SWARM_ONLY else {"targets": [str(target)], "clean": True}
        yield {
            "name": output,
            "doc": f"render generated/{output} from templates/{template} and the manifest fields it reads",
            "actions": [(render_output, [output, as_written])],
            "file_dep": [f"templates/{template}", *(f"templates/{t}" for t in INCLUDES.get(output, ())), *RENDER_CODE,
                         *(_opa_inputs() if output in POLICY_READERS else [])],
            "uptodate": [ManifestSliceUnchanged(output), as_written],
            **files,
        }
    yield {
        "name": "secrets",
        "doc": "create the OPA and chaos tokens under .swiftdeploy/ (mode 0600; existing ones are kept)",
        "actions": [create_secrets],
        "targets": [str(SECRETS_DIR / name) for name in TOKENS],
        "uptodate": [True],
    }


def _opa_inputs() -> list[str]:
    """What OPA loads from policies/, and the template of its config (a missing policies/ is reported by the
    render, not by `doit list`)."""
    from swiftdeploy.render.policy import PolicyError, policy_files
    from swiftdeploy.render.templates import OUTPUTS

    config = f"templates/{OUTPUTS['opa-config.yaml'][0]}"
    try:
        return [config, *(str(POLICIES / name) for name in policy_files(POLICIES))]
    except PolicyError:
        return [config]


class ManifestSliceUnchanged:
    """uptodate check: the manifest fields this output reads hash to what they were at the last render.

    Checked lazily (when the task is considered), so `doit list` never reads the manifest. When the
    manifest's bytes are those of the last render nothing is parsed (a no-op `doit init` stays fast); an
    invalid manifest counts as changed, so the render action runs and reports every problem.
    """

    def __init__(self, output: str):
        self.output = output

    def __call__(self, task, values):
        content_md5 = md5_of(Path(MANIFEST))
        if content_md5 is None:
            return False
        # the files the manifest names that the output reads too (nginx.tls's certificate and key)
        files = values.get("files") or []
        unchanged = (values.get("manifest_md5") == content_md5
                     and [md5_of(Path(f)) for f in files] == values.get("files_md5", []))
        digest, files = (values.get("manifest_slice"), files) if unchanged else self.digest()
        files_md5 = [md5_of(Path(f)) for f in files]
        # doit replaces a task's saved values on every run, so they are saved again even when the task runs
        # for another reason (a template or the generated file changed)
        task.value_savers.append(lambda: {"manifest_md5": content_md5, "manifest_slice": digest, "files": files,
                                          "files_md5": files_md5})
        return unchanged or (digest is not None and values.get("manifest_slice") == digest)

    def digest(self) -> tuple[str | None, list[str]]:
        """The digest of the manifest fields the output reads, and the files they name."""
        from swiftdeploy.errors import SwiftDeployError
        from swiftdeploy.render.templates import fields_of, manifest_slice

        try:
            manifest = rendered_manifest()
        except SwiftDeployError:
            return None, []
        fields = fields_of(self.output, manifest)
        tls = manifest.nginx.tls
        files = [tls.cert, tls.key] if tls and "nginx.tls" in fields else []
        picked = manifest_slice(manifest, fields)
        return hashlib.md5(json.dumps(picked, sort_keys=True).encode()).hexdigest(), files


def rendered_manifest():
    """The manifest as the stack renders it: nginx.tls naming the certificate its files hold now."""
    from swiftdeploy.certificates import resolve

    return resolve(current_manifest(), Path("."))


class TargetAsWritten:
    """uptodate check: the generated file still holds what init last wrote (its md5, saved by the render).

    So a hand edit of generated/*, or one left by an interrupted operation, is rendered over, and found
    without rendering anything. `written_md5` tells the render action what init last wrote.
    """

    def __init__(self, output: str):
        self.path = GENERATED / output
        self.written_md5 = None

    def __call__(self, task, values):
        self.written_md5 = values.get("target_md5")
        return self.written_md5 is not None and (md5_of(self.path) or ABSENT) == self.written_md5


ABSENT = "absent"  # what a render of a file the runtime does not use leaves


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def md5_of(path: Path):
    """The md5 of a file's content, or None when it cannot be read."""
    try:
        return hashlib.md5(path.read_bytes()).hexdigest()
    except OSError:
        return None


@operator_action
def render_output(output, as_written):
    from swiftdeploy.files import write_atomic
    from swiftdeploy.render.policy import write_snapshot
    from swiftdeploy.render.templates import POLICY_READERS, render, used_by
    from swiftdeploy.secrets import SECRETS_DIR

    path = GENERATED / output
    manifest = rendered_manifest()
    if not used_by(output, manifest):
        _remove(path)
        return {"target_md5": ABSENT}
    revision = ""
    if output in POLICY_READERS:  # the snapshot the file mounts exists before anything can start OPA from it
        revision, _ = write_snapshot(POLICIES, SECRETS_DIR)
    if output == "nginx.conf" and manifest.nginx.tls:  # nginx may load the file at any restart: its certificate first
        from swiftdeploy.certificates import install

        install(manifest.nginx.tls, Path("."), SECRETS_DIR)
    text = render(output, manifest, policy_revision=revision)
    rendered_md5 = hashlib.md5(text.encode()).hexdigest()
    on_disk_md5 = md5_of(path)
    # A file that only differs because its inputs changed still holds what init last wrote.
    if as_written.written_md5 is not None and on_disk_md5 not in (None, as_written.written_md5, rendered_md5):
        print(f"{path} was changed outside init (a hand edit or an interrupted operation); "
              f"re-rendered from {MANIFEST}", file=sys.stderr)
    write_atomic(path, text)  # a file that already holds text is left alone, mtime and all
    return {"target_md5": rendered_md5}


@operator_action
def create_secrets():
    from swiftdeploy.secrets import ensure_secrets

    for path in ensure_secrets():
        print(f"created {path} (mode 0600)")
