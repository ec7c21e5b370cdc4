"""The history in segments: sealed by size, read and verified as one chain, removed by retention only whole
and only after a chained record says so."""

import datetime
import os

import pytest

from swiftdeploy.evidence.history import History
from swiftdeploy.evidence.history_chain import verify


@pytest.fixture
def history(tmp_path):
    return History(tmp_path / "reports" / "history.jsonl", key_dir=tmp_path / "keys", segment_bytes=3_000)  # 10 records a segment


def fill(history, records, start=0):
    for n in range(start, start + records):
        history.append("status", n=n, pad="x" * 150)


def verdict(history):
    return verify(history.path, history.head_path, history.key_dir)


def names(history):
    return [path.name for path in history.files()]


def test_three_segments_read_and_verify_as_one_chain(history):
    fill(history, 25)
    assert names(history) == ["history-000001.jsonl", "history-000002.jsonl", "history.jsonl"]
    assert [r["n"] for r in history.read()] == list(range(25))
    assert [r["chain"] for r in history.records()] == list(range(1, 26))
    found = verdict(history)
    assert found.intact, found.problem
    assert any("intact: records 1-25 chained across 3 segments" in note for note in found.notes), found.notes


def test_a_removed_middle_segment_is_named(history):
    fill(history, 25)
    os.remove(history.path.with_name("history-000002.jsonl"))
    found = verdict(history)
    assert not found.intact
    assert "history-000002.jsonl is missing (or more): records 11-20 gone" in found.problem


def test_a_removed_first_segment_without_a_retention_record_is_named(history):
    fill(history, 25)
    os.remove(history.path.with_name("history-000001.jsonl"))
    found = verdict(history)
    assert "history-000001.jsonl is missing: no history_retention record says it was removed" in found.problem


def test_retention_removes_whole_old_segments_records_it_and_verify_stays_green(history):
    fill(history, 35)
    assert len(names(history)) == 4
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=31)
    history.keep_days = 30
    removed = history.remove_expired(now=later)
    assert removed == ["history-000001.jsonl", "history-000002.jsonl", "history-000003.jsonl"]
    assert names(history) == ["history.jsonl"]
    (record,) = history.events("history_retention")
    assert (record["removed"], record["keep_days"], record["removed_through"]) == (removed, 30, 3)
    found = verdict(history)
    assert found.intact, found.problem
    assert any("segments 1-3 removed by retention" in note for note in found.notes), found.notes
    fill(history, 30, start=35)  # seals more segments: the chain goes on from the record retention kept
    assert names(history)[:3] == ["history-000004.jsonl", "history-000005.jsonl", "history-000006.jsonl"]
    found = verdict(history)
    assert found.intact, found.problem


def test_retention_keeps_segments_younger_than_keep_days(history):
    fill(history, 25)
    history.keep_days = 30
    assert history.remove_expired() == []
    assert len(names(history)) == 3 and not list(history.events("history_retention"))


def test_a_kill_between_the_retention_record_and_the_removal_converges(history, monkeypatch):
    fill(history, 25)
    history.keep_days = 1
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)
    monkeypatch.setattr("pathlib.Path.unlink", lambda self, missing_ok=False: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):  # the process dies right after the record
        history.remove_expired(now=later)
    monkeypatch.undo()
    assert len(names(history)) == 3 and verdict(history).intact, "the record names segments still there: fine"
    assert history.remove_expired(now=later) == ["history-000001.jsonl", "history-000002.jsonl"]
    assert names(history) == ["history.jsonl"] and verdict(history).intact


def test_a_kill_after_sealing_before_the_next_record_continues_the_chain(history):
    fill(history, 5)
    os.rename(history.path, history.path.with_name("history-000001.jsonl"))  # what sealing does, then SIGKILL
    assert verdict(history).intact
    fill(history, 3, start=5)
    assert [r["chain"] for r in history.records()] == list(range(1, 9))
    assert verdict(history).intact


def test_a_gap_between_sealed_segments_is_named(history):
    fill(history, 35)
    os.remove(history.path.with_name("history-000002.jsonl"))
    assert "history-000002.jsonl is missing: the chain breaks after record 10" in verdict(history).problem
