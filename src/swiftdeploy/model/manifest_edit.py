"""In-place edits of manifest.yaml that keep its comments, key order, quoting and indentation, and the
file's mode, owner and symlink (M-3)."""

import io
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

from ..files import replace_file
from .manifest import Manifest, parse_manifest


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def _indentation(document) -> dict[str, int]:
    """The file's own indentation as YAML.indent() takes it: mapping, sequence (item text) and offset (dash).

    Read from the first nested block mapping and block sequence. (ruamel.yaml.util.load_yaml_guess_indent
    returns one figure for both, so a 4-space manifest with `- item` flush under its key would come
    back with its mappings at 2.) Unseen kinds get the common style: `key:` / `  - item` under it.
    """
    found: dict[str, int] = {}

    def walk(node):
        if isinstance(node, CommentedMap):
            for key, (_, key_col, _, _) in node.lc.data.items():
                value = node[key]
                if isinstance(value, CommentedMap) and value and not value.fa.flow_style():
                    found.setdefault("mapping", value.lc.col - key_col)
                elif isinstance(value, CommentedSeq) and value and not value.fa.flow_style():
                    if "offset" not in found:
                        found["offset"] = value.lc.col - key_col
                        found["sequence"] = value.lc.data[0][1] - key_col
                walk(value)
        elif isinstance(node, CommentedSeq):
            for item in node:
                walk(item)

    walk(document)
    mapping = found.get("mapping", 2)
    offset = found.get("offset", mapping)
    return {"mapping": mapping, "sequence": found.get("sequence", offset + 2), "offset": offset}


def edit(text: str, changes: dict[str, object]) -> tuple[str, Manifest]:
    """The manifest text with dotted keys set (`{"services.mode": "canary"}`), and the manifest it validates to.

    A value keeps the quoting style of the value it replaces, and the file keeps its own indentation, so
    `version: "1.0.0"` becomes `version: "1.1.0"` and `git diff manifest.yaml` shows exactly the changed fields.
    """
    edited = set_fields(text, changes)
    return edited, parse_manifest(edited)  # an edit never yields a manifest the validator would refuse


def set_fields(text: str, changes: dict[str, object]) -> str:
    """Any YAML mapping document's text with dotted keys set; comments, order, quoting and indentation kept."""
    yaml = _yaml()
    document = yaml.load(text)
    yaml.indent(**_indentation(document))
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
    return out.getvalue()


def write_manifest(path: str | Path, text: str) -> bool:
    """Write edited manifest text in place: atomically, keeping the file's mode, owner and symlink.

    Returns False when the text was already the file's content; raises FileWriteError (one line).
    """
    return replace_file(path, text)
