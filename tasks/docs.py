"""docs: docs/manifest.md from the manifest's JSON Schema (the keys are described once, in the schema)."""

SCHEMA = "src/swiftdeploy/model/manifest.schema.json"
MANIFEST_DOC = "docs/manifest.md"


def task_docs():
    """Write docs/manifest.md from the manifest's JSON Schema."""
    return {"actions": [write_manifest_doc], "file_dep": [SCHEMA, "src/swiftdeploy/model/schema_doc.py"],
            "targets": [MANIFEST_DOC]}


def write_manifest_doc():
    from swiftdeploy.files import write_atomic
    from swiftdeploy.model import schema_doc

    write_atomic(MANIFEST_DOC, schema_doc.current())
