"""The history's hash chain: every kind of tampering is named at its line, a killed writer is not tampering."""

import json
import multiprocessing
import os
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projectkit import sigkill_a_writer
from swiftdeploy.errors import SwiftDeployError
from swiftdeploy.evidence.history import History
from swiftdeploy.evidence.history_chain import verify
from swiftdeploy.secrets import HISTORY_KEY

RECORDS = 8


def check(history: History):
    return verify(history.path, history.head_path, history.key_dir)


@pytest.fixture
def history(tmp_path):
    """A history of 8 chained records, of several sizes and scripts."""
    history = History(tmp_path / "reports" / "history.jsonl", key_dir=tmp_path / ".swiftdeploy")
    for n in range(1, RECORDS + 1):
        history.append("deploy", n=n, note="déployé ✓" * n, weights={"stable": 100 - n, "canary": n})
    return history


def lines(history):
    return history.path.read_bytes().splitlines(keepends=True)


def rewrite(history, new_lines):
    history.path.write_bytes(b"".join(new_lines))


def test_an_untouched_history_is_intact(history):
    verdict = check(history)
    assert verdict.intact, verdict.problem
    assert verdict.notes == [f"{history.path}: intact: records 1-{RECORDS} chained, lines 1-{RECORDS}"]
    assert json.loads(history.head_path.read_text())["count"] == RECORDS
    assert (history.key_dir / HISTORY_KEY).stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("k", [1, 4, RECORDS])
def test_an_edited_field_is_named_at_its_line(history, k):
    content = lines(history)
    content[k - 1] = content[k - 1].replace(f'"n": {k},'.encode(), f'"n": {k + 100},'.encode())
    rewrite(history, content)
    says = f"edited, or {history.key_dir / HISTORY_KEY} is not the key that wrote it" if k == 1 else "edited"
    assert check(history).problem == f"{history.path}:{k}: record {k} does not match its hmac: {says}"


def test_an_edit_that_keeps_the_json_equal_is_still_named(history):
    content = lines(history)
    content[2] = content[2].replace(b'"event": "deploy"', b'"event":  "deploy"')  # one more space
    rewrite(history, content)
    assert check(history).problem == (f"{history.path}:3: record 3 does not read back as written: edited "
                                      "(spacing, key order or a repeated key)")


def test_an_escaped_lone_surrogate_is_an_edit_not_a_traceback(history):
    content = lines(history)
    content[2] = content[2].replace(b'"event": "deploy"', b'"event": "\\ud800"')
    rewrite(history, content)
    assert check(history).problem.startswith(f"{history.path}:3: record 3 does not read back as written")


def test_a_repeated_key_cannot_smuggle_a_second_value(history):
    content = lines(history)
    content[2] = content[2].replace(b'{"ts"', b'{"event": "rollback", "ts"')  # json.loads keeps the last
    rewrite(history, content)
    assert f"{history.path}:3: record 3 does not read back as written" in check(history).problem


@pytest.mark.parametrize("k, says", [
    (1, "the chain starts at record 2: record 1 deleted (or unchained)"),
    (5, "record 6 follows record 4: record 5 deleted or moved"),
])
def test_a_deleted_line_is_named_where_the_gap_is(history, k, says):
    content = lines(history)
    del content[k - 1]
    rewrite(history, content)
    assert check(history).problem == f"{history.path}:{k}: {says}"


def test_two_deleted_lines_are_named_as_a_range(history):
    content = lines(history)
    del content[2:4]
    rewrite(history, content)
    assert check(history).problem == f"{history.path}:3: record 5 follows record 2: records 3-4 deleted or moved"


@pytest.mark.parametrize("k", [1, 3, RECORDS - 1])
def test_swapped_lines_are_named_at_the_first(history, k):
    content = lines(history)
    content[k - 1], content[k] = content[k], content[k - 1]
    rewrite(history, content)
    assert check(history).problem.startswith(f"{history.path}:{k}: ")


