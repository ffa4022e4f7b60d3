"""The sweeper's window against the emulator and real stores: paging stops once a newest-first listing is
past the window (issue 13, item 7), and a sweeper that missed runs catches up from its watermark (item D),
kept in a file store, S3 on moto, the Redis ledger or the DynamoDB ledger on moto."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from aitask_relay import runtime
from aitask_relay.core.clock import now_utc

YAML = "ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n"
DAY = 86400


def recent_and_history(emulator, history=3000):
    """``history`` tasks finished 3 days ago; 5 finished just now; one created 20 h ago that finished 10
    minutes ago (a long run: old CreateTime, recent UpdateTime)."""
    emulator.add_history({"Count": history, "CreatedSecondsAgo": 3 * DAY, "TaskIdPrefix": "t-hist-"})
    for i in range(5):
        emulator.add_task({"TaskId": f"t-new-{i}", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    emulator.add_task(
        {
            "TaskId": "t-long",
            "CreatedSecondsAgo": 20 * 3600,
            "Timeline": [["RUNNING", 0], ["SUCCESS", 20 * 3600 - 600]],
            "TaskOutput": {"Result": YAML},
        }
    )


def delivered(out_dir):
    return sorted(p.parent.name for p in out_dir.glob("*/task.json"))


NEW = ["t-long"] + [f"t-new-{i}" for i in range(5)]


def test_a_sweep_over_a_long_history_reads_only_the_pages_of_its_window(emulator, relay_env, out_dir, invoke):
    # Given 3,000 tasks finished 3 days ago and 6 in the last hour (one created 20 h ago), pages of 50
    recent_and_history(emulator)
    relay_env.setenv("RELAY_SWEEP_PAGE_SIZE", "50")
    runtime.reset()
    emulator.reset_stats()
    # When the sweeper runs
    summary = invoke("sweeper", {})
    # Then it asked for one page, not 61: that page already ended 3 days back, before the window start
    # minus the 24 h tracking horizon, and the listing's CreateTime never rose
    assert emulator.stats()["by_action"].get("ListAITasks") == 1
    assert summary["pages"] == 1 and summary["complete"] is True and summary["resume_token"] is None
    assert "newest-first listing reached CreateTime" in summary["early_stop"]
    assert summary["full_scan_reason"] is None
    # and every task of the window was delivered, the long-running one too
    assert summary["delivered"] == 6 and delivered(out_dir) == NEW


def test_a_listing_that_is_not_newest_first_is_read_whole_and_logged_once(
    emulator, relay_env, out_dir, invoke, captured_logs
):
    # Given the same tasks listed oldest first
    recent_and_history(emulator, history=1000)
    emulator.set_list_order("oldest-first")
    relay_env.setenv("RELAY_SWEEP_PAGE_SIZE", "50")
    runtime.reset()
    emulator.reset_stats()
    # When the sweeper runs twice in one process
    first = invoke("sweeper", {})
    second = invoke("sweeper", {})
    # Then each sweep read the whole listing (21 pages) and delivered what the window holds
    assert emulator.stats()["by_action"].get("ListAITasks") == 2 * 21
    assert (first["pages"], second["pages"], first["early_stop"], second["early_stop"]) == (21, 21, None, None)
    assert first["delivered"] == 6 and second["already_delivered"] == 6 and delivered(out_dir) == NEW
    # and both say why; the process logged the contradiction once
    assert "not newest-first" in first["full_scan_reason"] and second["full_scan_reason"] == first["full_scan_reason"]
    warnings = [line for line in captured_logs() if "contradicts the newest-first order" in line["message"]]
    assert len(warnings) == 1


# --- the watermark ---------------------------------------------------------------------------------


class Home:
    """Where the watermark lives, read and written here with the backends' own clients (the stored form
    is part of the contract: a newer relay must read what an older one wrote). ``found`` takes its place
    from the ``watermark`` a sweep's summary names."""

    def __init__(self, kind, out_dir, aws=None, bucket=None, redis_url=None, table=None):
        self.kind, self.out_dir, self.aws, self.bucket, self.table = kind, out_dir, aws, bucket, table
        self.redis_url, self.where = redis_url, None

    def found(self, summary):
        name = summary["watermark"]
        if self.kind == "file":
            assert name.startswith("file://") and "/_aitask-relay/sweep-watermark-" in name, name
            self.where = Path(name.removeprefix("file://"))
        elif self.kind in ("s3", "oss"):
            assert name.startswith(f"{self.kind}://{self.bucket}/templates/_aitask-relay/sweep-watermark-"), name
            self.where = name.removeprefix(f"{self.kind}://{self.bucket}/")
        else:  # "<ledger> key <key>" / "dynamodb://<table> item <key>"
            assert " key aitask-relay.sweep-watermark:" in name or " item aitask-relay.sweep-watermark:" in name
            self.where = name.rpartition(" ")[2]

    def write(self, when):
        body = json.dumps({"last_complete_sweep_start": when.isoformat(timespec="seconds")})
        if self.kind == "file":
            self.where.write_text(body)
        elif self.kind in ("s3", "oss"):  # moto's S3 API holds the OSS bucket too (relay_devkit.servers)
            self.aws.s3.put_object(Bucket=self.bucket, Key=self.where, Body=body.encode())
        elif self.kind == "redis":
            import redis

            redis.Redis.from_url(self.redis_url).set(self.where, body)
        else:
            self.aws.dynamodb.put_item(TableName=self.table, Item={"id": {"S": self.where}, "data": {"S": body}})

    def read(self):
        if self.kind == "file":
            body = self.where.read_text()
        elif self.kind in ("s3", "oss"):
            body = self.aws.s3.get_object(Bucket=self.bucket, Key=self.where)["Body"].read()
        elif self.kind == "redis":
            import redis

            body = redis.Redis.from_url(self.redis_url).get(self.where)
        else:
            item = self.aws.dynamodb.get_item(TableName=self.table, Key={"id": {"S": self.where}})["Item"]
            body = item["data"]["S"]
        return datetime.fromisoformat(json.loads(body)["last_complete_sweep_start"])


