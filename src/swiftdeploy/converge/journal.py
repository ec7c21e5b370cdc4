"""The intent journal (.swiftdeploy/journal.jsonl): an operation's start and each completed step, on disk
(fsync) before the next step runs, and before a step that changes containers, that it is acting on the
engine. An empty journal means no operation is under way or unfinished.

The journal gives direction, never orders: the next command re-observes the engine and re-plans, and uses
the journal only to say what was interrupted, to finish the same operation (its manifest edits and the
gates it already passed), or to know what "the state before it" was.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import SwiftDeployError
from ..evidence.history import utc_timestamp


class JournalError(SwiftDeployError):
    pass


@dataclass(frozen=True)
class Pending:
    """An operation that started and did not finish."""
    id: str
    operation: str
    since: str
    pid: int | None
    changes: dict  # the manifest edits the operation makes (dotted key -> value)
    undo: dict  # the edits that put the manifest back as it was before it
    steps: tuple[str, ...] = ()  # completed steps, in order
    planned: int = 0
    gates: tuple[str, ...] = ()  # gates it passed
    restoring: str | None = None  # the failure that made it restore the previous state
    engine_busy: bool = False  # killed while a change it asked of the engine may still be under way there

    def describe(self) -> str:
        done = f"after step {len(self.steps)} of {self.planned} ({self.steps[-1]})" if self.steps else "before its first step"
        what = f"while restoring after: {self.restoring}" if self.restoring else done
        return f"{self.operation} (pid {self.pid}) was interrupted {what}; it started {self.since}"


class Journal:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def pending(self) -> Pending | None:
        try:
            lines = self.path.read_bytes().split(b"\n")
        except FileNotFoundError:
            return None
        except OSError as err:
            raise JournalError(f"cannot read {self.path}: {err.strerror}") from None
        records = []
        for raw in lines:
            try:
                record = json.loads(raw)
            except ValueError:
                continue  # a torn last line (killed mid-write): that step did not complete
            if isinstance(record, dict):
                records.append(record)
        start = next((r for r in records if r.get("kind") == "start"), None)
        if start is None:
            return None
        changes, undo, planned = start.get("changes") or {}, start.get("undo") or {}, start.get("planned") or 0
        if not (isinstance(changes, dict) and isinstance(undo, dict) and isinstance(planned, int)):
            raise JournalError(f"{self.path}: its start record is not SwiftDeploy's (edited by hand?); "
                               "look at it, then delete it to go on")
        steps = tuple(str(r.get("step", "?")) for r in records if r.get("kind") == "step")
        gates = tuple(str(r["gate"]) for r in records if r.get("kind") == "step" and r.get("gate"))
        restoring = next((str(r.get("error")) for r in records if r.get("kind") == "restore"), None)
        # a journal written before "acting" records existed says nothing of it: take the engine as busy
        busy = records[-1].get("kind") == "acting" or not start.get("records_acting")
        return Pending(id=str(start.get("id")), operation=str(start.get("operation")), since=str(start.get("ts")),
                       pid=start.get("pid"), changes=changes, undo=undo, steps=steps, planned=planned,
                       gates=gates, restoring=restoring, engine_busy=busy)

    def begin(self, op_id: str, operation: str, changes: dict, undo: dict, planned: list[str],
              **extra) -> None:
        """Start a journal for an operation, replacing whatever an interrupted one left."""
        record = {"kind": "start", "ts": utc_timestamp(), "id": op_id, "operation": operation, "pid": os.getpid(),
                  "changes": changes, "undo": undo, "planned": len(planned), "plan": planned, "extra": extra,
                  "records_acting": True}
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as handle:
            handle.write(_line(record))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)
        _sync_directory(self.path.parent)

    def last_written(self) -> float:
        """When the journal was last written (epoch seconds): the latest an interrupted run was still acting."""
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    def acting(self, description: str) -> None:
        """A step that changes containers starts: until its step record follows, a run killed now may have left
        a request under way inside the engine (a stop takes up to its grace period)."""
        self._append({"kind": "acting", "ts": utc_timestamp(), "step": description})

    def step(self, description: str, gate: str | None = None) -> None:
        self._append({"kind": "step", "ts": utc_timestamp(), "step": description,
                      **({"gate": gate} if gate else {})})

    def restoring(self, error: str) -> None:
        self._append({"kind": "restore", "ts": utc_timestamp(), "error": error})

    def finish(self) -> None:
        """The operation is complete (or its restore is): the journal is empty again."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return
        _sync_directory(self.path.parent)

    def _append(self, record: dict) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except FileNotFoundError:
            raise JournalError(f"{self.path} vanished while an operation was running") from None
        try:
            os.write(fd, _line(record))
            os.fsync(fd)
        finally:
            os.close(fd)


def _line(record: dict) -> bytes:
    return (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode()


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