@pytest.mark.parametrize("copied, after", [(2, 5), (5, 5), (RECORDS, RECORDS)])
def test_an_inserted_copy_of_a_line_is_named(history, copied, after):
    content = lines(history)
    content.insert(after, content[copied - 1])
    rewrite(history, content)
    assert check(history).problem == (f"{history.path}:{after + 1}: record {copied} again after record {after}: "
                                      "a copied line, or lines reordered")


def test_an_inserted_line_numbered_to_fit_is_named_by_its_hmac(history):
    content = lines(history)
    forged = json.loads(content[3])
    forged.update(event="rollback", chain=5)
    content.insert(4, (json.dumps(forged, ensure_ascii=False) + "\n").encode())
    rewrite(history, content)
    assert check(history).problem == f"{history.path}:5: record 5 does not match its hmac: edited"


def test_an_inserted_unchained_line_is_named(history):
    content = lines(history)
    content.insert(3, b'{"ts": "2026-01-01T00:00:00.000Z", "event": "deploy"}\n')
    rewrite(history, content)
    assert check(history).problem == (f"{history.path}:4: not a chained record: a line inserted or edited "
                                      "inside the chain")


@pytest.mark.parametrize("cut, says", [(1, f"record {RECORDS}"), (3, f"records {RECORDS - 2}-{RECORDS}")])
def test_a_cut_tail_of_whole_records_is_named_by_the_head(history, cut, says):
    rewrite(history, lines(history)[:-cut])
    left = RECORDS - cut
    assert check(history).problem == (f"{history.path}: holds records up to {left} (line {left}) but "
                                      f"{history.head_path} counts {RECORDS}: {says} cut from the tail")


def test_a_history_cut_mid_line_shows_the_torn_tail_and_the_cut(history):
    data = history.path.read_bytes()
    history.path.write_bytes(data[:len(data) - 40])
    verdict = check(history)
    assert "torn last line" in verdict.notes[0] and f"{history.path}:{RECORDS}:" in verdict.notes[0]
    assert verdict.problem.endswith(f"counts {RECORDS}: record {RECORDS} cut from the tail")


def test_an_emptied_history_is_a_cut_tail(history):
    history.path.write_bytes(b"")
    assert check(history).problem == (f"{history.path}: holds records up to 0 (line 0) but {history.head_path} "
                                      f"counts {RECORDS}: records 1-{RECORDS} cut from the tail")


def test_a_head_one_record_behind_is_accepted_and_caught_up_by_the_next_append(history):
    # The state a writer killed between its record and the head leaves: the head of one record earlier.
    behind = history.head_path.read_bytes()
    history.append("deploy", n=RECORDS + 1)
    history.head_path.write_bytes(behind)
    verdict = check(history)
    assert verdict.intact, verdict.problem
    assert verdict.notes[0].startswith(f"{history.head_path}: 1 record behind the history")
    history.append("deploy", n=RECORDS + 2)
    assert check(history).notes == [f"{history.path}: intact: records 1-{RECORDS + 2} chained, "
                                    f"lines 1-{RECORDS + 2}"]


@pytest.mark.parametrize("edit, says", [
    (lambda head: {**head, "count": head["count"] - 1}, "does not match its hmac: edited"),
    (lambda head: {**head, "hmac": "0" * 64}, "does not match its hmac: edited"),
    (lambda head: {"count": head["count"]}, "not a history head (count, last, hmac): edited"),
])
def test_an_edited_head_is_named(history, edit, says):
    history.head_path.write_text(json.dumps(edit(json.loads(history.head_path.read_text()))))
    assert check(history).problem == f"{history.head_path}: {says}"


def test_a_missing_head_with_chained_records_is_a_problem(history):
    history.head_path.unlink()
    assert check(history).problem == f"{history.head_path}: missing: a cut tail cannot be ruled out"


def test_a_head_from_another_history_with_the_same_key_is_caught(history, tmp_path):
    other = History(tmp_path / "other.jsonl", key_dir=history.key_dir)
    for n in range(RECORDS):
        other.append("scrape", n=n)
    history.head_path.write_bytes(other.head_path.read_bytes())
    assert check(history).problem == (f"{history.head_path}: record {RECORDS}'s hmac is not the one the head "
                                      "holds: the history was replaced")