@pytest.fixture(params=["file", "s3", "oss", "redis", "dynamodb"])
def home(request, relay_env, out_dir):
    """A file store, an S3 or OSS store (moto) beside it, the Redis ledger, the DynamoDB ledger (moto)."""
    kind = request.param
    if kind in ("s3", "oss"):
        aws = request.getfixturevalue("aws")
        bucket = aws.bucket()
        store = f"s3://{bucket}/templates/"
        if kind == "oss":
            store = f"oss://{bucket}/templates/?region=cn-hangzhou&endpoint={aws.endpoint}"
        relay_env.setenv("RELAY_DESTINATIONS", f"{out_dir.as_uri()},{store}")
        found = Home(kind, out_dir, aws=aws, bucket=bucket)
    elif kind == "redis":
        url = request.getfixturevalue("redis_url")
        relay_env.setenv("RELAY_LEDGER", url)
        found = Home(kind, out_dir, redis_url=url)
    elif kind == "dynamodb":
        aws = request.getfixturevalue("aws")
        table = aws.ledger_table()
        relay_env.setenv("RELAY_LEDGER", f"dynamodb://{table}")
        found = Home(kind, out_dir, aws=aws, table=table)
    else:
        found = Home(kind, out_dir)
    runtime.reset()
    return found


def missed_three_hours(emulator, home, invoke):
    """The last complete sweep started 3 h ago (a first sweep ran, and its watermark is set back 3 h); a
    task finished 2 h ago, another just now."""
    first = invoke("sweeper", {})
    assert first["watermark_saved"] is True
    home.found(first)
    home.write(now_utc() - timedelta(hours=3))
    emulator.add_task(
        {
            "TaskId": "t-missed",
            "CreatedSecondsAgo": 7500,
            "Timeline": [["RUNNING", 0], ["SUCCESS", 300]],
            "TaskOutput": {"Result": YAML},
        }
    )
    emulator.add_task({"TaskId": "t-now", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})


