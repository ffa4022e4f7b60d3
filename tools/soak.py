"""Fault-injection soak: N tasks through the queue consumer, over real servers, with faults everywhere.

    python tools/soak.py --tasks 2000          (make soak; make test runs --tasks 200)

Real parts: the ROS emulator (its clock running, so pending tasks finish), moto's server (the tracking and
failure queues on SQS, the template bucket on S3), RabbitMQ (the announcement queue), and a Redis of the
soak's own with an append-only file (the delivery ledger, restarted mid-run). Worker processes poll the
tracking queue the way Lambda's SQS poller does and call the real queue_consumer handler.

Faults, all at once in the "faults" scenario:
- ROS: 5xx, throttling with and without x-acs-retry-after, garbled and truncated bodies, latency above the
  read timeout, connection resets;
- destinations: S3 answering 503 for a while, RabbitMQ closing every connection, Redis restarted;
- consumer: the same task sent twice at once, a batch processed twice, workers killed with SIGKILL mid-batch
  (their batch comes back after the visibility timeout).

Then it reconciles: every SUCCESS task has exactly one template object hashing to its template, every
finished task exactly one message per event id on the AMQP queue, every FAILURE reported, every unknown task
reported not_found, every stuck task timed out. It prints scenario, tasks, delivered, duplicates, lost,
retries, elapsed; any lost or duplicated task makes it exit 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tools"), str(ROOT / "tests" / "integration")]

KEY_ID, KEY_SECRET = "soak-key-id", "soak-key-secret"
VISIBILITY = 6
WORKERS = 3


@dataclass
class Expected:
    task_id: str
    kind: str  # success, failure, later (finishes after a while), stuck (never finishes), unknown
    template_sha: str | None = None


@dataclass
class Result:
    scenario: str
    tasks: int
    delivered: int = 0
    duplicates: int = 0
    explained: int = 0  # duplicates of events the relay logged as republished after an unconfirmed publish
    lost: int = 0
    retries: int = 0
    elapsed: float = 0.0
    problems: list[str] = field(default_factory=list)


# --- the servers ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DurableRedis:
    """A redis-server of the soak's own, appendonly + fsync always, so a restart keeps the ledger."""

    def __init__(self) -> None:
        self.port, self.dir = free_port(), tempfile.mkdtemp(prefix="soak-redis-")
        self.start()

    def start(self) -> None:
        subprocess.run(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir, "--daemonize", "yes",
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            check=True, capture_output=True,
        )  # fmt: skip
        _wait_port(self.port)

    def restart(self, pause: float = 1.0) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown"], capture_output=True, check=False)
        time.sleep(pause)
        self.start()

    def stop(self) -> None:
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"], capture_output=True, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


class S3Outage:
    """WSGI middleware in front of moto: while ``down``, every S3 request gets 503 SlowDown (SQS still works)."""

    def __init__(self, app):
        self.app, self.down = app, False

    def __call__(self, environ, start_response):
        observer = "soak-observer" in environ.get("HTTP_USER_AGENT", "")  # the soak's own reads see no outage
        if self.down and not observer and not environ.get("HTTP_X_AMZ_TARGET", "").startswith("AmazonSQS"):
            start_response("503 Slow Down", [("Content-Type", "application/xml")])
            return [b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"]
        return self.app(environ, start_response)


def _wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answers on 127.0.0.1:{port}")


def start_moto():
    from moto.moto_server import werkzeug_app
    from werkzeug.serving import make_server

    outage = S3Outage(werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app))
    server = make_server("127.0.0.1", 0, outage, threaded=True, request_handler=werkzeug_app.MotoRequestHandler)
    server.handle_error = lambda *_: None  # connections reset by killed workers: expected, not news
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, outage, f"http://127.0.0.1:{server.server_address[1]}"


# --- the tasks ------------------------------------------------------------------------------------------


def make_tasks(emulator, count: int, rng: random.Random, tag: str) -> list[Expected]:
    from aitask_relay.normalize import normalize

    kinds = rng.choices(["success", "failure", "later", "stuck", "unknown"], weights=[60, 10, 20, 5, 5], k=count)
    expected = []
    for i, kind in enumerate(kinds):
        task_id = f"t-{tag}-{i:05d}"
        size = rng.choice([200, 2_000, 20_000, 200_000])  # the largest exceed the AMQP limit: claim check
        result = f"# task {task_id}\nROSTemplateFormatVersion: '2015-09-01'\n" + "#" * size + "\nResources: {}\n"
        output = {"Result": result}
        if kind == "success":
            emulator.add_task({"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": output})
        elif kind == "failure":
            emulator.add_task({"TaskId": task_id, "Status": "FAILURE", "StatusReason": "quota"})
        elif kind == "later":
            finish = rng.uniform(2, 12)
            emulator.add_task(
                {"TaskId": task_id, "Timeline": [["RUNNING", 0], ["SUCCESS", finish]], "TaskOutput": output}
            )
        elif kind == "stuck":
            emulator.add_task({"TaskId": task_id, "Status": "RUNNING"})
        sha = None
        if kind in ("success", "later"):
            body = {"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": output}
            sha = normalize(body, task_id=task_id, observed_at="x").result.template_sha256
        expected.append(Expected(task_id, kind, sha))
    return expected


