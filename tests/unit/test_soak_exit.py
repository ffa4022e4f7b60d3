"""tools/soak.py's verdict: every problem it reports makes it exit 1, and only those (no servers: constructed
results, and reconcile over in-process fakes)."""

import hashlib
import io
import json

import pytest

from relay_devkit import ROOT
from relay_devkit.runner import load_module

soak = load_module("soak", ROOT / "tools" / "soak.py")  # a script, not a package's module: loaded from its file
Check, Expected, Result, failures, reconcile = soak.Check, soak.Expected, soak.Result, soak.failures, soak.reconcile

CHECKS = ("s3", "amqp", "reports", "sweep counts", "listing errors", *soak.CASES)


def clean() -> Result:
    """A run with nothing wrong: each check checked all its tasks; the only duplicates were logged as possible."""
    result = Result("faults", 10, delivered=10, duplicates=2, explained=2)
    result.checks = {name: Check(name, expected=10, ok=10) for name in CHECKS}
    result.checks["amqp"].duplicates = result.checks["amqp"].explained = 2
    result.notes += [
        "(chaos: kill x3; ROS faults on a fifth of the tasks)",
        "amqp: duplicate, logged by the relay as possible: t-1:SUCCESS",
        "reports: t-9 reported timed_out 2 times, logged as possible",
    ]
    return result


def lost(result, check, problem):
    result.checks[check].lost, result.checks[check].ok, result.lost, result.delivered = 1, 9, 1, 9
    result.problems.append(problem)


def unexplained(result, check, problem):
    result.checks[check].duplicates += 1
    result.duplicates += 1
    result.problems.append(problem)


def undecodable(result):
    result.checks["amqp"].lost += 1  # a message that is no event: counted on the check, no task is lost
    result.problems.append("amqp: a message not UTF-8 JSON (UnicodeDecodeError): b'\\xff'")


def not_checked(result):
    result.checks[soak.LAG].ok = 9
    result.problems.append(f"{soak.LAG}: t-7: GetAITask never answered it 404 (not checked)")


PROBLEMS = {
    "a lost task": (lambda r: lost(r, "s3", "s3: t-2 (success): no task.json"), "s3: t-2 (success): no task.json"),
    "a wrong template_ref": (
        lambda r: lost(r, "amqp", "amqp: t-3 (success): template_ref s3://b/x does not resolve to the stored template"),
        "template_ref s3://b/x does not resolve",
    ),
    "an unexplained duplicate": (
        lambda r: unexplained(r, "amqp", "amqp: duplicate: t-4:SUCCESS (2 messages)"),
        "amqp: 1 duplicates unexplained",
    ),
    "a repeated failure report": (
        lambda r: unexplained(r, "reports", "reports: t-5 reported not_found 2 times"),
        "reports: t-5 reported not_found 2 times",
    ),
    "a message id that is not the event id": (
        lambda r: r.problems.append("amqp: message_id m-1 is not the event id t-6:SUCCESS"),
        "message_id m-1 is not the event id",
    ),
    "a message that is not UTF-8 JSON": (undecodable, "amqp: 1 lost"),
    "a sweep that failed": (
        lambda r: r.problems.append("sweep counts: a sweep failed: ['Traceback ...']"),
        "a sweep failed",
    ),
    "a case that did not happen": (not_checked, f"{soak.LAG}: 1 of 10 not checked"),
    "a check with nothing to check": (lambda r: setattr(r.checks["listing errors"], "expected", 0), "no task to check"),
}


def test_a_clean_run_with_explained_duplicates_and_notes_passes():
    # Given a baseline and a faults run with nothing wrong, the faults run's duplicates all logged as possible
    baseline = clean()
    baseline.scenario, baseline.duplicates, baseline.explained, baseline.notes = "baseline", 0, 0, []
    baseline.checks["amqp"].duplicates = baseline.checks["amqp"].explained = 0
    # When the verdict is taken / Then there is no problem: the soak exits 0
    assert failures([baseline, clean()]) == []


@pytest.mark.parametrize("problem", sorted(PROBLEMS))
def test_every_problem_the_soak_reports_fails_the_run(problem):
    # Given a clean baseline, and a faults run carrying one problem as reconcile reports it
    add, shown = PROBLEMS[problem]
    baseline, faults = clean(), clean()
    baseline.scenario = "baseline"
    add(faults)
    # When the verdict is taken
    found = failures([baseline, faults])
    # Then the run fails (the soak exits 1), on a line naming the faults scenario and the problem
    assert found and all(line.startswith("faults: ") for line in found), found
    assert any(shown in line for line in found), found


class FakeS3:
    """list_objects_v2 (one page) and get_object over a dict of keys."""

    def __init__(self, objects):
        self.objects = objects

    def get_paginator(self, _operation):
        return self

    def paginate(self, Bucket):  # boto3's keyword
        return [{"Contents": [{"Key": key} for key in self.objects]}]

    def get_object(self, Bucket, Key):  # boto3's keywords
        return {"Body": io.BytesIO(self.objects[Key])}