def test_a_sweeper_that_missed_three_hours_delivers_what_finished_meanwhile(emulator, home, out_dir, invoke):
    # Given a 1 h lookback, a watermark 3 h old, and a task that finished 2 h ago
    missed_three_hours(emulator, home, invoke)
    before = now_utc()
    # When the sweeper runs
    summary = invoke("sweeper", {})
    # Then it delivered both tasks: its window reached back to the watermark (plus the overlap)
    assert delivered(out_dir) == ["t-missed", "t-now"]
    assert summary["complete"] is True and summary["delivered"] == 2
    assert 3 * 3600 + 300 <= summary["window_seconds"] <= 3 * 3600 + 300 + 60
    assert summary["caught_up_from"] is not None and summary["watermark_saved"] is True
    # and the watermark moved to this sweep's start, so the next sweep covers the lookback only
    assert home.read() >= before.replace(microsecond=0)
    again = invoke("sweeper", {})
    assert (again["window_seconds"], again["caught_up_from"], again["delivered"]) == (3600, None, 0)


def test_an_incomplete_sweep_does_not_move_the_watermark(emulator, home, relay_env, out_dir, invoke):
    # Given a watermark 3 h old, a task that finished 2 h ago, ROS calls of 0.1 s connect + 3 s read, one
    # attempt (a safety margin of 2 x 3.1 s + the 3 s reserve = 9.2 s), an invocation of 10.7 s, and a
    # listing page that takes 2.5 s: after it, less than the margin is left
    missed_three_hours(emulator, home, invoke)
    mark = home.read()
    relay_env.setenv("ROS_MAX_ATTEMPTS", "1")
    relay_env.setenv("ROS_CONNECT_TIMEOUT_MS", "100")
    relay_env.setenv("ROS_READ_TIMEOUT_MS", "3000")
    runtime.reset()
    emulator.add_fault({"Action": "ListAITasks", "LatencyMs": 2500, "Times": 1})
    # When the sweep stops for time before it finished
    stopped = invoke("sweeper", {}, timeout_ms=10_700)
    # Then the watermark did not move
    assert stopped["complete"] is False and stopped["stopped_reason"] == "time"
    assert home.read() == mark
    assert stopped["watermark_not_saved"] == "the sweep stopped before the end of its window"
    # and the next, complete, sweep still catches up from it
    summary = invoke("sweeper", {})
    assert delivered(out_dir) == ["t-missed", "t-now"] and summary["caught_up_from"] == mark.isoformat()


def test_the_catch_up_is_bounded_by_its_maximum(emulator, relay_env, out_dir, invoke, captured_logs):
    # Given RELAY_SWEEP_MAX_CATCH_UP_SECONDS=7200, a watermark 3 h old and a task that finished 2.5 h ago
    relay_env.setenv("RELAY_SWEEP_MAX_CATCH_UP_SECONDS", "7200")
    runtime.reset()
    home = Home("file", out_dir)
    home.found(invoke("sweeper", {}))
    home.write(now_utc() - timedelta(hours=3))
    emulator.add_task({"TaskId": "t-too-old", "CreatedSecondsAgo": 9000, "Status": "SUCCESS"})
    # When the sweeper runs
    summary = invoke("sweeper", {})
    # Then it covered 2 h, said from which watermark, warned that the rest is not swept, and moved on
    assert (summary["window_seconds"], summary["watermark_saved"]) == (7200, True)
    assert summary["caught_up_from"] is not None and delivered(out_dir) == []
    assert any("RELAY_SWEEP_MAX_CATCH_UP_SECONDS" in line["message"] for line in captured_logs())