def ros_faults(emulator, expected: list[Expected], rng: random.Random) -> None:
    """Every fault class on a random fifth of the tasks, each for a few requests."""
    kinds = [
        {"Status": 503, "Code": "ServiceUnavailable"},
        {"Status": 500, "Code": "InternalError"},
        {"Status": 400, "Code": "Throttling.User"},
        {"Status": 400, "Code": "Throttling.User", "RetryAfterMs": 300},
        {"Body": "<html><body>502 Bad Gateway</body></html>", "Status": 200},
        {"Truncate": True},
        {"LatencyMs": 1500},  # above ROS_READ_TIMEOUT_MS
        {"Reset": True},
    ]
    for item in expected:
        if item.kind != "unknown" and rng.random() < 0.2:
            emulator.add_fault({"TaskId": item.task_id, "Times": rng.randint(1, 4), **rng.choice(kinds)})


# --- the workers ------------------------------------------------------------------------------------------


def worker(stats_path: str, double_every: int) -> None:
    """One Lambda-like SQS poller: receive, invoke queue_consumer, delete what did not fail."""
    import logging

    import boto3
    from servers import lambda_event_from

    from relay_local import LambdaContext, load_handler

    logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")  # the AMQP ambiguity notes
    handler = load_handler("queue_consumer")
    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    url = os.environ["RELAY_TRACKING_QUEUE"]
    batches = failures = 0
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=VISIBILITY,
            AttributeNames=["All"],
        ).get("Messages", [])  # fmt: skip
        if not messages:
            continue
        event = lambda_event_from(messages)
        answer = handler(event, LambdaContext(function_name="queue_consumer", timeout_ms=60_000))
        batches += 1
        if double_every and batches % double_every == 0:  # the same batch processed twice
            answer = handler(event, LambdaContext(function_name="queue_consumer", timeout_ms=60_000))
        failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
        failures += len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
            ]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        Path(stats_path).write_text(json.dumps({"batches": batches, "failures": failures}))


class Workers:
    def __init__(self, env: dict[str, str], stats_dir: Path, double_every: int) -> None:
        self.env, self.stats_dir, self.double_every = env, stats_dir, double_every
        self.procs: list[subprocess.Popen] = []
        self.started = 0

    def spawn(self) -> None:
        self.started += 1
        stats = self.stats_dir / f"worker-{self.started}.json"
        command = [sys.executable, __file__, "worker", "--stats", str(stats), "--double-every", str(self.double_every)]
        log = open(self.stats_dir / f"worker-{self.started}.log", "w")  # noqa: SIM115 - the process writes it
        self.procs.append(subprocess.Popen(command, env=self.env, stdout=subprocess.DEVNULL, stderr=log))

    def kill_one(self, rng: random.Random) -> None:
        alive = [p for p in self.procs if p.poll() is None]
        if alive:
            victim = rng.choice(alive)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            self.spawn()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def republished(self) -> set[str]:
        """Event ids the relay logged as sent again after a connection lost before the broker's confirm."""
        found = set()
        for log in self.stats_dir.glob("worker-*.log"):
            found |= set(re.findall(r"AMQP publish of event (\S+) unconfirmed", log.read_text(errors="replace")))
        return found

    def retries(self) -> int:
        return sum(json.loads(p.read_text())["failures"] for p in self.stats_dir.glob("worker-*.json"))


# --- a scenario -------------------------------------------------------------------------------------------


def run_scenario(name: str, count: int, faults: bool, seed: int, timeout: float) -> Result:

    rng = random.Random(seed)
    started = time.monotonic()
    result = Result(name, count)
    server, outage, endpoint = start_moto()
    redis = DurableRedis()
    try:
        return _run(name, count, faults, seed, timeout, rng, started, result, outage, endpoint, redis)
    finally:
        redis.stop()
        server.shutdown()


