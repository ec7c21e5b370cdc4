"""init: render generated/* from manifest.yaml + templates/, and create the stack's tokens."""

import hashlib
import json
from functools import lru_cache
from pathlib import Path

from .actions import operator_action

MANIFEST = "manifest.yaml"
GENERATED = Path("generated")
# Code whose change can change any output (defaults live in manifest.py, the schema decides validity).
RENDER_CODE = ["src/swiftdeploy/render.py", "src/swiftdeploy/manifest.py", "src/swiftdeploy/manifest.schema.json"]


def task_init():
    """Render generated/ (nginx, compose, OPA config) from manifest.yaml and create the tokens."""
    from swiftdeploy.render import OUTPUTS
    from swiftdeploy.secrets import SECRETS_DIR, TOKENS

    for output, (template, _fields) in OUTPUTS.items():
        yield {
            "name": output,
            "doc": f"render generated/{output} from templates/{template} and the manifest fields it reads",
            "actions": [(render_output, [output])],
            "file_dep": [f"templates/{template}", *RENDER_CODE],
            "uptodate": [ManifestSliceUnchanged(output)],
            "targets": [str(GENERATED / output)],
            "clean": True,
        }
    yield {
        "name": "secrets",
        "doc": "create the OPA and chaos tokens under .swiftdeploy/ (mode 0600; existing ones are kept)",
        "actions": [create_secrets],
        "targets": [str(SECRETS_DIR / name) for name in TOKENS],
        "uptodate": [True],
    }


@lru_cache(maxsize=4)
def _manifest_for(content: bytes):
    from swiftdeploy.manifest import parse_manifest

    return parse_manifest(content, MANIFEST)


def current_manifest():
    """The validated manifest (parsed once per process per content)."""
    from swiftdeploy.manifest import load_manifest

    try:
        content = Path(MANIFEST).read_bytes()
    except OSError:
        return load_manifest(MANIFEST)  # raises the proper one-line error
    return _manifest_for(content)


class ManifestSliceUnchanged:
    """uptodate check: the manifest fields this output reads hash to what they were at the last render.

    Checked lazily (when the task is considered), so `doit list` never reads the manifest. When the
    manifest's bytes are those of the last render nothing is parsed (a no-op `doit init` stays fast); an
    invalid manifest counts as changed, so the render action runs and reports every problem.
    """

    def __init__(self, output: str):
        self.output = output

    def __call__(self, task, values):
        try:
            content_md5 = hashlib.md5(Path(MANIFEST).read_bytes()).hexdigest()
        except OSError:
            return False
        if values.get("manifest_md5") == content_md5:
            return True
        digest = self.digest()
        task.value_savers.append(lambda: {"manifest_md5": content_md5, "manifest_slice": digest})
        return digest is not None and values.get("manifest_slice") == digest

    def digest(self):
        from swiftdeploy.errors import SwiftDeployError
        from swiftdeploy.render import OUTPUTS, manifest_slice

        try:
            manifest = current_manifest()
        except SwiftDeployError:
            return None
        picked = manifest_slice(manifest, OUTPUTS[self.output][1])
        return hashlib.md5(json.dumps(picked, sort_keys=True).encode()).hexdigest()


@operator_action
def render_output(output):
    from swiftdeploy.files import write_atomic
    from swiftdeploy.render import render

    text = render(output, current_manifest())
    write_atomic(GENERATED / output, text)


@operator_action
def create_secrets():
    from swiftdeploy.secrets import ensure_secrets

    for path in ensure_secrets():
        print(f"created {path} (mode 0600)")