def test_a_watermark_that_is_not_readable_json_is_ignored_and_replaced(emulator, relay_env, out_dir, invoke):
    # Given a watermark file that holds garbage
    home = Home("file", out_dir)
    home.found(invoke("sweeper", {}))
    path = home.where
    path.write_text("{not json")
    emulator.add_task({"TaskId": "t-now", "Status": "SUCCESS", "TaskOutput": {"Result": YAML}})
    # When the sweeper runs
    summary = invoke("sweeper", {})
    # Then it swept the lookback, as without a watermark, and wrote a good one
    assert (summary["window_seconds"], summary["delivered"], summary["watermark_saved"]) == (3600, 1, True)
    assert json.loads(path.read_text())["last_complete_sweep_start"]


def test_without_a_ledger_or_a_store_the_sweep_behaves_as_before_and_says_so_once(
    emulator, relay_env, aws, invoke, captured_logs
):
    # Given an SQS queue as the only destination and no ledger
    name, _url = aws.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"sqs://{name}")
    runtime.reset()
    # When the sweeper runs twice
    first, second = invoke("sweeper", {}), invoke("sweeper", {})
    # Then both swept the lookback and saved nothing; the cold start said why, once
    assert [(s["window_seconds"], s["watermark_saved"]) for s in (first, second)] == [(3600, False)] * 2
    notes = [line for line in captured_logs() if "sweep watermark in" in line["message"]]
    assert len(notes) == 1 and notes[0]["level"] == "WARNING"


# --- what holds the watermark back (issue 13, hostile review: a catch-up that failed was never repeated) ---


def one_attempt(relay_env):
    """One attempt per ROS call: a GetAITask fault fails at once instead of after the SDK's backoff."""
    relay_env.setenv("ROS_MAX_ATTEMPTS", "1")
    runtime.reset()


def test_a_catch_up_whose_task_failed_retryably_keeps_the_watermark_until_it_is_delivered(
    emulator, home, relay_env, out_dir, invoke
):
    # Given a watermark 3 h old, a task that finished 2 h ago, and GetAITask answering 503 for that task
    one_attempt(relay_env)
    missed_three_hours(emulator, home, invoke)
    mark = home.read()
    emulator.add_fault({"Action": "GetAITask", "TaskId": "t-missed", "Status": 503, "Code": "ServiceUnavailable",
                        "Times": None})  # fmt: skip
    # When the sweeper runs
    failed = invoke("sweeper", {})
    # Then the task failed, retryably, and the watermark stayed where it was, saying why
    assert failed["complete"] is True and failed["failed"] == 1 and delivered(out_dir) == ["t-now"]
    assert failed["caught_up_from"] == mark.isoformat()
    assert (failed["watermark_saved"], home.read()) == (False, mark)
    assert failed["retryable_failures"] == 1 and "a retry can fix" in failed["watermark_not_saved"]
    # and once GetAITask answers again, the next sweep covers the gap again and delivers the task
    emulator.clear_faults()
    summary = invoke("sweeper", {})
    assert summary["caught_up_from"] == mark.isoformat() and summary["delivered"] == 1
    assert delivered(out_dir) == ["t-missed", "t-now"] and summary["watermark_saved"] is True
    assert home.read() > mark


def test_a_task_that_failed_for_good_does_not_hold_the_watermark(emulator, relay_env, out_dir, invoke):
    # Given a watermark 3 h old, and a task that finished 2 h ago whose GetAITask answers 404 TaskNotFound
    one_attempt(relay_env)
    home = Home("file", out_dir)
    missed_three_hours(emulator, home, invoke)
    mark = home.read()
    emulator.add_fault({"Action": "GetAITask", "TaskId": "t-missed", "Status": 404, "Code": "TaskNotFound",
                        "Times": None})  # fmt: skip
    # When the sweeper runs
    summary = invoke("sweeper", {})
    # Then the task is reported failed, but no retry could fix it: the watermark moved on
    assert summary["failed"] == 1 and delivered(out_dir) == ["t-now"]
    assert summary["watermark_saved"] is True and home.read() > mark
    assert summary["retryable_failures"] == 0 and summary["watermark_not_saved"] is None