def test_a_lost_key_replaced_by_a_new_one_fails_at_the_first_record_and_says_why(history):
    (history.key_dir / HISTORY_KEY).unlink()  # e.g. .swiftdeploy/ deleted: the next append makes a new key
    history = History(history.path, key_dir=history.key_dir)
    history.append("deploy")
    key = history.key_dir / HISTORY_KEY
    assert check(history).problem == (f"{history.path}:1: record 1 does not match its hmac: edited, or {key} is not "
                                      "the key that wrote it")


LEGACY = [{"ts": f"2026-01-01T00:00:0{n}.000Z", "event": "deploy", "n": n} for n in range(3)]


def test_a_history_written_before_the_chain_verifies_as_unchained(tmp_path):
    history = History(tmp_path / "history.jsonl", key_dir=tmp_path / ".swiftdeploy")
    history.path.write_text("".join(json.dumps(record) + "\n" for record in LEGACY))
    verdict = check(history)
    assert verdict.intact and verdict.notes == [
        f"{history.path}: unchained up to line 3 (written before the chain; not verifiable); no chained record yet"]

    for n in range(3):
        history.append("deploy", n=n)
    verdict = check(history)
    assert verdict.intact, verdict.problem
    assert verdict.notes == [
        f"{history.path}: unchained up to line 3 (written before the chain; not verifiable); "
        "the chain starts at line 4",
        f"{history.path}: intact: records 1-3 chained, lines 4-6"]
    assert [r.get("chain") for r in history.read()] == [None, None, None, 1, 2, 3]

    rewrite(history, lines(history)[:-1])
    assert check(history).problem.endswith("counts 3: record 3 cut from the tail")


def test_a_legacy_history_cut_to_nothing_before_its_first_chained_record_is_caught(tmp_path):
    history = History(tmp_path / "history.jsonl", key_dir=tmp_path / ".swiftdeploy")
    history.path.write_text("".join(json.dumps(record) + "\n" for record in LEGACY))
    history.append("deploy")
    rewrite(history, lines(history)[:-1])  # back to the legacy lines alone
    assert check(history).problem.endswith("counts 1: record 1 cut from the tail")


def test_missing_history_key_or_a_readable_key_are_one_line_errors(history, tmp_path):
    with pytest.raises(SwiftDeployError, match=r"history.jsonl: missing: no history to verify$"):
        verify(tmp_path / "none" / "history.jsonl", tmp_path / "none" / "history.head", history.key_dir)
    key = history.key_dir / HISTORY_KEY
    key.chmod(0o644)
    with pytest.raises(SwiftDeployError, match=r"readable by others \(mode 644\); run `chmod 600 .*`$"):
        check(history)
    key.unlink()
    with pytest.raises(SwiftDeployError) as missing:
        check(history)
    assert str(missing.value) == f"{key}: missing; the history's chain cannot be checked without the key that wrote it"


def test_a_history_without_records_is_intact(tmp_path):
    history = History(tmp_path / "history.jsonl", key_dir=tmp_path / "nokey")
    history.path.write_bytes(b"")
    verdict = check(history)
    assert verdict.intact and verdict.notes == [f"{history.path}: no records yet"]
    assert not (tmp_path / "nokey").exists(), "verify never makes a key"


def test_a_torn_last_record_is_a_warning_and_the_next_append_repairs_it(history):
    # What a writer killed inside its write() leaves: the first bytes of a chained record, no newline.
    record = json.loads(lines(history)[-1])
    record.update(chain=RECORDS + 1, n=RECORDS + 1)
    history.path.write_bytes(history.path.read_bytes() + json.dumps(record).encode()[:-30])
    verdict = check(history)
    assert verdict.intact, verdict.problem
    assert verdict.notes[0].startswith(f"{history.path}:{RECORDS + 1}: torn last line (")
    assert verdict.notes[0].endswith("skipped, the next append removes it")
    history.append("deploy", n=RECORDS + 1)
    assert check(history).notes == [f"{history.path}: intact: records 1-{RECORDS + 1} chained, "
                                    f"lines 1-{RECORDS + 1}"]


