import pytest

from swiftdeploy import secrets


@pytest.fixture(autouse=True)
def history_key_in_tmp(tmp_path, monkeypatch):
    """A History made without key_dir keeps its key in .swiftdeploy/ of the current directory: in a unit
    test that would be the checkout's own. Point it at the test's tmp_path instead."""
    monkeypatch.setattr(secrets, "SECRETS_DIR", tmp_path / ".swiftdeploy")
