import hashlib
import os

import pytest

from aitask_relay.destinations import build_destination
from aitask_relay.destinations.file import FileDestination
from aitask_relay.errors import DestinationFailure
from aitask_relay.model import Observation, TaskResult
from aitask_relay.normalize import normalize

T = "2026-01-01T00:00:00.000Z"


def success(task_id="t-1", result="Resources:\n  A: 1\n"):
    body = {"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": {"Result": result}}
    return normalize(body, task_id=task_id, observed_at=T)


def test_first_delivery_creates_template_and_task_json(tmp_path):
    # Given a finished YAML task and an empty directory
    dest = build_destination(tmp_path.as_uri())
    obs = success()
    # When delivered
    delivery = dest.deliver(obs)
    # Then both files exist, byte-exact, and the outcome points at the template
    folder = tmp_path / "t-1"
    assert delivery.outcome == "created"
    assert delivery.location == (folder / "template.yaml").as_uri()
    assert (folder / "template.yaml").read_bytes() == b"Resources:\n  A: 1\n"
    stored = (folder / "template.yaml").read_bytes()
    assert hashlib.sha256(stored).hexdigest() == obs.result.template_sha256
    assert (folder / "task.json").read_bytes() == obs.result.to_json_bytes()
    assert oct((folder / "template.yaml").stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in folder.iterdir()) == ["task.json", "template.yaml"]  # no temp file left


def test_second_delivery_is_already_present_and_overwrites_nothing(tmp_path):
    # Given a task already delivered
    dest = FileDestination(tmp_path)
    dest.deliver(success())
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (tmp_path / "t-1").iterdir()}
    # When the same task (even with different content) is delivered again
    delivery = dest.deliver(success(result="Resources:\n  B: 2\n"))
    # Then it is already_present and nothing changed on disk
    assert delivery.outcome == "already_present"
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (tmp_path / "t-1").iterdir()}
    assert after == before


def test_a_crash_between_the_two_files_is_completed_by_the_retry(tmp_path):
    # Given a first attempt that stored the template and crashed before task.json (plus its temp file)
    obs = success()
    folder = tmp_path / "t-1"
    folder.mkdir()
    (folder / "template.yaml").write_bytes(obs.template.body)
    (folder / ".tmp-crashed.part").write_bytes(b"half")
    # When delivered again
    delivery = FileDestination(tmp_path).deliver(obs)
    # Then task.json is created (the delivery completes) and the template is untouched
    assert delivery.outcome == "created"
    assert (folder / "task.json").exists()
    assert (folder / "template.yaml").read_bytes() == obs.template.body


def test_failed_task_gets_only_task_json(tmp_path):
    obs = normalize({"TaskId": "t-f", "Status": "FAILURE", "StatusReason": "x"}, task_id="t-f", observed_at=T)
    delivery = FileDestination(tmp_path).deliver(obs)
    assert delivery.location.endswith("/t-f/task.json")
    assert [p.name for p in (tmp_path / "t-f").iterdir()] == ["task.json"]


def test_a_file_in_the_way_is_a_destination_failure_not_a_crash(tmp_path):
    # Given a plain file where the task's folder should be (works as root too)
    (tmp_path / "t-1").write_text("not a folder")
    # When delivered / Then a DestinationFailure names the destination, nothing else is written
    with pytest.raises(DestinationFailure, match="cannot write to file://"):
        FileDestination(tmp_path).deliver(success())
    assert [p.name for p in tmp_path.iterdir()] == ["t-1"]


def test_a_task_id_that_would_leave_the_directory_stays_inside_it_under_its_escaped_key(tmp_path):
    # Given a record whose id is path-like (an id ROS returned outside our pattern, or one that bypassed
    # validation): When it is delivered
    obs = Observation(TaskResult(task_id="../escape", observed_at=T, status="FAILURE", terminal=True))
    delivery = FileDestination(tmp_path / "root").deliver(obs)
    # Then it is stored inside the directory, under its escaped key (taskref.storage_key), and nowhere else
    assert delivery.outcome == "created"
    assert [p.name for p in (tmp_path / "root").iterdir()] == ["~~2E~2E~2Fescape"]
    assert not (tmp_path / "escape").exists()


def another_delivery_during_ours(monkeypatch, files):
    """Make a concurrent delivery create ``files`` ({path: bytes}) after our create-only check and temp write,
    just before our link: the race the hard link is there for. The hook is the temp file's fsync, the last
    step before the link, so the race happens whatever the link step is."""
    real_fsync = os.fsync

    def fsync_then_race(fd):
        real_fsync(fd)
        for path, data in files.items():
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)

    monkeypatch.setattr(os, "fsync", fsync_then_race)


def test_a_file_another_delivery_creates_during_our_write_keeps_its_bytes(tmp_path, monkeypatch):
    # Given a FAILURE record (task.json only) and another delivery that creates task.json while ours is
    # being written (after our check that the name was free)
    obs = normalize({"TaskId": "t-r", "Status": "FAILURE", "StatusReason": "x"}, task_id="t-r", observed_at=T)
    theirs = tmp_path / "t-r" / "task.json"
    another_delivery_during_ours(monkeypatch, {theirs: b'{"written": "by the other delivery"}'})
    # When we deliver
    delivery = FileDestination(tmp_path).deliver(obs)
    # Then the file the other delivery created keeps its bytes (create-only: never overwritten), the outcome
    # says it was there, and our temp file is gone
    assert theirs.read_bytes() == b'{"written": "by the other delivery"}'
    assert delivery.outcome == "already_present"
    assert [p.name for p in (tmp_path / "t-r").iterdir()] == ["task.json"]


def test_a_create_race_lost_at_the_link_is_already_present_not_created(tmp_path, monkeypatch):
    # Given a finished task, and another delivery of it that stores its template and task.json while our
    # template is being written
    obs = success(task_id="t-race")
    folder = tmp_path / "t-race"
    another_delivery_during_ours(
        monkeypatch, {folder / "template.yaml": obs.template.body, folder / "task.json": obs.result.to_json_bytes()}
    )
    # When we deliver
    delivery = FileDestination(tmp_path).deliver(obs)
    # Then we created nothing (our link found the template there): the outcome is already_present, which is
    # what a retry or a sweep counts as "already delivered"
    assert delivery.outcome == "already_present"
    assert delivery.location == (folder / "template.yaml").as_uri()
    assert sorted(p.name for p in folder.iterdir()) == ["task.json", "template.yaml"]
