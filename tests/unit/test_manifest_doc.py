"""docs/manifest.md is the JSON Schema written out, and current: the keys are described once."""

import json
from pathlib import Path

from swiftdeploy.model import schema_doc
from swiftdeploy.model.manifest import SCHEMA_PATH

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_manifest_doc_is_what_the_schema_writes():
    assert (ROOT / "docs" / "manifest.md").read_text() == schema_doc.current(), \
        "docs/manifest.md is stale: run `doit docs` and commit it"


def keys(spec: dict, path: str = ""):
    for key, child in spec.get("properties", {}).items():
        yield f"{path}{key}"
        yield from keys(child, f"{path}{key}/")


def test_every_key_of_the_schema_has_a_row_with_its_description():
    schema = json.loads(SCHEMA_PATH.read_text())
    text = schema_doc.markdown(schema)
    for key in keys(schema):
        assert f"`{key}`" in text, key
    assert "Percent of traffic sent to the canary" in text and "**`services/image`**" in text


def test_a_new_key_shows_up_and_an_enum_lists_its_choices():
    schema = json.loads(SCHEMA_PATH.read_text())
    schema["properties"]["nginx"]["properties"]["gzip"] = {"enum": ["on", "off"], "description": "Compress | or not."}
    text = schema_doc.markdown(schema)
    assert '| `nginx/gzip` | one of | `"on"`, `"off"` | Compress \\| or not. |' in text
