"""promote and rollback edit manifest.yaml in place: comments, order and quoting stay; only the field changes."""

import difflib
from pathlib import Path

import pytest

from swiftdeploy.manifest import ManifestError
from swiftdeploy.manifest_edit import edit

ROOT = Path(__file__).resolve().parents[2]


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_a_mode_change_is_one_changed_line_and_every_comment_stays():
    before = (ROOT / "manifest.yaml").read_text()
    after, manifest = edit(before, {"services.mode": "canary"})
    assert changed_lines(before, after) == ["-  mode: stable", "+  mode: canary"]
    assert manifest.services.mode == "canary"


def test_a_version_keeps_its_quotes():
    before = (ROOT / "manifest.yaml").read_text()
    after, manifest = edit(before, {"services.version": "1.1.0", "services.mode": "canary"})
    assert changed_lines(before, after) == ['-  version: "1.0.0"', "-  mode: stable",
                                            '+  version: "1.1.0"', "+  mode: canary"]
    assert manifest.services.version == "1.1.0"


def test_an_edit_the_validator_refuses_is_never_returned():
    with pytest.raises(ManifestError, match="services/mode: must be one of stable, canary"):
        edit((ROOT / "manifest.yaml").read_text(), {"services.mode": "blue"})