def _run(name, count, faults, seed, timeout, rng, started, result, outage, endpoint, redis) -> Result:
    import boto3
    import pika

    from ros_emulator import Emulator

    tag = f"{name[:4]}{seed}x{os.getpid()}"  # fresh names: nothing left by an earlier (crashed) run is counted
    with Emulator(access_keys={KEY_ID: KEY_SECRET}, speed=1.0) as emulator, tempfile.TemporaryDirectory() as tmp:
        expected = make_tasks(emulator, count, rng, tag)
        if faults:
            ros_faults(emulator, expected, rng)
        os.environ.update(AWS_ACCESS_KEY_ID="soak", AWS_SECRET_ACCESS_KEY="soak", AWS_DEFAULT_REGION="us-east-1")
        sqs = boto3.client("sqs", endpoint_url=endpoint)
        from botocore.config import Config

        s3 = boto3.client("s3", endpoint_url=endpoint, config=Config(user_agent_extra="soak-observer"))
        bucket = f"soak-{tag}".lower()
        s3.create_bucket(Bucket=bucket)
        tracking = sqs.create_queue(QueueName=f"soak-tracking-{tag}", Attributes={"VisibilityTimeout": str(VISIBILITY)})
        failures = sqs.create_queue(QueueName=f"soak-failures-{tag}")
        amqp_queue = f"soak-{tag}"
        connection = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
        connection.channel().queue_declare(amqp_queue, arguments={"x-expires": 3_600_000})
        connection.close()
        env = {
            **os.environ,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY_ID,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": KEY_SECRET,
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
            "ALIBABA_CLOUD_CLI_PROFILE_DISABLED": "true",
            "ROS_ENDPOINT": emulator.endpoint,
            "ROS_PROTOCOL": "http",
            "ROS_READ_TIMEOUT_MS": "1000",
            "ROS_MAX_ATTEMPTS": "3",
            "AWS_ENDPOINT_URL": endpoint,
            "RELAY_DESTINATIONS": f"s3://{bucket}/,amqp://guest:guest@127.0.0.1:5672/%2F?routing_key={amqp_queue}"
            "&max_message_bytes=65536&heartbeat=0",
            "RELAY_LEDGER": f"redis://127.0.0.1:{redis.port}/0",
            "RELAY_LEDGER_LEASE_SECONDS": "5",
            "RELAY_TRACKING_QUEUE": tracking["QueueUrl"],
            "RELAY_FAILURE_QUEUE": failures["QueueUrl"],
            "RELAY_TRACKING_FIRST_DELAY_SECONDS": "1",
            "RELAY_TRACKING_DEADLINE_SECONDS": "60",
            "POWERTOOLS_LOG_LEVEL": "CRITICAL",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "tools"), str(ROOT / "tests" / "integration")]),
        }
        workers = Workers(env, Path(tmp), double_every=7 if faults else 0)
        for _ in range(WORKERS):
            workers.spawn()
        feed(sqs, tracking["QueueUrl"], expected, rng, duplicate=faults)
        stop = threading.Event()
        chaos = threading.Thread(target=chaos_loop, args=(stop, workers, outage, redis, rng), daemon=True)
        if faults:
            chaos.start()
        try:
            settled = wait_until_settled(sqs, s3, bucket, tracking["QueueUrl"], failures["QueueUrl"], expected, timeout)
        finally:
            stop.set()
            if faults:
                chaos.join()
            outage.down = False
            workers.stop()
        result.retries = workers.retries()
        reconcile(result, expected, s3, bucket, settled, amqp_queue, workers.republished())
        if faults:
            done = ", ".join(f"{k} x{v}" for k, v in sorted(CHAOS.items()))
            result.problems.append(f"(chaos: {done}; ROS faults on a fifth of the tasks)")
    result.elapsed = time.monotonic() - started
    return result


def feed(sqs, url: str, expected: list[Expected], rng: random.Random, *, duplicate: bool) -> None:
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 58))  # stuck tasks time out soon
    bodies = []
    for item in expected:
        body = {"TaskId": item.task_id, "attempt": 0}
        if item.kind == "stuck":
            body["first_seen"] = past
        bodies.append(json.dumps(body))
        if duplicate and rng.random() < 0.1:  # the same task twice, consumed in parallel by different workers
            bodies.append(json.dumps(body))
    rng.shuffle(bodies)
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)


CHAOS: dict[str, int] = {}


def chaos_loop(stop: threading.Event, workers: Workers, outage: S3Outage, redis: DurableRedis, rng) -> None:
    actions = os.environ.get("SOAK_CHAOS", "kill,s3,rabbit,redis").split(",")
    step = 0
    while not stop.wait(2.5):
        action = actions[step % len(actions)] if step < len(actions) else rng.choice(actions)
        step += 1
        CHAOS[action] = CHAOS.get(action, 0) + 1
        if action == "kill":
            workers.kill_one(rng)
        elif action == "s3":
            outage.down = True
            stop.wait(rng.uniform(1, 3))
            outage.down = False
        elif action == "rabbit":
            subprocess.run(["rabbitmqctl", "close_all_connections", "soak"], capture_output=True, check=False)
        elif action == "redis":
            redis.restart(pause=rng.uniform(0.5, 1.5))


