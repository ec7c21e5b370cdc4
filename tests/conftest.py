import pytest

from projectkit import copy_project


@pytest.fixture
def project(tmp_path):
    """A fresh working copy of the project (no generated files, no tokens, no doit state)."""
    return copy_project(tmp_path / "project")
