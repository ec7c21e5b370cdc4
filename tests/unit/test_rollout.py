"""The rollout's decisions, on the fake engine with scripted verdicts (a real policy cannot be made to answer
a chosen sequence on demand; tests/e2e/test_rollout_live.py runs the real one): advance, hold, roll back,
and a run killed at any point that `rollback` or a re-run of `rollout` converges."""

import pytest

from fakestack import FakeWorld, Killed
from test_converge import assert_converged, deployed, edit_manifest, fake_stack, new_project, operate
from swiftdeploy.judge.policy import Decision
from swiftdeploy.converge.rollout import Analysis, Rollout

PASS = "pass"


class ScriptedRollout(Rollout):
    """A rollout whose analyses answer from a script (the last entry repeats) on a fake clock."""

    def __init__(self, stack, script, world=None):
        self.now = 0.0
        super().__init__(stack, say=lambda line: None, sleep=self._sleep, clock=lambda: self.now,
                         operation_options={"ask_gate": lambda domain: None,
                                            **({"checkpoint": world.tick} if world else {})})
        self.script, self.world = list(script), world

    def _sleep(self, seconds):
        self.now += seconds

    def _judge(self):
        verdict = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if self.world:
            self.world.tick("analysis")
        facts = {"requests": 100, "errors": 0, "error_rate": 0.0, "p99_ms": 40.0, "p99_exact_ms": 38.0, "stable": None}
        decision = Decision(allow=verdict == PASS, reasons=() if verdict == PASS else (f"{verdict} reason",), raw={},
                            verdict=verdict)
        return Analysis(verdict, decision.reasons, (), facts, decision), {"requests": 0}


def project(tmp_path, **schedule):
    root, world = new_project(tmp_path), FakeWorld()
    deployed(root, world)
    edit_manifest(root, {f"services.canary.{key}": value for key, value in
                         {"steps": [20, 50, 100], "step_seconds": 30, "interval_seconds": 10, **schedule}.items()})
    return root, world


def events(root, world, kind):
    return list(fake_stack(root, world).history.events(kind))


def test_passing_analyses_walk_every_step_and_promote(tmp_path):
    root, world = project(tmp_path)
    rollout = ScriptedRollout(fake_stack(root, world), [PASS])
    result = rollout.run()
    assert result.outcome == "promoted" and result.version == "1.1.0"
    assert_converged(root, world, "stable", "1.1.0")
    assert [e["weight"] for e in events(root, world, "rollout_step")] == [20, 50, 100]
    assert result.analyses == 12 and rollout.now >= 90  # four analyses (0, 10, 20, 30 s) per 30 s step
    [gate] = [g for g in events(root, world, "gate") if g["domain"] == "canary"]
    assert gate["operation"] == "rollout" and gate["verdict"] == PASS
    assert fake_stack(root, world).releases.last().version == "1.1.0"


def test_a_failed_analysis_rolls_back_at_once(tmp_path):
    root, world = project(tmp_path)
    result = ScriptedRollout(fake_stack(root, world), [PASS] * 5 + ["fail"]).run()
    assert result.outcome == "rolled_back"
    assert result.reasons == ("1 failed analysis in a row at step 2 (50%)", "fail reason")
    assert_converged(root, world, "stable", "1.0.0")
    [rollback] = events(root, world, "rollback")
    assert rollback["by"] == "rollout" and "fail reason" in rollback["reasons"]


def test_failures_must_come_in_a_row_to_reach_the_limit(tmp_path):
    root, world = project(tmp_path, failure_limit=2)
    result = ScriptedRollout(fake_stack(root, world), ["fail", PASS, "fail", PASS, PASS, PASS] + [PASS]).run()
    assert result.outcome == "promoted"
    root, world = project(tmp_path / "again", failure_limit=2)
    result = ScriptedRollout(fake_stack(root, world), [PASS, "fail", "insufficient", "fail"]).run()
    assert result.outcome == "rolled_back" and result.reasons[0] == "2 failed analyses in a row at step 1 (20%)"


def test_insufficient_data_holds_until_the_deadline_then_rolls_back_and_never_promotes(tmp_path):
    root, world = project(tmp_path, step_deadline_seconds=60)
    rollout = ScriptedRollout(fake_stack(root, world), ["insufficient"])
    result = rollout.run()
    assert result.outcome == "rolled_back" and 60 <= rollout.now <= 70
    assert result.reasons[0] == "no passing analysis at step 1 (20%) within 60 s"
    assert {e["verdict"] for e in events(root, world, "rollout_verdict")} == {"insufficient"}
    assert_converged(root, world, "stable", "1.0.0")
    assert not [e for e in events(root, world, "gate") if e["domain"] == "canary"]


def test_an_unanswered_policy_holds_and_the_rollout_goes_on_when_it_answers(tmp_path):
    root, world = project(tmp_path)
    result = ScriptedRollout(fake_stack(root, world), ["unknown", "unknown", PASS]).run()
    assert result.outcome == "promoted"