class Gate:
    """A TCP port in front of RabbitMQ that can be closed (connections refused: the broker is down) and
    opened again (connections forwarded to 127.0.0.1:5672), so a destination URI stays the same."""

    def __init__(self):
        from relay_devkit.servers import closed_port

        self.port, self._server = closed_port(), None

    def open(self):
        import socket
        import threading

        server = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self._server = server

        def pipe(source, sink):
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                for end in (source, sink):
                    end.close()

        def accept():
            while True:
                try:
                    client, _ = server.accept()
                except OSError:
                    return
                upstream = socket.create_connection(("127.0.0.1", 5672))
                threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
                threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()

    def close(self):
        if self._server is not None:
            self._server.close()
            self._server = None


@pytest.fixture
def gate():
    opened = Gate()
    yield opened
    opened.close()


def test_a_catch_up_with_a_destination_down_keeps_the_watermark_until_it_is_delivered(
    emulator, relay_env, out_dir, invoke, rabbitmq, gate
):
    # Given a file store and an AMQP queue whose broker is down (connections refused), a watermark 3 h
    # old, and a task that finished 2 h ago
    queue = rabbitmq.queue()
    relay_env.setenv("RELAY_DESTINATIONS", f"{out_dir.as_uri()},amqp://guest:guest@127.0.0.1:{gate.port}/%2F"
                     f"?routing_key={queue}")  # fmt: skip
    runtime.reset()
    home = Home("file", out_dir)
    missed_three_hours(emulator, home, invoke)
    mark = home.read()
    # When the sweeper runs while the broker is down
    failed = invoke("sweeper", {})
    # Then both tasks failed at the queue, retryably, and the watermark stayed
    assert failed["complete"] is True and failed["failed"] == 2
    assert (failed["watermark_saved"], home.read()) == (False, mark) and failed["retryable_failures"] == 2
    # and once the broker is back, the next sweep covers the gap again and announces both tasks
    gate.open()
    summary = invoke("sweeper", {})
    assert summary["caught_up_from"] == mark.isoformat() and summary["watermark_saved"] is True
    announced = sorted(json.loads(body)["id"].partition(":")[0] for _props, body in rabbitmq.get_all(queue))
    assert announced == ["t-missed", "t-now"]


def test_a_watermark_that_could_not_be_read_for_an_outage_is_kept_for_the_next_sweep(
    emulator, relay_env, out_dir, invoke, aws, moto_server
):
    # Given the watermark in an S3 store, 3 h old, a task that finished 2 h ago, and S3 answering 503 to
    # every GET of the watermark object for now (more than boto3's 3 attempts)
    bucket = aws.bucket()
    relay_env.setenv("RELAY_DESTINATIONS", f"{out_dir.as_uri()},s3://{bucket}/templates/")
    runtime.reset()
    home = Home("s3", out_dir, aws=aws, bucket=bucket)
    missed_three_hours(emulator, home, invoke)
    mark = home.read()
    moto_server.outage("GET", home.where, times=10)
    # When the sweeper runs
    try:
        blind = invoke("sweeper", {})
    finally:
        moto_server.outage("GET", home.where, times=0)
    # Then it swept the lookback only (it could not know better), and did not overwrite the stored mark
    assert blind["complete"] is True and blind["window_seconds"] == 3600 and blind["caught_up_from"] is None
    assert (blind["watermark_saved"], home.read()) == (False, mark) and "t-missed" not in delivered(out_dir)
    assert "could not be read" in blind["watermark_not_saved"]
    # and the next sweep, with S3 back, catches up from it and delivers the task the blind one could not see
    summary = invoke("sweeper", {})
    assert summary["caught_up_from"] == mark.isoformat() and "t-missed" in delivered(out_dir)
