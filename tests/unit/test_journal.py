"""The intent journal: what an interrupted operation left, read back whatever state the file is in."""

import os

from swiftdeploy.converge.journal import Journal


def test_an_empty_journal_means_nothing_pending(tmp_path):
    assert Journal(tmp_path / "journal.jsonl").pending() is None


def test_start_and_steps_read_back_and_finish_empties_it(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.begin("op1", "promote:stable", {"services.mode": "stable"}, {"services.mode": "canary"},
                  ["ask OPA: the canary gate", "reload nginx", "replace stable"])
    journal.step("ask OPA: the canary gate", gate="canary")
    journal.step("reload nginx")
    pending = journal.pending()
    assert (pending.operation, pending.steps, pending.gates, pending.planned) == (
        "promote:stable", ("ask OPA: the canary gate", "reload nginx"), ("canary",), 3)
    assert pending.changes == {"services.mode": "stable"} and pending.undo == {"services.mode": "canary"}
    assert pending.describe().startswith(f"promote:stable (pid {os.getpid()}) was interrupted after step 2 of 3 "
                                         "(reload nginx); it started ")
    journal.finish()
    assert not journal.path.exists() and journal.pending() is None


def test_a_torn_last_record_counts_as_a_step_not_done(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.begin("op1", "rollback", {}, {}, ["a", "b"])
    journal.step("a")
    with open(journal.path, "ab") as handle:
        handle.write(b'{"kind": "step", "ts": "2026-11-28T10:00:00.000Z", "st')  # killed mid-write
    assert journal.pending().steps == ("a",)


def test_a_new_operation_replaces_what_an_interrupted_one_left(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.begin("op1", "promote:stable", {}, {}, ["a"])
    journal.step("a")
    journal.restoring("canary unhealthy")
    assert journal.pending().restoring == "canary unhealthy"
    journal.begin("op2", "rollback", {}, {}, ["b"])
    pending = journal.pending()
    assert (pending.id, pending.operation, pending.steps, pending.restoring) == ("op2", "rollback", (), None)


def test_a_start_record_that_is_not_ours_is_one_error_naming_the_file(tmp_path):
    import pytest

    from swiftdeploy.converge.journal import JournalError

    path = tmp_path / "journal.jsonl"
    path.write_text('{"kind": "start", "operation": "deploy", "changes": ["not", "a", "mapping"], "planned": "x"}\n')
    with pytest.raises(JournalError, match=f"^{path}: its start record is not SwiftDeploy's"):
        Journal(path).pending()


def test_a_run_killed_while_it_acted_on_the_engine_leaves_it_busy_and_one_killed_between_steps_does_not(tmp_path):
    journal = Journal(tmp_path / "journal.jsonl")
    journal.begin("op1", "promote:stable", {}, {}, ["gate", "reload", "replace stable"])
    assert not journal.pending().engine_busy, "started, nothing asked of the engine yet"
    journal.step("ask OPA: the canary gate", gate="canary")
    journal.step("reload nginx")
    assert not journal.pending().engine_busy
    journal.acting("replace stable")
    assert journal.pending().engine_busy, "killed while stable was being replaced"
    assert journal.pending().steps == ("ask OPA: the canary gate", "reload nginx"), "acting is not a completed step"
    journal.step("replace stable")
    assert not journal.pending().engine_busy


def test_a_journal_from_before_acting_records_is_taken_as_busy(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text('{"kind": "start", "ts": "2026-12-01T00:00:00.000Z", "id": "op1", "operation": "rollback", '
                    '"pid": 1, "changes": {}, "undo": {}, "planned": 1}\n'
                    '{"kind": "step", "ts": "2026-12-01T00:00:01.000Z", "step": "a"}\n')
    assert Journal(path).pending().engine_busy
