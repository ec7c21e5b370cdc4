"""In-place edits of manifest.yaml that keep its comments, key order and quoting (M-3)."""

import io

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from .manifest import Manifest, parse_manifest


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def edit(text: str, changes: dict[str, object]) -> tuple[str, Manifest]:
    """The manifest text with dotted keys set (`{"services.mode": "canary"}`), and the manifest it validates to.

    A value keeps the quoting style of the value it replaces, so `version: "1.0.0"` becomes
    `version: "1.1.0"` and `git diff manifest.yaml` shows exactly the changed fields.
    """
    yaml = _yaml()
    document = yaml.load(text)
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        node = document
        for parent in parents:
            node = node[parent]
        old = node.get(key)
        if isinstance(value, str) and isinstance(old, (DoubleQuotedScalarString, SingleQuotedScalarString)):
            value = type(old)(value)
        node[key] = value
    out = io.StringIO()
    yaml.dump(document, out)
    edited = out.getvalue()
    return edited, parse_manifest(edited)  # an edit never yields a manifest the validator would refuse