def wait_until_settled(sqs, s3, bucket, tracking_url, failures_url, expected, timeout) -> dict[str, set[str]]:
    """Poll until every task has its outcome and the tracking queue is empty; returns the reports by reason."""
    reports: dict[str, set[str]] = {}
    deadline = time.monotonic() + timeout
    need_store = {e.task_id for e in expected if e.kind in ("success", "failure", "later")}
    need_report = {e.task_id: ("timed_out" if e.kind == "stuck" else "not_found") for e in expected
                   if e.kind in ("stuck", "unknown")}  # fmt: skip
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=failures_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        ):
            report = json.loads(message["Body"])
            reports.setdefault(report["reason"], set()).add(report.get("TaskId"))
            sqs.delete_message(QueueUrl=failures_url, ReceiptHandle=message["ReceiptHandle"])
        stored = {key.split("/")[0] for key in _keys(s3, bucket) if key.endswith("/task.json")}
        reported = all(task in reports.get(reason, set()) for task, reason in need_report.items())
        attributes = sqs.get_queue_attributes(QueueUrl=tracking_url, AttributeNames=["All"])["Attributes"]
        counts = (
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
        in_flight = sum(int(attributes[a]) for a in counts)
        if need_store <= stored and reported and in_flight == 0:
            break
        time.sleep(1)
    return reports


def _keys(s3, bucket) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def reconcile(
    result: Result, expected: list[Expected], s3, bucket: str, reports, amqp_queue: str, republished=()
) -> None:
    import pika

    keys = set(_keys(s3, bucket))
    messages: dict[str, int] = {}
    refs: dict[str, str] = {}
    connection = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
    channel = connection.channel()
    while True:
        method, properties, body = channel.basic_get(amqp_queue, auto_ack=True)
        if method is None:
            break
        messages[properties.message_id] = messages.get(properties.message_id, 0) + 1
        data = json.loads(body)["data"]
        if "template_ref" in data:
            refs[data["task_id"]] = data["template_ref"]
    channel.queue_delete(amqp_queue)
    connection.close()
    for item in expected:
        if item.kind in ("success", "later"):
            key = f"{item.task_id}/template.yaml"
            ok = key in keys and f"{item.task_id}/task.json" in keys
            if ok:
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                ok = hashlib.sha256(body).hexdigest() == item.template_sha
                if not ok:
                    result.problems.append(f"{item.task_id}: stored template does not hash to the task's")
            if item.task_id in refs and refs[item.task_id] != f"s3://{bucket}/{key}":
                result.problems.append(f"{item.task_id}: template_ref {refs[item.task_id]} is not the stored object")
            count = messages.get(f"{item.task_id}:SUCCESS", 0)
        elif item.kind == "failure":
            ok = f"{item.task_id}/task.json" in keys
            count = messages.get(f"{item.task_id}:FAILURE", 0)
        else:
            reason = "timed_out" if item.kind == "stuck" else "not_found"
            ok, count = item.task_id in reports.get(reason, set()), 1
        if not ok or count == 0:
            result.lost += 1
            result.problems.append(f"lost: {item.task_id} ({item.kind}, stored={ok}, messages={count})")
        else:
            result.delivered += 1
        if count > 1:
            result.duplicates += count - 1
            status = "SUCCESS" if item.kind in ("success", "later") else "FAILURE"
            if f"{item.task_id}:{status}" in republished:
                result.explained += count - 1
                result.problems.append(f"duplicate, logged by the relay as republished: {item.task_id}")
            else:
                result.problems.append(f"duplicate: {item.task_id} ({count} messages)")


# --- the table --------------------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    lines = [
        "| scenario | tasks | delivered | duplicates | lost | retries | elapsed |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cells = [r.scenario, r.tasks, r.delivered, r.duplicates, r.lost, r.retries, f"{r.elapsed:.1f} s"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", default="run", choices=["run", "worker"])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--scenarios", default="baseline,faults")
    parser.add_argument("--stats")
    parser.add_argument("--double-every", type=int, default=0)
    args = parser.parse_args(argv)
    if args.mode == "worker":
        worker(args.stats, args.double_every)
        return 0
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    results = []
    for name in args.scenarios.split(","):
        results.append(run_scenario(name, args.tasks, name == "faults", args.seed, args.timeout))
        for problem in results[-1].problems[:20]:
            print(f"  {name}: {problem}", file=sys.stderr)
    print(table(results))
    for result in results:
        for note in result.problems:
            if note.startswith("(chaos"):
                print(f"{result.scenario}: {note[1:-1]}")
        if result.duplicates:
            print(
                f"{result.scenario}: {result.explained} of {result.duplicates} duplicates were logged by the relay as "
                "republished after an unconfirmed publish (a lost connection); the others are unexplained"
            )
    return 1 if any(r.lost or r.duplicates > r.explained for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