def test_a_step_that_passes_late_still_waits_its_full_time(tmp_path):
    root, world = project(tmp_path, steps=[50, 100])
    rollout = ScriptedRollout(fake_stack(root, world), ["insufficient"] * 3 + [PASS])
    rollout.run()
    verdicts = events(root, world, "rollout_verdict")
    first_step = [v for v in verdicts if v["step"] == 1]
    assert [v["verdict"] for v in first_step] == ["insufficient"] * 3 + [PASS]  # 30 s at step 1: advanced on a pass


def test_a_rollout_already_at_a_step_goes_on_from_it(tmp_path):
    root, world = project(tmp_path)
    operate(root, world, "promote:canary")
    edit_manifest(root, {"services.canary.weight": 50})
    operate(root, world, "deploy")
    ScriptedRollout(fake_stack(root, world), [PASS]).run()
    assert [e["weight"] for e in events(root, world, "rollout_step")] == [50, 100]


def ticks_of_a_rollout(tmp_path) -> int:
    root, world = project(tmp_path / "count")
    before = world.ticks
    ScriptedRollout(fake_stack(root, world), [PASS], world).run()
    return world.ticks - before


@pytest.mark.parametrize("then", ["rollback", "rollout"])
def test_killed_at_every_point_then_rollback_or_a_rerun_converges(tmp_path, then):
    total = ticks_of_a_rollout(tmp_path)
    assert total > 20
    for at in range(1, total + 1):
        root, world = project(tmp_path / f"kill{at}")
        world.kill_at = world.ticks + at
        with pytest.raises(Killed):
            ScriptedRollout(fake_stack(root, world), [PASS], world).run()
        stack = fake_stack(root, world)
        if then == "rollback":
            released = stack.releases.last().version
            try:
                operate(root, world, "rollback")
            except Exception as err:  # noqa: BLE001 - only "nothing to roll back" may happen
                assert "nothing to roll back" in str(err), (at, err)
            assert_converged(root, world, "stable", released)
        else:
            if stack.manifest.services.version == "1.1.0" and stack.journal.pending() is None:
                continue  # the promotion had committed: there is nothing left to roll out
            ScriptedRollout(stack, [PASS]).run()
            assert_converged(root, world, "stable", "1.1.0")


def test_ctrl_c_stops_at_the_step_in_one_line_and_a_rerun_goes_on(tmp_path):
    from swiftdeploy.errors import SwiftDeployError

    root, world = project(tmp_path)

    class Interrupted(ScriptedRollout):
        def _judge(self):
            if self.analyses == 5:  # the second analysis of step 2
                raise KeyboardInterrupt
            return super()._judge()

    with pytest.raises(SwiftDeployError) as stopped:
        Interrupted(fake_stack(root, world), [PASS]).run()
    assert str(stopped.value).startswith("rollout stopped (Ctrl-C) at step 2/3: the canary keeps 50%")
    assert events(root, world, "rollout")[-1]["outcome"] == "stopped"
    assert_converged(root, world, "canary", "1.0.0")  # a state the manifest names: canary at the step's weight
    assert ScriptedRollout(fake_stack(root, world), [PASS]).run().outcome == "promoted"
    assert [e["weight"] for e in events(root, world, "rollout_step")] == [20, 50, 50, 100]


def test_status_names_a_stopped_rollout_only_while_its_canary_is_there(tmp_path):
    from swiftdeploy.converge.rollout_state import rollout_progress

    root, world = project(tmp_path)

    class Interrupted(ScriptedRollout):
        def _judge(self):
            if self.analyses == 5:
                raise KeyboardInterrupt
            return super()._judge()

    with pytest.raises(Exception):
        Interrupted(fake_stack(root, world), [PASS]).run()
    assert rollout_progress(fake_stack(root, world)).startswith("rollout stopped at step 2/3 at 50%")
    operate(root, world, "rollback")  # dropped by hand: no stopped rollout is left to go on with
    assert rollout_progress(fake_stack(root, world)) is None


def test_status_names_the_step_the_canary_serves_before_its_first_verdict(tmp_path):
    """A rollout killed between a step's weight change and its first analysis: the canary serves that step's
    weight, so status must say that step, not the one before."""
    from swiftdeploy.converge.rollout_state import rollout_progress

    root, world = project(tmp_path)

    class KilledAtStepTwo(ScriptedRollout):
        def _judge(self):
            if self.analyses == 4:  # step 1 took 4 analyses (0, 10, 20, 30 s); step 2 serves 50%
                raise SystemExit("killed")
            return super()._judge()

    with pytest.raises(SystemExit):
        KilledAtStepTwo(fake_stack(root, world), [PASS]).run()
    assert rollout_progress(fake_stack(root, world)).startswith("rollout stopped at step 2/3 at 50%")
