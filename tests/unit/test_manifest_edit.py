"""promote and rollback edit manifest.yaml in place: comments, order, quoting and indentation stay; only the
field changes; the file keeps its mode, owner and symlink."""

import contextlib
import difflib
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from swiftdeploy.files import FileWriteError
from swiftdeploy.model.manifest import ManifestError
from swiftdeploy.model.manifest_edit import edit, set_fields, write_manifest

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


def four_space(text: str) -> str:
    """The manifest with every indentation doubled (2 -> 4 spaces)."""
    return "".join(" " * (len(line) - len(line.lstrip(" "))) + line for line in text.splitlines(keepends=True))


def test_a_four_space_manifest_keeps_its_indentation():
    before = four_space((ROOT / "manifest.yaml").read_text())
    assert "\n    mode: stable\n" in before
    after, manifest = edit(before, {"services.mode": "canary"})
    assert changed_lines(before, after) == ["-    mode: stable", "+    mode: canary"]
    assert manifest.services.mode == "canary"


def test_sequences_written_flush_under_their_key_stay_flush():
    # The manifest schema has no list today; set_fields is the same edit without the validation.
    before = ("services:\n"
              "    name: app\n"
              "    mode: stable\n"
              "    ports:\n"
              "    - 3000\n"
              "    - 3001\n"
              "    env:\n"
              "    - name: A\n"
              "      value: \"1\"\n")
    after = set_fields(before, {"services.mode": "canary"})
    assert changed_lines(before, after) == ["-    mode: stable", "+    mode: canary"]


@pytest.fixture
def manifest_file(tmp_path):
    path = tmp_path / "manifest.yaml"
    path.write_text((ROOT / "manifest.yaml").read_text())
    return path


def edited(path: Path) -> str:
    return edit(path.read_text(), {"services.mode": "canary"})[0]


def test_writing_keeps_the_mode(manifest_file):
    manifest_file.chmod(0o640)
    text = edited(manifest_file)
    assert write_manifest(manifest_file, text) is True
    assert manifest_file.read_text() == text
    assert stat.S_IMODE(manifest_file.stat().st_mode) == 0o640


def test_writing_keeps_the_owner(manifest_file):
    os.chown(manifest_file, 1234, 2345)  # the test machine runs as root
    write_manifest(manifest_file, edited(manifest_file))
    info = manifest_file.stat()
    assert (info.st_uid, info.st_gid) == (1234, 2345)


def test_a_symlinked_manifest_stays_a_symlink_and_its_target_gets_the_edit(tmp_path):
    shared = tmp_path / "config" / "manifest.yaml"
    shared.parent.mkdir()
    shared.write_text((ROOT / "manifest.yaml").read_text())
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    link = checkout / "manifest.yaml"
    link.symlink_to("../config/manifest.yaml")
    text = edited(link)
    write_manifest(link, text)
    assert link.is_symlink() and os.readlink(link) == "../config/manifest.yaml"
    assert shared.read_text() == text
    assert sorted(p.name for p in checkout.iterdir()) == ["manifest.yaml"]
    assert sorted(p.name for p in shared.parent.iterdir()) == ["manifest.yaml"]


@pytest.fixture
def reachable_dir():
    """A directory an unprivileged user can reach (pytest's tmp_path sits under a root-only directory)."""
    directory = Path(tempfile.mkdtemp())
    directory.chmod(0o755)
    yield directory
    directory.chmod(0o755)
    shutil.rmtree(directory)


@contextlib.contextmanager
def unprivileged():
    """Act as nobody: root writes into any directory. (The effective uid only, so root can come back.)"""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_an_unwritable_directory_is_a_one_line_error_and_the_file_is_unchanged(reachable_dir):
    manifest = reachable_dir / "manifest.yaml"
    before = (ROOT / "manifest.yaml").read_bytes()
    manifest.write_bytes(before)
    reachable_dir.chmod(0o555)
    with unprivileged(), pytest.raises(FileWriteError) as raised:
        write_manifest(manifest, edited(manifest))
    assert str(raised.value) == f"cannot write {manifest}: Permission denied"
    assert manifest.read_bytes() == before
    assert sorted(p.name for p in reachable_dir.iterdir()) == ["manifest.yaml"]
