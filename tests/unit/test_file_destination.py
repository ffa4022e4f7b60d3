import errno
import hashlib
import os
from datetime import UTC, datetime

import pytest

from aitask_relay.adapters.destinations import build_destination
from aitask_relay.adapters.destinations.file import FileDestination
from aitask_relay.adapters.watermark import StoreWatermark
from aitask_relay.core.errors import DestinationFailure
from aitask_relay.core.model import Observation, TaskResult
from aitask_relay.core.normalize import normalize

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


def test_a_stored_failure_is_replaced_by_the_success_in_place_atomically(tmp_path):
    # Given a task delivered as FAILURE
    dest = FileDestination(tmp_path)
    dest.deliver(normalize({"TaskId": "t-1", "Status": "FAILURE", "StatusReason": "x"}, task_id="t-1", observed_at=T))
    # When it is delivered as SUCCESS
    obs = success()
    delivery = dest.deliver(obs)
    # Then task.json now records the SUCCESS (renamed over the old one, readable by others), beside its
    # template, and no temporary file is left
    folder = tmp_path / "t-1"
    assert delivery.outcome == "created" and (folder / "task.json").read_bytes() == obs.result.to_json_bytes()
    assert oct((folder / "task.json").stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in folder.iterdir()) == ["task.json", "template.yaml"]


def test_the_sweep_watermark_in_a_directory_not_made_yet_reads_as_never_saved_then_as_last_saved(tmp_path):
    # Given a sweep watermark kept in a file store whose directory does not exist yet
    mark = StoreWatermark(FileDestination(tmp_path / "out"), "abc")
    first, second = datetime(2026, 11, 30, 4, tzinfo=UTC), datetime(2026, 11, 30, 5, tzinfo=UTC)
    # Then it reads as never saved
    assert mark.load() is None
    # When saved, then saved again / Then it reads as last saved (its folders made, the file replaced)
    mark.save(first)
    assert mark.load() == first
    mark.save(second)
    assert mark.load() == second
    assert [p.name for p in (tmp_path / "out" / "_aitask-relay").iterdir()] == ["sweep-watermark-abc.json"]


def test_a_watermark_that_cannot_be_written_is_a_destination_failure_that_says_why(tmp_path):
    # Given a file where the store's directory should be
    (tmp_path / "out").write_text("not a folder")
    mark = StoreWatermark(FileDestination(tmp_path / "out"), "abc")
    # When the watermark is saved / Then a DestinationFailure names the store and the system's reason
    with pytest.raises(DestinationFailure, match=f"^cannot write to file://.*/out: {os.strerror(errno.ENOTDIR)}$"):
        mark.save(datetime(2026, 11, 30, 4, tzinfo=UTC))


def test_a_read_that_fails_is_a_destination_failure_that_says_why(tmp_path):
    # Given a file store without the object (what the watermark's read meets if the file goes after its check)
    dest = FileDestination(tmp_path)
    # When it is read / Then a DestinationFailure names the store and the system's reason
    with pytest.raises(DestinationFailure, match=f"^cannot write to file://.*: {os.strerror(errno.ENOENT)}$"):
        dest._read("t-1/task.json")


def test_each_file_is_written_under_a_hidden_temporary_name_beside_its_final_name(tmp_path, monkeypatch):
    # Given a watch on the folder at the last step before the link (the temporary file's fsync)
    seen = []
    real_fsync = os.fsync

    def fsync_and_look(fd):
        real_fsync(fd)
        seen.append(sorted(p.name for p in (tmp_path / "t-1").iterdir()))

    monkeypatch.setattr(os, "fsync", fsync_and_look)
    # When a task is delivered
    FileDestination(tmp_path).deliver(success())
    # Then each file was in the task's own folder (link and rename are atomic only within one file system)
    # under a dot name a reader's "*" skips, marked .part, and never under its final name half written
    (template_tmp,), (task_tmp, template) = seen
    assert template_tmp.startswith(".tmp-") and template_tmp.endswith(".part")
    assert task_tmp.startswith(".tmp-") and task_tmp.endswith(".part") and template == "template.yaml"


def test_an_error_without_a_text_is_named_by_its_type_and_leaves_no_temporary_file(tmp_path, monkeypatch):
    # Given a file system whose fsync fails with an error that carries no text (a network mount timing out)
    def fsync_times_out(fd):
        raise TimeoutError

    monkeypatch.setattr(os, "fsync", fsync_times_out)
    # When a task is delivered / Then the DestinationFailure names the error's type, and the temp file is gone
    with pytest.raises(DestinationFailure, match=r"^cannot write to file://.*: TimeoutError$"):
        FileDestination(tmp_path).deliver(success())
    assert list((tmp_path / "t-1").iterdir()) == []