def _append_many(path, key_dir, writer, count):
    history = History(path, key_dir=key_dir)
    for seq in range(count):
        history.append("load", writer=writer, seq=seq, pad="p" * random.Random(seq).choice([100, 9_000, 90_000]))


def test_records_from_8_concurrent_writers_chain_in_file_order(tmp_path):
    path, key_dir, writers, count = tmp_path / "h.jsonl", tmp_path / ".swiftdeploy", 8, 30
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_append_many, args=(path, key_dir, w, count)) for w in range(writers)]
    for process in processes:  # none of them finds a key: they race to make it
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    history = History(path, key_dir=key_dir)
    verdict = check(history)
    assert verdict.intact, verdict.problem
    assert [r["chain"] for r in history.read()] == list(range(1, writers * count + 1))
    assert sorted(os.listdir(key_dir)) == [HISTORY_KEY], "no temporary key file is left behind"


WRITER = """
import random, sys
from swiftdeploy.evidence.history import History
history, rng = History(sys.argv[1], key_dir=sys.argv[2]), random.Random(int(sys.argv[3]))
history.append("writer_started")
print("ready", flush=True)
seq = 0
while True:
    history.append("load", seq=seq, pad="k" * rng.choice([300, 3_000, 60_000, 200_000]))
    seq += 1
"""


def test_a_sigkilled_writer_leaves_a_history_that_verifies(tmp_path):
    path, key_dir, rng = tmp_path / "h.jsonl", tmp_path / ".swiftdeploy", random.Random(11)
    history, seen = History(path, key_dir=key_dir), {"torn tail": 0, "head behind": 0}
    for round_number in range(12):
        sigkill_a_writer(WRITER, (path, key_dir, round_number), rng)

        verdict = check(history)
        assert verdict.intact, verdict.problem
        seen["torn tail"] += any("torn last line" in note for note in verdict.notes)
        seen["head behind"] += any("behind the history" in note for note in verdict.notes)
        assert verdict.notes[-1].startswith(f"{path}: intact: records 1-")

        history.append("after_kill", round=round_number)  # repairs a torn tail, catches the head up
        verdict = check(history)
        assert verdict.intact and len(verdict.notes) == 1, verdict.notes
    print(f"after 12 kills: {seen}")


fuzz = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
CHAINED = b'{"ts": "t", "event": "e", "chain": 1, "hmac": "' + b"0" * 64 + b'"}'
LINE = st.one_of(st.binary(max_size=40), st.sampled_from([CHAINED, b"{}", b'{"chain": true, "hmac": "x"}',
                                                          b'{"chain": -1, "hmac": "x"}', b"[" * 5000, b"\xff",
                                                          CHAINED.replace(b'"t"', b'"\\udfff"')]))
HEAD = st.one_of(st.none(), st.binary(max_size=40),
                 st.sampled_from([b'{"count": 1, "last": "", "hmac": ""}', b'{"count": "1"}', b"null", b"[" * 5000]))


@fuzz
@given(st.lists(LINE, max_size=6), st.sampled_from([b"\n", b""]), HEAD)
def test_verify_reads_any_history_and_head_without_a_traceback(history_lines, tail, head):
    with tempfile.TemporaryDirectory() as directory:
        history = History(Path(directory) / "h.jsonl", key_dir=Path(directory) / "keys")
        history.append("first")
        history.path.write_bytes(b"\n".join(history_lines) + tail)
        if head is not None:
            history.head_path.write_bytes(head)
        try:
            verdict = check(history)
        except SwiftDeployError as err:
            assert len(str(err).splitlines()) == 1
        else:
            assert all(len(note.splitlines()) == 1 for note in verdict.notes)
            assert verdict.intact or len(verdict.problem.splitlines()) == 1