def test_reconcile_reports_a_wrong_template_ref_and_an_unlogged_repeat_as_problems_and_logged_repeats_as_notes():
    # Given two finished tasks stored right, a stuck and an unknown task, and the AMQP queue holding task A's
    # event twice (the relay logged it as possible) and task B's with a template_ref to no stored object; the
    # stuck task reported twice (logged as possible), the unknown one twice (not logged)
    body_a, body_b = b"Resources: {A: 1}\n", b"Resources: {B: 1}\n"
    sha_a, sha_b = hashlib.sha256(body_a).hexdigest(), hashlib.sha256(body_b).hexdigest()
    s3 = FakeS3({"t-a/template.yaml": body_a, "t-a/task.json": b"{}", "t-b/template.yaml": body_b,
                 "t-b/task.json": b"{}"})  # fmt: skip
    expected = [Expected("t-a", "success", sha_a), Expected("t-b", "success", sha_b), Expected("t-c", "stuck"),
                Expected("t-d", "unknown")]  # fmt: skip
    event_a = json.dumps({"id": "t-a:SUCCESS", "data": {"template_sha256": sha_a, "template": body_a.decode()}})
    ref_b = {"template_sha256": sha_b, "template_ref": "s3://bucket/t-b/template.json"}
    event_b = json.dumps({"id": "t-b:SUCCESS", "data": ref_b})
    outputs = {"amqp": ("", False, [(None, event_a.encode()), (None, event_a.encode()), (None, event_b.encode())])}
    reports = {"timed_out": {"t-c": 2}, "not_found": {"t-d": 2}}
    explained = {"amqp": {"t-a:SUCCESS"}, "reports": {"t-c"}}
    result = Result("baseline", 4)
    # When reconciled
    reconcile(result, expected, s3, "bucket", reports, outputs, explained, strict_reports=True, hidden=set())
    found = failures([result])
    # Then the wrong template_ref and the unlogged repeated report fail the run, each named
    assert "baseline: amqp: t-b (success): template_ref s3://bucket/t-b/template.json does not resolve to the stored " \
           "template" in found  # fmt: skip
    assert "baseline: reports: t-d reported not_found 2 times" in found
    # And the repeats the relay logged as possible are notes, not problems
    assert "amqp: duplicate, logged by the relay as possible: t-a:SUCCESS" in result.notes
    assert "reports: t-c reported timed_out 2 times, logged as possible" in result.notes
    assert not [line for line in found if "t-a" in line or "t-c" in line], found


@pytest.mark.parametrize("hidden", [{"t-a"}, set()], ids=["one-of-two-hidden", "none-hidden"])
def test_a_created_task_that_was_never_answered_404_is_a_note_unless_the_case_never_happened(hidden):
    # Given two tasks of the "not found after create" case, both stored right, of which GetAITask answered 404
    # to the first look of one (a loaded machine can look after the 10-20 s of 404s) or of none
    bodies = {"t-a": b"Resources: {A: 1}\n", "t-b": b"Resources: {B: 1}\n"}
    s3 = FakeS3({f"{t}/{name}": data for t, body in bodies.items()
                 for name, data in (("template.yaml", body), ("task.json", b"{}"))})  # fmt: skip
    expected = [Expected(t, "success", hashlib.sha256(b).hexdigest(), case=soak.LAG) for t, b in bodies.items()]
    result = Result("baseline", 2)
    # When reconciled
    reconcile(result, expected, s3, "bucket", {}, {}, {}, strict_reports=True, hidden=hidden)
    found = [line for line in failures([result]) if soak.LAG in line]
    # Then both tasks count as checked; a case that happened for one task is a note about the other, and a case
    # that happened for none fails the run
    assert (result.checks[soak.LAG].expected, result.checks[soak.LAG].ok) == (2, 2)
    if hidden:
        assert found == [] and any("never answered 1 of 2" in note for note in result.notes), result.notes
    else:
        assert found and "did not happen at all" in found[0], found


def test_the_soak_counts_a_report_the_relay_logged_as_possibly_repeated_as_explained():
    # Given worker logs with both of the relay's lines that announce a possible repeat of a report
    logs = (
        "aitask_relay.consumer reports for t-a,t-b sent, but record m-1 is retried: they will be sent again\n"
        "aitask_relay.consumer reports for t-c sent from record m-2, received 2 times: an earlier delivery may have "
        "sent them (same source_message_id)\n"
        "aitask_relay.consumer reports for t-d were not sent\n"
    )
    # When the soak reads them / Then the three tasks named are explained, and nothing else
    assert soak.explained_by(logs)["reports"] == {"t-a", "t-b", "t-c"}
