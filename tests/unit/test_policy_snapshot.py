"""policies/ as OPA loads it: a revision over what it loads, and one immutable snapshot per revision."""

import json
import stat

import pytest

from opakit import POLICIES
from swiftdeploy.render.policy import PolicyError, revision, snapshot_diff, write_snapshot


@pytest.fixture
def policies(tmp_path):
    folder = tmp_path / "policies"
    (folder / "system").mkdir(parents=True)
    for name in ("infra.rego", "infra_test.rego", "data.json", "system/authz.rego"):
        (folder / name).write_text((POLICIES / name).read_text())
    return folder


def test_the_revision_covers_rules_and_data_but_not_tests_or_hidden_files(policies):
    first = revision(policies)
    (policies / "infra_test.rego").write_text("package other_test\n")
    (policies / ".swp").write_text("editor state")
    assert revision(policies) == first
    data = json.loads((policies / "data.json").read_text())
    data["infra"]["max_load_1m"] = 3.0
    (policies / "data.json").write_text(json.dumps(data))
    assert revision(policies) != first
    (policies / "data.json").write_text((POLICIES / "data.json").read_text())
    assert revision(policies) == first  # the same bytes are the same revision


def test_a_snapshot_holds_what_opa_loads_readable_by_its_user_and_names_its_revision(policies, tmp_path):
    rev, folder = write_snapshot(policies, tmp_path / "state")
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert files == [".manifest", "data.json", "infra.rego", "system/authz.rego"]
    assert json.loads((folder / ".manifest").read_text()) == {"revision": rev, "roots": [""]}
    assert all(stat.S_IMODE(p.stat().st_mode) in (0o644, 0o755) for p in [folder, *folder.rglob("*")])


def test_an_edit_after_the_snapshot_makes_a_new_one_and_leaves_the_served_one_alone(policies, tmp_path):
    old, old_folder = write_snapshot(policies, tmp_path / "state")
    (policies / "infra.rego").write_text((policies / "infra.rego").read_text() + "\n# reviewed\n")
    new, _ = write_snapshot(policies, tmp_path / "state")
    assert new != old and not (old_folder / "infra.rego").read_text().endswith("# reviewed\n")
    assert "+# reviewed" in snapshot_diff(old_folder, policies)


def test_a_stray_folder_an_engine_made_for_a_missing_mount_is_replaced(policies, tmp_path):
    rev = revision(policies)
    (tmp_path / "state" / "policy" / rev).mkdir(parents=True)  # what a bind mount of a missing source leaves
    _, folder = write_snapshot(policies, tmp_path / "state")
    assert (folder / ".manifest").is_file() and (folder / "infra.rego").is_file()


def test_no_policies_folder_is_one_line(tmp_path):
    with pytest.raises(PolicyError, match=r"^.*/nowhere: no such directory \(the Rego policies OPA decides with"):
        revision(tmp_path / "nowhere")
