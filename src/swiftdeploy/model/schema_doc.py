"""docs/manifest.md, written from the manifest's JSON Schema: the keys are described once, in the schema.

Pure: markdown(schema) -> text. `doit docs` writes it; a test fails while the committed file differs.
"""

import json

from .manifest import SCHEMA_PATH

HEADER = ("<!-- Generated from src/swiftdeploy/model/manifest.schema.json by `doit docs`; edit the schema, "
          "not this file. -->\n\n")


def markdown(schema: dict) -> str:
    """The manifest's reference: one table per top-level section, a row per key, nested keys by path."""
    lines = [HEADER + f"# {schema['title']}\n", schema["description"], "",
             "Every key, its type and allowed values, and what it does. Keys in **bold** are required.", ""]
    required = set(schema.get("required", ()))
    for section, spec in schema["properties"].items():
        spec = _resolved(schema, spec)
        mark = " (required)" if section in required else ""
        lines += [f"## `{section}`{mark}", ""]
        if spec.get("type") == "object":  # a value's description stands in its row
            lines += [_cell(spec.get("description", "")), ""]
        rows = list(_rows(schema, section, spec, section in required))
        if rows:
            lines += ["| key | type | allowed | meaning |", "| --- | --- | --- | --- |", *rows, ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _rows(schema: dict, path: str, spec: dict, required: bool):
    """A row per key under `path`, nested blocks by path; a section's own row only when it is a value."""
    if spec.get("type") == "object" and "properties" in spec:
        if "/" in path:
            yield _row(path, spec, required)
        inner = set(spec.get("required", ()))
        for key, child in spec["properties"].items():
            yield from _rows(schema, f"{path}/{key}", _resolved(schema, child), key in inner)
    else:
        yield _row(path, spec, required)


def _row(path: str, spec: dict, required: bool) -> str:
    key = f"**`{path}`**" if required else f"`{path}`"
    return f"| {key} | {_type(spec)} | {_allowed(spec)} | {_cell(spec.get('description', ''))} |"


def _resolved(schema: dict, spec: dict) -> dict:
    """A property with its $ref's definition folded in (the property's own words win)."""
    if "$ref" not in spec:
        return spec
    name = spec["$ref"].rsplit("/", 1)[1]
    return {**schema["$defs"][name], **{k: v for k, v in spec.items() if k != "$ref"}}


def _type(spec: dict) -> str:
    if "enum" in spec:
        return "one of"
    kind = spec.get("type", "")
    if kind == "array":
        return f"list of {_type(spec.get('items', {})) or 'values'}"
    return " or ".join(kind) if isinstance(kind, list) else kind


def _allowed(spec: dict) -> str:
    if "enum" in spec:
        return ", ".join(f"`{json.dumps(choice)}`" for choice in spec["enum"])
    if "x-hint" in spec:
        return _cell(spec["x-hint"])
    if "minimum" in spec or "maximum" in spec:
        return f"{spec.get('minimum', '')}-{spec.get('maximum', '')}"
    items = spec.get("items", {})
    if "minimum" in items or "maximum" in items:
        return f"each {items.get('minimum', '')}-{items.get('maximum', '')}"
    return ""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace("\n", " ")


def current() -> str:
    return markdown(json.loads(SCHEMA_PATH.read_text()))
