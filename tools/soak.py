"""Fault-injection soak: N tasks through the queue consumer, over real servers, with faults everywhere.

    python tools/soak.py --tasks 2000          (make soak; make test runs --tasks 200)

Real parts: the ROS emulator (its clock running, so pending tasks finish), moto's server (the tracking and
failure queues and two output queues on SQS, the template bucket on S3), RabbitMQ (the announcement queue),
and a Redis of the soak's own with an append-only file (the delivery ledger, restarted mid-run). Worker
processes poll the tracking queue the way Lambda's SQS poller does and call the real queue_consumer handler.
The front in front of moto makes SendMessage keep SQS's size and character rules (see MotoFront).

The mix, in every scenario:
- tasks finished, failed, finishing after 2-12 s, stuck and unknown; templates of 200 B to 400 KB;
- outputs: S3, AMQP (64 KiB limit) and an SQS queue at MaximumMessageSize=262144, so the largest templates
  go by claim check to the stored object;
- tasks whose GetAITask answer holds lone UTF-16 surrogates ("\\ud800" escapes) in StatusReason and in
  other TaskOutput keys and nested values: task.json and the messages must be valid UTF-8, repaired (U+FFFD);
- multi-task tracking records: EventBridge events whose detail.TaskIds names a pending task, a throttled one,
  an unknown one and sometimes a failed one (the record is retried: its successor and reports are not);
- a second deployment without a ledger (S3 under swept/ and a FIFO queue; its own emulator holding 30% of
  the tasks, since each sweep fetches every one) whose sweeper runs again and again over the same window
  while its consumer and the main consumers run, the FIFO deduplication window expiring between sweeps as
  it does 10 minutes apart (see sweep_loop);
- answers as ROS documents them (issue 14; CASES, 3% of the tasks each, at least 2): success bodies carrying
  Code "OK" or "200" (with Success "true", HttpStatusCode 200), TaskOutput as JSON text, Terraform templates
  in ROS's format (Transform, and a Workspace with a module in a folder), and tasks the relay created (their
  tracking message has created_at) that GetAITask answers 404 for 10-20 s; and two sweeps of the swept
  deployment whose ListAITasks answers an error in an HTTP 200 body (LISTING_FAULTS: Forbidden with
  HttpStatusCode 403 on the first page, a listing without Tasks on a later one).

The "mns" scenario is the baseline with one more output, a Simple Message Queue (MNS) queue of the devkit's
stand-in (relay_devkit.mns: MNS's REST API over real HTTP, its signature checked, 64 KB of base64 per message, so
the 200 KB and 400 KB templates go by claim check), and MNS's faults alone, one every 2.5 s: the next 1-4 requests
answered 500 InternalError, 503 ServiceUnavailable or 400 QpsLimitExceeded, or the next 1-2 SendMessage requests
stored but their connection closed unanswered. A lost answer may repeat the event: the SDK sends the request again
itself, and when that one is lost too the relay logs "MNS send of event <id> unanswered" and retries; a duplicate
is explained by that line or by an answer the stand-in dropped for a message of that event.

Faults, all at once in the "faults" scenario:
- ROS: 5xx, throttling with and without x-acs-retry-after, garbled and truncated bodies, latency above the
  read timeout, connection resets;
- destinations: S3 answering 503 for a while, RabbitMQ closing every connection, Redis restarted;
- consumer: the same task sent twice at once, a batch processed twice, workers killed with SIGKILL mid-batch
  (their batch comes back after the visibility timeout).

Then it reconciles, per task: each store (S3, S3 swept/) has exactly one template object hashing to the task's
and a task.json that is valid UTF-8 JSON; each output queue (AMQP, SQS 256 KiB, SQS FIFO swept) exactly one
message per event id, valid UTF-8 JSON, whose claim check resolves to the stored object with the sha256 of
data.template_sha256; a Terraform task's workspace files each once in each store with their sha256, listed
in task.json and in every message whose record was not claim-checked; every unknown task reported not_found
and every stuck task timed_out (exactly once without faults), no created task not_found; every sweep given a
listing error failed rather than called itself complete (else lost: a watermark would pass its window). A
row per case counts its tasks lost anywhere. It prints scenario, tasks, delivered, duplicates, lost, retries,
elapsed, then the same per check. Any problem it reports makes it exit 1 (failures): a lost task (or sweep), a
duplicate the relay did not log as possible, a wrong message or template_ref, a repeated report, a failed
sweep, a check that did not check each of its tasks.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
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

from relay_devkit.emulation import start_emulator
from relay_devkit.mns import MnsStandIn
from relay_devkit.servers import closed_port

KEY_ID, KEY_SECRET = "soak-key-id", "soak-key-secret"
VISIBILITY = 6
# A baseline batch stays invisible this long while its handler runs, as a deployment's visibility timeout (6x
# the function's) keeps it: a loaded machine must not make SQS deliver a batch again mid-invocation.
HELD = 120
WORKERS = 3


@dataclass
class Expected:
    task_id: str
    kind: str  # success, failure, later (finishes after a while), stuck (never finishes), unknown
    template_sha: str | None = None
    surrogate: bool = False  # GetAITask answers lone UTF-16 surrogates outside Result
    group: int | None = None  # named by a multi-task EventBridge record instead of a message of its own
    swept: bool = False  # also a task of the swept deployment (its own emulator, S3 prefix and FIFO queue)
    case: str | None = None  # one of CASES: how ROS's answer differs from the plain one
    files: tuple[dict, ...] | None = None  # a Terraform workspace's files, {path, sha256, bytes}, in ROS's order
    late: dict | None = None  # the emulator task to add right before the tracking messages go (see create_late)

    @property
    def event_id(self) -> str | None:
        status = {"success": "SUCCESS", "later": "SUCCESS", "failure": "FAILURE"}.get(self.kind)
        return f"{self.task_id}:{status}" if status else None


@dataclass
class Check:
    """One thing reconciled per task (a store, an output queue, the failure reports)."""

    name: str
    expected: int = 0
    ok: int = 0
    lost: int = 0
    duplicates: int = 0
    explained: int = 0


@dataclass
class Result:
    scenario: str
    tasks: int
    delivered: int = 0
    duplicates: int = 0
    explained: int = 0  # duplicates the relay logged as possible (see EXPLAINED)
    lost: int = 0
    retries: int = 0
    elapsed: float = 0.0
    problems: list[str] = field(default_factory=list)  # each fails the run (see failures)
    notes: list[str] = field(default_factory=list)  # reported, not failures: the chaos done, explained repeats
    checks: dict[str, Check] = field(default_factory=dict)
    sweeps: list[dict] = field(default_factory=list)

    def check(self, name: str) -> Check:
        return self.checks.setdefault(name, Check(name))


# --- the servers ------------------------------------------------------------------------------------------


class DurableRedis:
    """A redis-server of the soak's own, appendonly + fsync always, so a restart keeps the ledger."""

    def __init__(self) -> None:
        self.port, self.dir = closed_port(), tempfile.mkdtemp(prefix="soak-redis-")
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


class MotoFront:
    """WSGI middleware in front of moto. While ``down``, every S3 request gets 503 SlowDown (SQS still works).

    It also makes SendMessage keep two rules of SQS that moto's server does not (moto 5 compares the body's
    length in characters with MaximumMessageSize, leaving the attributes out, and accepts any character):
    - a message larger than the queue's MaximumMessageSize is refused with InvalidParameterValue, where the
      size is the body's UTF-8 bytes plus every attribute's name, data type and value ("The limit of how many
      bytes a message can contain before Amazon SQS rejects it", 1,024 to 1,048,576 bytes;
      https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html; the
      attributes count: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html
      "All parts of the message attribute, including Name, Type, and Value, are part of the message size
      restriction");
    - a body holding a character outside #x9 #xA #xD #x20-#xD7FF #xE000-#xFFFD #x10000-#x10FFFF (a lone
      surrogate among them) is refused with InvalidMessageContents (same SendMessage page).
    SendMessageBatch is left to moto (the relay announces with SendMessage; SendMessageBatch carries only its
    own small tracking messages).
    """

    def __init__(self, app):
        self.app, self.down = app, False

    def __call__(self, environ, start_response):
        observer = "soak-observer" in environ.get("HTTP_USER_AGENT", "")  # the soak's own reads see no outage
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if self.down and not observer and not target.startswith("AmazonSQS"):
            start_response("503 Slow Down", [("Content-Type", "application/xml")])
            return [b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"]
        if target == "AmazonSQS.SendMessage":
            raw = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(raw)
            refusal = sqs_refusal(json.loads(raw))
            if refusal is not None:
                code, message = refusal
                body = json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message}).encode()
                start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.0"),
                                                   ("x-amzn-query-error", f"{code};Sender"),
                                                   ("Content-Length", str(len(body)))])  # fmt: skip
                return [body]
        return self.app(environ, start_response)


SQS_CHARACTERS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def sqs_queue(name: str):
    """The moto queue object of this name (the soak's moto runs in this process), or None."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import sqs_backends

    return sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].queues.get(name)


def sqs_refusal(request: dict) -> tuple[str, str] | None:
    """(code, message) when SQS would refuse this SendMessage request, else None."""
    body = request.get("MessageBody") or ""
    attributes = request.get("MessageAttributes") or {}
    texts = [body] + [v.get("StringValue") or "" for v in attributes.values()]
    if any(SQS_CHARACTERS.search(text) for text in texts):
        allowed = "#x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF"
        return "InvalidMessageContents", f"Invalid characters found. Valid unicode characters are {allowed}"
    queue = sqs_queue(str(request.get("QueueUrl", "")).rstrip("/").rsplit("/", 1)[-1])
    if queue is None:
        return None
    size = len(body.encode("utf-8", "surrogatepass"))
    for key, value in attributes.items():
        data = value.get("StringValue") or value.get("BinaryValue") or ""
        size += len(key.encode()) + len(value.get("DataType", "").encode()) + len(data.encode("utf-8", "surrogatepass"))
    if size > int(queue.maximum_message_size):
        limit = queue.maximum_message_size
        return (
            "InvalidParameterValue",
            f"One or more parameters are invalid. Reason: Message must be shorter than {limit} bytes.",
        )
    return None


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

    outage = MotoFront(werkzeug_app.DomainDispatcherApplication(werkzeug_app.create_backend_app))
    server = make_server("127.0.0.1", 0, outage, threaded=True, request_handler=werkzeug_app.MotoRequestHandler)
    server.handle_error = lambda *_: None  # connections reset by killed workers: expected, not news
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, outage, f"http://127.0.0.1:{server.server_address[1]}"


# --- the tasks ------------------------------------------------------------------------------------------

# 200 KB templates plus the envelope exceed the 64 KiB AMQP limit, 400 KB ones also the 256 KiB SQS queue's
# MaximumMessageSize: both go by claim check to the stored template.
SIZES, SIZE_WEIGHTS = [200, 2_000, 20_000, 200_000, 400_000], [3, 3, 2, 1, 1]


SWEPT_SHARE = 0.3  # of the tasks, also in the swept deployment's account: a sweep fetches every one, each time

# Issue 14's cases: answers as ROS documents them that our own emulator did not send. Each takes CASE_SHARE of
# the tasks (at least 2), among the finished ones ("success", "later"):
# - CODE: a GetAITask body carrying Code "OK" or "200" beside Success "true" and HttpStatusCode 200 (GetAITask's
#   reference lists Code among a success answer's fields:
#   https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-getaitask); not an error;
# - TEXT: TaskOutput sent as JSON text (a string holding the object), read as the object;
# - TERRAFORM: Result a Terraform template in ROS's format, Transform and a Workspace of files ("Structure of
#   Terraform templates", https://www.alibabacloud.com/help/en/ros/user-guide/structure-of-terraform-templates),
#   stored as template.json plus each file under <task_id>/workspace/<path>, listed in the record's workspace;
# - LAG (main deployment only; finished at once): a task the relay created, by its tracking message's created_at,
#   that GetAITask answers 404 TaskNotFound for 10-20 s after the message goes (ROS documents no read-after-create
#   guarantee): delivered once visible, never reported not_found (RELAY_CREATE_GRACE_SECONDS).
CODE, TEXT, TERRAFORM, LAG = "code in body", "output as text", "terraform workspace", "not found after create"
CASES = (CODE, TEXT, TERRAFORM, LAG)
CASE_SHARE = 0.03


def make_tasks(main, swept_emulator, count: int, rng: random.Random, tag: str) -> list[Expected]:
    from aitask_relay.core.normalize import normalize

    kinds = rng.choices(["success", "failure", "later", "stuck", "unknown"], weights=[60, 10, 20, 5, 5], k=count)
    sizes = rng.choices(SIZES, weights=SIZE_WEIGHTS, k=count)
    swept = [rng.random() < SWEPT_SHARE for _ in range(count)]
    cases = pick_cases(kinds, swept, rng)
    expected = []
    for i, kind in enumerate(kinds):
        task_id, size, case = f"t-{tag}-{i:05d}", sizes[i], cases.get(i)
        files = None
        if case == TERRAFORM:
            result, files = terraform_template(task_id, size)
        else:
            result = f"# task {task_id}\nROSTemplateFormatVersion: '2015-09-01'\n" + "#" * size + "\nResources: {}\n"
        output: dict = {"Result": result}
        # TEXT: the emulator sends a string TaskOutput as it is, here the object's JSON text
        sent: dict | str = json.dumps(output) if case == TEXT else output
        emulator = Both([main, swept_emulator] if swept[i] else [main])
        spec: dict = {"TaskId": task_id}
        if case == CODE:  # as the GetAITask reference lists them beside the task's fields
            spec["ExtraFields"] = {"Code": rng.choice(["OK", "200"]), "Success": "true", "HttpStatusCode": 200}
        late = None
        if kind == "success" and case == LAG:
            late = {**spec, "Status": "SUCCESS", "TaskOutput": sent, "VisibleAfterSeconds": rng.uniform(10, 20)}
        elif kind == "success":
            emulator.add_task({**spec, "Status": "SUCCESS", "TaskOutput": sent})
        elif kind == "failure":
            emulator.add_task({**spec, "Status": "FAILURE", "StatusReason": "quota"})
        elif kind == "later":
            finish = rng.uniform(2, 12)
            emulator.add_task({**spec, "Timeline": [["RUNNING", 0], ["SUCCESS", finish]], "TaskOutput": sent})
        elif kind == "stuck":
            emulator.add_task({**spec, "Status": "RUNNING"})
        surrogate = case is None and kind in ("success", "failure") and rng.random() < 0.08
        if surrogate:
            emulator.add_fault(surrogate_answer(task_id, kind, output))
        sha = None
        if kind in ("success", "later"):
            # From the plain object, without the case's twist: the relay must give every case the same template.
            body = {"TaskId": task_id, "Status": "SUCCESS", "TaskOutput": output}
            sha = normalize(body, task_id=task_id, observed_at="x").result.template_sha256
        expected.append(Expected(task_id, kind, sha, surrogate, swept=swept[i], case=case, files=files, late=late))
    return expected


def pick_cases(kinds: list[str], swept: list[bool], rng: random.Random) -> dict[int, str]:
    """The task numbers given each of CASES: CASE_SHARE of the tasks (at least 2) each, among the finished
    ones (LAG: among those finished from the start and outside the swept deployment)."""
    picked: dict[int, str] = {}
    for case in CASES:
        eligible = [
            i for i, kind in enumerate(kinds)
            if i not in picked and (kind == "success" and not swept[i] if case == LAG else kind in ("success", "later"))
        ]  # fmt: skip
        for i in rng.sample(eligible, min(len(eligible), max(2, round(len(kinds) * CASE_SHARE)))):
            picked[i] = case
    return picked


def terraform_template(task_id: str, size: int) -> tuple[dict, tuple[dict, ...]]:
    """A Terraform template in ROS's format (main.tf of about ``size`` bytes, a module in a folder) and the files
    the stores must hold, {path, sha256, bytes}, computed here rather than by the relay."""
    workspace = {
        "main.tf": f"# task {task_id}\n" + "#" * size + '\nmodule "vpc" {\n  source = "./modules/vpc"\n}\n',
        "variables.tf": 'variable "name" {\n  type    = string\n  default = "soak"\n}\n',
        "modules/vpc/main.tf": f'resource "alicloud_vpc" "v" {{\n  vpc_name = "{task_id}"\n}}\n',
    }
    template = {"ROSTemplateFormatVersion": "2015-09-01", "Transform": "Aliyun::Terraform-v1.5", "Workspace": workspace}
    files = tuple(
        {"path": path, "sha256": hashlib.sha256(text.encode()).hexdigest(), "bytes": len(text.encode())}
        for path, text in workspace.items()
    )
    return template, files


def create_late(emulator, expected: list[Expected]) -> None:
    """Add the LAG tasks now, just before their tracking messages go: invisible for their first 10-20 s."""
    for item in expected:
        if item.late is not None:
            emulator.add_task(item.late)


class Both:
    """Adds a task (or a fault) to each of the emulators given."""

    def __init__(self, emulators) -> None:
        self.emulators = emulators

    def add_task(self, spec: dict) -> None:
        for emulator in self.emulators:
            emulator.add_task(spec)

    def add_fault(self, spec: dict) -> None:
        for emulator in self.emulators:
            emulator.add_fault(dict(spec))


def surrogate_answer(task_id: str, kind: str, output: dict) -> dict:
    """An emulator fault that answers GetAITask (every time) with lone UTF-16 surrogates outside Result.

    ROS's JSON may carry "\\ud800" escapes; json.dumps (ensure_ascii) writes the Python strings below as
    exactly those escapes. The listing (ListAITasks) stays clean, as the emulator's own task is."""
    body: dict = {"RequestId": f"soak-{task_id}", "TaskId": task_id, "TaskType": "GenerateTemplate"}
    if kind == "success":
        body.update(
            Status="SUCCESS",
            StatusReason="done \ud800 (a lone high surrogate)",
            TaskOutput={**output, "Notes": "a lone low \udc00", "Meta": {"steps": ["ok", "half a pair \ud83d"]}},
        )
    else:
        body.update(
            Status="FAILURE", StatusReason="quota \ud800 exceeded", TaskOutput={"Error": {"Detail": ["\udfff"]}}
        )
    return {"Action": "GetAITask", "TaskId": task_id, "Times": None, "Json": body}


def make_groups(emulator, expected: list[Expected], rng: random.Random) -> list[list[Expected]]:
    """Multi-task tracking records: each names a pending task (it finishes after 2-12 s), a finished one whose
    GetAITask is throttled for longer than one delivery retries (so the record itself is retried), an unknown
    one (a permanent failure, to be reported once) and sometimes a failed one. A record must commit the
    pending task's successor and the unknown task's report once, not once per delivery."""
    pools = {  # (not LAG: an EventBridge record carries no created_at)
        k: [e for e in expected if e.kind == k and not e.surrogate and e.case != LAG]
        for k in ("later", "success", "unknown", "failure")
    }
    groups: list[list[Expected]] = []
    for number in range(max(2, len(expected) // 40)):
        # The throttled task comes last: the consumer settles a record's tasks in order, so the unknown task's
        # report and the pending task's successor are made before the throttled one fails the record.
        kinds = ["unknown", "later"] + (["failure"] if rng.random() < 0.5 else []) + ["success"]
        members = [pools[k].pop(rng.randrange(len(pools[k]))) for k in kinds if pools[k]]
        if len(members) < 2:
            break
        for member in members:
            member.group = number
            if member.kind == "success":  # 8 throttled answers: ROS_MAX_ATTEMPTS (3) a delivery, so 3 deliveries
                emulator.add_fault({"Action": "GetAITask", "TaskId": member.task_id, "Times": 8, "Status": 400,
                                    "Code": "Throttling.User"})  # fmt: skip
        groups.append(members)
    return groups


def ros_faults(main, swept_emulator, expected: list[Expected], rng: random.Random) -> None:
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
    for item in expected:  # (a surrogate task's answer is itself a fault that always matches first)
        # (not LAG: a fault answering its first looks would hide the 404 the case is about)
        if item.kind != "unknown" and not item.surrogate and item.case != LAG and rng.random() < 0.2:
            emulator = Both([main, swept_emulator] if item.swept else [main])
            emulator.add_fault({"TaskId": item.task_id, "Times": rng.randint(1, 4), **rng.choice(kinds)})


# --- the workers ------------------------------------------------------------------------------------------


def worker(stats_path: str, double_every: int, hold: bool = False) -> None:
    """One Lambda-like SQS poller: receive, invoke queue_consumer, delete what did not fail.

    With ``hold`` (the baseline) the batch's visibility is extended while the handler runs, as a deployment
    whose queue visibility timeout is at least six times the function's timeout never sees a record again
    while its invocation runs ("set the source queue's visibility timeout to at least six times the
    configuration timeout on your function", https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
    The soak's short VISIBILITY would otherwise redeliver a batch that a loaded machine takes longer than 6 s
    over, and count that SQS redelivery against the relay. A failed record still comes back after VISIBILITY.
    Without ``hold`` (the faults scenario) such redeliveries stay, as one more fault."""
    import logging

    import boto3

    from relay_devkit.events import lambda_event_from
    from relay_devkit.runner import LambdaContext, load_handler

    logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")  # the AMQP ambiguity notes
    # "publishing event X to Q" / "event X to Q recorded": where a killed worker stopped (see killed_between)
    logging.getLogger("aitask_relay.queue").setLevel(logging.DEBUG)
    handler = load_handler("queue_consumer")
    sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    url = os.environ["RELAY_TRACKING_QUEUE"]
    batches = failures = 0
    Path(stats_path).write_text(json.dumps({"batches": 0, "failures": 0}))  # ready: see Workers.wait_ready
    while True:
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=HELD if hold else VISIBILITY,
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
        if hold and failed:  # a failed record comes back after VISIBILITY, as in the faults scenario
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": VISIBILITY}
                       for i, m in enumerate(messages) if m["MessageId"] in failed]  # fmt: skip
            with contextlib.suppress(Exception):  # it comes back after HELD instead
                sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
            ]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        Path(stats_path).write_text(json.dumps({"batches": batches, "failures": failures}))


def sweep_once() -> None:
    """One sweeper invocation (a process of its own, as a scheduled Lambda may be): prints its summary."""
    from relay_devkit.runner import LambdaContext, load_handler

    handler = load_handler("sweeper")
    summary = handler({}, LambdaContext(function_name="sweeper", timeout_ms=300_000))
    print(json.dumps(summary))


class Workers:
    def __init__(self, env: dict[str, str], stats_dir: Path, double_every: int, hold: bool = False) -> None:
        self.env, self.stats_dir, self.double_every, self.hold = env, stats_dir, double_every, hold
        self.procs: list[subprocess.Popen] = []
        self.started = 0
        self.log_of: dict[int, Path] = {}
        self.killed: list[Path] = []

    def spawn(self) -> None:
        self.started += 1
        stats = self.stats_dir / f"worker-{self.started}.json"
        command = [sys.executable, __file__, "worker", "--stats", str(stats), "--double-every", str(self.double_every)]
        command += ["--hold"] if self.hold else []
        path = self.stats_dir / f"worker-{self.started}.log"
        log = open(path, "w")  # noqa: SIM115 - the process writes it
        self.procs.append(subprocess.Popen(command, env=self.env, stdout=subprocess.DEVNULL, stderr=log))
        self.log_of[self.procs[-1].pid] = path

    def wait_ready(self, timeout: float = 60) -> None:
        """Until every worker polls (its stats file exists): a LAG task's 10-20 s of invisibility must meet the
        first GetAITask, not pass while the workers still import boto3 and the relay."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(list(self.stats_dir.glob("worker-*.json"))) < len(self.procs):
            time.sleep(0.2)

    def kill_one(self, rng: random.Random) -> None:
        alive = [p for p in self.procs if p.poll() is None]
        if alive:
            victim = rng.choice(alive)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            self.killed.append(self.log_of[victim.pid])
            self.spawn()

    def killed_between(self) -> str:
        """Explanation lines for the events a SIGKILLed worker had published but not yet recorded (ledger entry
        or marker): the one duplicate window no record can close, documented in docs/reliability.md."""
        lines = []
        for path in self.killed:
            pending: dict[tuple[str, str], None] = {}
            for line in path.read_text(errors="replace").splitlines():
                if (found := PUBLISHING.search(line)) is not None:
                    pending[found.groups()] = None
                elif (found := RECORDED.search(line)) is not None:
                    pending.pop(found.groups(), None)
            lines += [f"killed after publishing: event {event} to {queue} unrecorded" for event, queue in pending]
        return "\n".join(lines)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in self.stats_dir.glob("worker-*.log"))

    def retries(self) -> int:
        return sum(json.loads(p.read_text())["failures"] for p in self.stats_dir.glob("worker-*.json"))


# Duplicates the relay itself logs as possible, by output queue kind: an AMQP publish whose confirm was lost
# with the connection (sent again: not sending could lose it), and a queue publish whose announcement record
# (a marker in a store, when there is no ledger) could not be written, so a later sweep may announce it again.
EXPLAINED_AMQP = re.compile(r"AMQP publish of event (\S+) unconfirmed")
# The message went out, but its record (ledger entry or marker) was not made: logged by the relay, or, for a
# SIGKILLed worker, found by killed_between.
EXPLAINED_UNRECORDED = re.compile(r"event (\S+) (?:published to|to) (\S+) (?:but not recorded in|unrecorded)")
# A record retried after its reports went out, or a record SQS delivered again (its report may have gone out on the
# earlier delivery: an invocation slower than the visibility timeout, on a loaded machine).
EXPLAINED_REPORTS = re.compile(r"reports for (\S+) sent(?:, but record \S+ is retried| from record \S+, received)")
# An MNS SendMessage whose answer was lost twice (the SDK's own resend too): the relay retries it.
EXPLAINED_MNS = re.compile(r"MNS send of event (\S+) unanswered")
PUBLISHING = re.compile(r"publishing event (\S+) to (\S+)")
RECORDED = re.compile(r"event (\S+) to (\S+) recorded")


def explained_by(logs: str) -> dict[str, set[str]]:
    """The event ids whose repeat the logs explain, by output queue kind (amqp, sqs)."""
    explained: dict[str, set[str]] = {
        "amqp": set(EXPLAINED_AMQP.findall(logs)),
        "sqs": set(),
        "reports": set(),
        "mns": set(EXPLAINED_MNS.findall(logs)),
    }
    for tasks in EXPLAINED_REPORTS.findall(logs):  # a record retried after its reports went out
        explained["reports"].update(tasks.split(","))
    for event, queue in EXPLAINED_UNRECORDED.findall(logs):
        explained.setdefault(queue.partition("://")[0], set()).add(event)
    return explained


# --- a scenario -------------------------------------------------------------------------------------------

SWEEPS = 4  # at least this many sweeper runs over the same window, the last after every "later" task finished
SWEEP_INTERVAL_MS = 600_000  # the template's SweepSchedule default, rate(10 minutes)


@dataclass
class Soak:
    """One scenario of the soak: its settings, the servers it runs on, and what it counts.

    ``run`` starts the servers (moto behind its front, a Redis of the soak's own), runs the scenario over them
    and stops them; ``result`` is what reconcile found and ``chaos`` the faults the chaos thread injected."""

    name: str
    count: int
    faults: bool  # every fault at once (the "faults" scenario), or none (the baseline)
    seed: int
    timeout: float
    mns: bool = False  # the "mns" scenario: an MNS output queue and MNS's faults alone (see the module's docstring)
    rng: random.Random = field(init=False)
    started: float = field(init=False)
    result: Result = field(init=False)
    chaos: dict[str, int] = field(default_factory=dict)  # the chaos done, by action ("kill", "s3", ...)
    # The servers, while run() runs: moto's front (its S3 outage switch), moto's endpoint, the Redis, the MNS stand-in.
    front: MotoFront = field(init=False)
    endpoint: str = field(init=False)
    redis: DurableRedis = field(init=False)
    standin: MnsStandIn | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.started = time.monotonic()
        self.result = Result(self.name, self.count)

    def run(self) -> Result:
        """Start the servers, run the scenario over them, stop them: the scenario's Result."""
        server, self.front, self.endpoint = start_moto()
        self.redis = DurableRedis()
        if self.mns:
            self.standin = MnsStandIn({KEY_ID: (KEY_SECRET, None)}).start()
        try:
            return self._scenario()
        finally:
            if self.standin is not None:
                self.standin.stop()
            self.redis.stop()
            server.shutdown()

    def _scenario(self) -> Result:
        import boto3
        import pika

        tag = f"{self.name[:4]}{self.seed}x{os.getpid()}"  # fresh names: nothing of an earlier (crashed) run counts
        with (
            start_emulator(key=(KEY_ID, KEY_SECRET), speed=1.0) as ros,
            start_emulator(key=(KEY_ID, KEY_SECRET), speed=1.0) as swept_ros,
            tempfile.TemporaryDirectory() as tmp,
        ):
            emulator, swept_emulator = ros.emulator, swept_ros.emulator
            expected = make_tasks(emulator, swept_emulator, self.count, self.rng, tag)
            created = time.monotonic()
            groups = make_groups(emulator, expected, self.rng)
            if self.faults:
                ros_faults(emulator, swept_emulator, expected, self.rng)
            os.environ.update(AWS_ACCESS_KEY_ID="soak", AWS_SECRET_ACCESS_KEY="soak", AWS_DEFAULT_REGION="us-east-1")
            sqs = boto3.client("sqs", endpoint_url=self.endpoint)
            from botocore.config import Config

            s3 = boto3.client("s3", endpoint_url=self.endpoint, config=Config(user_agent_extra="soak-observer"))
            bucket = f"soak-{tag}".lower()
            s3.create_bucket(Bucket=bucket)
            visibility = {"VisibilityTimeout": str(VISIBILITY)}
            tracking = sqs.create_queue(QueueName=f"soak-tracking-{tag}", Attributes=visibility)
            failures = sqs.create_queue(QueueName=f"soak-failures-{tag}")
            # The SQS output queue at 256 KiB, the default of queues created before August 2025.
            small = f"soak-out-{tag}"
            sqs.create_queue(QueueName=small, Attributes={"MaximumMessageSize": "262144"})
            # The swept deployment: the same tasks, swept again and again, to S3 and a FIFO queue, without a ledger.
            fifo = f"soak-swept-{tag}.fifo"
            sqs.create_queue(QueueName=fifo, Attributes={"FifoQueue": "true"})
            swept_tracking = sqs.create_queue(QueueName=f"soak-swept-tracking-{tag}", Attributes=visibility)
            swept_failures = sqs.create_queue(QueueName=f"soak-swept-failures-{tag}")
            amqp_queue = f"soak-{tag}"
            mns_queue = f"soak-out-{tag}"
            extra = ""
            if self.standin is not None:  # MNS queue names take letters, digits and "-": the tag is such
                self.standin.create_queue(mns_queue)
                extra = f",{self.standin.destination(mns_queue)}"
            connection = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
            connection.channel().queue_declare(amqp_queue, arguments={"x-expires": 3_600_000})
            connection.close()
            env = {
                **os.environ,
                **ros.environment(
                    f"s3://{bucket}/,amqp://guest:guest@127.0.0.1:5672/%2F?routing_key={amqp_queue}"
                    f"&max_message_bytes=65536&heartbeat=0,sqs://{small}{extra}"
                ),
                "ROS_READ_TIMEOUT_MS": "1000",
                "ROS_MAX_ATTEMPTS": "3",
                "AWS_ENDPOINT_URL": self.endpoint,
                "RELAY_LEDGER": f"redis://127.0.0.1:{self.redis.port}/0",
                # Longer than a publish can take on this loaded machine (boto3: 3 attempts of 5 + 10 s at worst): an
                # in-progress entry that expires while its publish still runs lets a second worker publish again.
                "RELAY_LEDGER_LEASE_SECONDS": "30",
                "RELAY_TRACKING_QUEUE": tracking["QueueUrl"],
                "RELAY_FAILURE_QUEUE": failures["QueueUrl"],
                "RELAY_TRACKING_FIRST_DELAY_SECONDS": "1",
                "RELAY_TRACKING_DEADLINE_SECONDS": "60",
                # A LAG task answers 404 for its first 10-20 s; the grace covers that with room for the faults' delays.
                "RELAY_CREATE_GRACE_SECONDS": "60",
                "POWERTOOLS_LOG_LEVEL": "CRITICAL",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_TRACE_DISABLED": "true",
            }
            swept_env = {key: value for key, value in env.items() if key != "RELAY_LEDGER"}
            swept_env.update(
                swept_ros.environment(f"s3://{bucket}/swept/,sqs://{fifo}"),
                RELAY_TRACKING_QUEUE=swept_tracking["QueueUrl"],
                RELAY_FAILURE_QUEUE=swept_failures["QueueUrl"],
                # Pages of 20 (50 by default): the listing has several, so a listing error can come on a later page.
                RELAY_SWEEP_PAGE_SIZE="20",
            )
            workers = Workers(env, Path(tmp), double_every=7 if self.faults else 0, hold=not self.faults)
            (Path(tmp) / "swept").mkdir()
            swept_workers = Workers(swept_env, Path(tmp) / "swept", double_every=0, hold=not self.faults)
            for _ in range(WORKERS):
                workers.spawn()
            swept_workers.spawn()
            workers.wait_ready()
            create_late(emulator, expected)
            feed(sqs, tracking["QueueUrl"], expected, groups, self.rng, duplicate=self.faults)
            stop = threading.Event()
            chaos = threading.Thread(target=self._chaos, args=(stop, workers), daemon=True)
            sweeps = (stop, swept_env, fifo, created, self.result.sweeps, swept_emulator)
            sweeper = threading.Thread(target=sweep_loop, args=sweeps, daemon=True)
            sweeper.start()
            if self.faults or self.mns:
                chaos.start()
            deadline = time.monotonic() + self.timeout
            try:
                settled = wait_until_settled(
                    sqs, s3, bucket, tracking["QueueUrl"], failures["QueueUrl"], expected, self.timeout
                )
                sweeper.join(max(1.0, deadline - time.monotonic()))
                wait_for_queue(fifo, {e.event_id for e in expected if e.event_id and e.swept}, deadline)
            finally:
                stop.set()
                if self.faults or self.mns:
                    chaos.join()
                sweeper.join()
                self.front.down = False
                workers.stop()
                swept_workers.stop()
            self.result.retries = workers.retries()
            keep = os.environ.get("SOAK_KEEP_LOGS")  # a directory: the workers' logs are kept there, for a post-mortem
            if keep:
                shutil.copytree(tmp, Path(keep) / tag, ignore=shutil.ignore_patterns("*.json"), dirs_exist_ok=True)
            outputs = {
                "amqp": ("", False, drain_amqp(amqp_queue)),
                "sqs 256 KiB": ("", False, queue_bodies(small)),
                "sqs fifo swept": ("swept/", True, queue_bodies(fifo)),
            }
            dropped: set[str] = set()
            if self.standin is not None:
                held = self.standin.pending(mns_queue)
                outputs["mns"] = ("", False, [(None, m.text().encode("utf-8", "surrogatepass")) for m in held])
                dropped = mns_dropped(self.standin, held)
            kills = [workers.killed_between(), swept_workers.killed_between()]
            sweep_logs = [s.pop("log", "") for s in self.result.sweeps]
            logs = "\n".join([workers.logs(), swept_workers.logs(), *kills, *sweep_logs])
            hidden = {  # the LAG tasks ROS did answer 404 at first (to the look, ListAITaskEvents, or to GetAITask)
                item.task_id for item in expected if item.case == LAG
                and any(r["action"] in ("ListAITaskEvents", "GetAITask") and r["http_status"] == 404
                        for r in emulator.requests_for(item.task_id))
            }  # fmt: skip
            explained = explained_by(logs)
            explained["mns"] |= dropped
            reconcile(self.result, expected, s3, bucket, settled, outputs, explained,
                      strict_reports=not self.faults, hidden=hidden)  # fmt: skip
            if self.faults or self.mns:
                done = ", ".join(f"{k} x{v}" for k, v in sorted(self.chaos.items()))
                also = "; ROS faults on a fifth of the tasks" if self.faults else ""
                self.result.notes.append(f"(chaos: {done}{also})")
        self.result.elapsed = time.monotonic() - self.started
        return self.result

    def _chaos(self, stop: threading.Event, workers: Workers) -> None:
        """Until ``stop``, every 2.5 s one fault of SOAK_CHAOS (each once in turn, then at random): a worker
        killed, S3 down for 1-3 s, RabbitMQ's connections closed, Redis restarted; counted in ``chaos``. In the
        "mns" scenario, MNS's faults instead (SOAK_MNS_CHAOS): errors answered, answers dropped."""
        if self.mns:
            actions = os.environ.get("SOAK_MNS_CHAOS", "mns-error,mns-drop").split(",")
        else:
            actions = os.environ.get("SOAK_CHAOS", "kill,s3,rabbit,redis").split(",")
        step = 0
        while not stop.wait(2.5):
            if self.standin is not None and self.standin.faults_left():
                # The last MNS fault has not met its requests yet: faults must not pile up while traffic is low (at
                # the end, a few retried tasks would meet nothing but faults)
                continue
            action = actions[step % len(actions)] if step < len(actions) else self.rng.choice(actions)
            step += 1
            self.chaos[action] = self.chaos.get(action, 0) + 1
            if action == "kill":
                workers.kill_one(self.rng)
            elif action == "s3":
                self.front.down = True
                stop.wait(self.rng.uniform(1, 3))
                self.front.down = False
            elif action == "rabbit":
                subprocess.run(["rabbitmqctl", "close_all_connections", "soak"], capture_output=True, check=False)
            elif action == "redis":
                self.redis.restart(pause=self.rng.uniform(0.5, 1.5))
            elif action == "mns-error" and self.standin is not None:
                # MNS's documented answers for these (https://www.alibabacloud.com/help/en/mns/developer-reference/syntax-of-error-responses)
                code, status = self.rng.choice([("InternalError", 500), ("ServiceUnavailable", 503),
                                                ("QpsLimitExceeded", 400)])  # fmt: skip
                self.standin.fail(code, status, times=self.rng.randint(1, 4))
            elif action == "mns-drop" and self.standin is not None:
                self.standin.drop_answers(self.rng.randint(1, 2))

def mns_dropped(standin: MnsStandIn, held: list) -> set[str]:
    """The event ids of the messages the stand-in stored but dropped the answer to: their repeats are explained
    (the SDK sends such a request again itself, or the relay retries it)."""
    ids = set(standin.dropped)
    events = set()
    for message in held:
        if message.message_id in ids:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                events.add(json.loads(message.text())["id"])
    return events


def feed(sqs, url: str, expected: list[Expected], groups, rng: random.Random, *, duplicate: bool) -> None:
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 58))  # stuck tasks time out soon
    bodies, first = [], []
    for item in expected:
        if item.group is not None:
            continue
        body = {"TaskId": item.task_id, "attempt": 0}
        if item.kind == "stuck":
            body["first_seen"] = past
        if item.late is not None:  # as POST /tasks writes it for a task the relay created
            body["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            first.append(json.dumps(body))  # first in the queue: their first look comes within their 10-20 s
            continue
        bodies.append(json.dumps(body))
        if duplicate and rng.random() < 0.1:  # the same task twice, consumed in parallel by different workers
            bodies.append(json.dumps(body))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    for number, members in enumerate(groups):  # an EventBridge rule's event, delivered to the tracking queue
        event = {
            "version": "0", "id": f"soak-group-{number}", "detail-type": "ROS AI Task Status Change",
            "source": "soak.ros", "account": "123456789012", "time": now, "region": "us-east-1", "resources": [],
            "detail": {"TaskIds": [m.task_id for m in members]},
        }  # fmt: skip
        bodies.append(json.dumps(event))
    rng.shuffle(bodies)
    bodies[:0] = first
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)


# Sweeps (by number, from 0) that ListAITasks answers with an error in an HTTP 200 body, on one page: ROS's AI
# task APIs put Success, HttpStatusCode, Code and Message in their answers
# (https://www.alibabacloud.com/help/en/ros/developer-reference/api-ros-2019-09-10-listaitasks; its SDK model has no
# Code, the wire may carry one). Such a sweep must fail, not read an empty last page and call itself complete
# (which would move a watermark past its window); a later sweep delivers everything.
LISTING_FAULTS = {
    1: ("a 200 answer with HttpStatusCode 403, Success false, Code Forbidden, on the first page",
        {"Action": "ListAITasks", "InBody": True, "Status": 403, "Code": "Forbidden",
         "Message": "You are not authorized to complete this action."}),
    2: ("a 200 answer without Tasks (Success true, an empty NextToken), on a later page",
        {"Action": "ListAITasks", "NextToken": "*",
         "Json": {"RequestId": "soak-listing", "HttpStatusCode": 200, "Success": "true", "NextToken": ""}}),
}  # fmt: skip


def sweep_loop(
    stop: threading.Event, env: dict, fifo: str, created: float, summaries: list[dict], emulator=None
) -> None:
    """The sweeper, again and again over the same window, while the consumers run.

    Sweeps are 10 minutes apart in a deployment (SweepSchedule) and a task stays in the window for about 6 of
    them, but SQS FIFO drops a repeated deduplication id only within 5 minutes ("any messages sent with the same
    message deduplication ID are accepted successfully but aren't delivered during the 5-minute deduplication
    interval",
    https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/using-messagededuplicationid-property.html).
    The soak cannot wait 10 minutes, so before each sweep after the first it moves the FIFO queue's message
    history 10 minutes into the past: moto then forgets the earlier deduplication ids, as SQS would have.
    It stops after SWEEPS runs, once every "later" task has finished (12 s) and a sweep failed nothing, or
    after 3 * SWEEPS runs. The runs in LISTING_FAULTS get their listing error from ``emulator`` (the swept
    deployment's); the summary says which (``listing_fault``) and whether the sweep met it (``listing_fault_met``)."""
    runs = 0
    while not stop.is_set() and runs < 3 * SWEEPS:
        if runs:
            queue = sqs_queue(fifo)
            for message in list(queue._messages):
                message.sent_timestamp -= SWEEP_INTERVAL_MS
        fault = None
        if emulator is not None and runs in LISTING_FAULTS:
            fault = emulator.add_fault(dict(LISTING_FAULTS[runs][1]))
        began = time.monotonic()
        proc = subprocess.run([sys.executable, __file__, "sweep"], env=env, capture_output=True, text=True,
                              timeout=600, check=False)  # fmt: skip
        try:
            summary = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            summary = {"error": proc.stderr.strip()[-300:]}
        if fault is not None:
            summary["listing_fault"], summary["listing_fault_met"] = LISTING_FAULTS[runs][0], fault.times == 0
            fault.times = 0  # one not met (the sweep stopped before that page) must not meet a later sweep
        summary["seconds"] = round(time.monotonic() - began, 1)
        summary["log"] = proc.stderr
        summaries.append(summary)
        runs += 1
        if runs >= SWEEPS and time.monotonic() - created > 14 and not summary.get("failed") and "error" not in summary:
            return
        stop.wait(1.0)


def queue_bodies(name: str) -> list[tuple[str | None, bytes]]:
    """Every message an output queue holds, read from moto's own state (nothing else consumes these queues)."""
    return [(None, m.body.encode("utf-8", "surrogatepass")) for m in list(sqs_queue(name)._messages)]


def wait_for_queue(name: str, wanted: set[str], deadline: float) -> None:
    while time.monotonic() < deadline:
        ids = set()
        for _, body in queue_bodies(name):
            with contextlib.suppress(ValueError, KeyError, TypeError):
                ids.add(json.loads(body)["id"])
        if wanted <= ids:
            return
        time.sleep(1)


def drain_amqp(amqp_queue: str) -> list[tuple[str | None, bytes]]:
    import pika

    found = []
    connection = pika.BlockingConnection(pika.URLParameters("amqp://guest:guest@127.0.0.1:5672/%2F"))
    channel = connection.channel()
    while True:
        method, properties, body = channel.basic_get(amqp_queue, auto_ack=True)
        if method is None:
            break
        found.append((properties.message_id, body))
    channel.queue_delete(amqp_queue)
    connection.close()
    return found


def wait_until_settled(sqs, s3, bucket, tracking_url, failures_url, expected, timeout) -> dict[str, dict[str, int]]:
    """Poll until every task has its outcome and the tracking queue is empty; returns the reports by reason and
    task, counted."""
    reports: dict[str, dict[str, int]] = {}
    deadline = time.monotonic() + timeout
    need_store = {e.task_id for e in expected if e.kind in ("success", "failure", "later")}
    need_report = {e.task_id: ("timed_out" if e.kind == "stuck" else "not_found") for e in expected
                   if e.kind in ("stuck", "unknown")}  # fmt: skip
    while time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=failures_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        ):
            report = json.loads(message["Body"])
            seen = reports.setdefault(report["reason"], {})
            seen[report.get("TaskId")] = seen.get(report.get("TaskId"), 0) + 1
            sqs.delete_message(QueueUrl=failures_url, ReceiptHandle=message["ReceiptHandle"])
        stored = {key.split("/")[0] for key in _keys(s3, bucket) if key.endswith("/task.json")}
        reported = all(task in reports.get(reason, {}) for task, reason in need_report.items())
        attributes = sqs.get_queue_attributes(QueueUrl=tracking_url, AttributeNames=["All"])["Attributes"]
        counts = (
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
        in_flight = sum(int(attributes[a]) for a in counts)
        if need_store <= stored and reported and in_flight == 0:
            time.sleep(2)  # a report of a record delivered once more would still be on its way
            for message in sqs.receive_message(QueueUrl=failures_url, MaxNumberOfMessages=10).get("Messages", []):
                report = json.loads(message["Body"])
                seen = reports.setdefault(report["reason"], {})
                seen[report.get("TaskId")] = seen.get(report.get("TaskId"), 0) + 1
            break
        time.sleep(1)
    return reports


def _keys(s3, bucket) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def unencodable(value) -> bool:
    """True when a string in decoded JSON (a key or a value) cannot be UTF-8: a lone surrogate got through."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(unencodable(k) or unencodable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(unencodable(v) for v in value)
    return False


def decode(raw: bytes):
    """The JSON document in ``raw``, or a string saying why it is not valid UTF-8 JSON with encodable text."""
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return f"not UTF-8 JSON ({type(exc).__name__})"
    if unencodable(document):
        return "holds a lone surrogate"
    return document


def workspace_problem(keys: set[str], prefix: str, item: Expected, record: dict, stored_sha) -> str | None:
    """What is wrong with a Terraform task's workspace in a store (each file once under
    <prefix><task_id>/workspace/<path>, with its sha256; the record's ``workspace`` listing them), or None."""
    folder = f"{prefix}{item.task_id}/workspace/"
    found = sorted(key[len(folder) :] for key in keys if key.startswith(folder))
    want = sorted(entry["path"] for entry in item.files or ())
    if found != want:
        return f"workspace files {found} are not {want}"
    for entry in item.files or ():
        if stored_sha(folder + entry["path"]) != entry["sha256"]:
            return f"workspace file {entry['path']} does not hash to ROS's text"
    if record.get("workspace") != list(item.files or ()):
        return f"task.json's workspace {record.get('workspace')!r:.200} does not list the files"
    return None


def reconcile(
    result: Result, expected: list[Expected], s3, bucket: str, reports, outputs, explained=None, *,
    strict_reports: bool = True, hidden: set[str] | None = None,
) -> None:  # fmt: skip
    """Per task: each store holds exactly one template object hashing to the task's and a valid task.json
    (repaired, for the surrogate tasks); a Terraform workspace's files each once, with their sha256, listed in
    the record and in each message (unless a record claim check left the list out); each output queue holds
    exactly one valid message per event id, its claim check resolving to the stored object; each unknown or
    stuck task is reported (once, without faults), no LAG task not_found. Then a row per case of CASES (its
    tasks, lost if lost anywhere; a LAG task also if ``hidden``, the tasks the emulator answered 404, lacks
    it: the case did not happen) and one for the sweeps given a listing error (LISTING_FAULTS): a sweep that
    called itself complete is lost (a deployment's watermark would pass its window)."""
    keys = set(_keys(s3, bucket))
    lost: set[str] = set()
    shas: dict[str, str | None] = {}

    def stored_sha(key: str) -> str | None:
        if key not in shas:
            shas[key] = (
                hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest()
                if key in keys
                else None
            )
        return shas[key]

    def fail(check: Check, item: Expected, why: str) -> None:
        check.lost += 1
        lost.add(item.task_id)
        result.problems.append(f"{check.name}: {item.task_id} ({item.kind}{', surrogates' if item.surrogate else ''}"
                               f"{', multi-task record' if item.group is not None else ''}): {why}")  # fmt: skip

    for prefix, name, only_swept in (("", "s3", False), ("swept/", "s3 swept", True)):
        check = result.check(name)
        for item in expected:
            if item.kind not in ("success", "failure", "later") or (only_swept and not item.swept):
                continue
            check.expected += 1
            templates = [k for k in keys if k.startswith(f"{prefix}{item.task_id}/template.")]
            record = f"{prefix}{item.task_id}/task.json"
            if record not in keys:
                fail(check, item, "no task.json")
                continue
            document = decode(s3.get_object(Bucket=bucket, Key=record)["Body"].read())
            if isinstance(document, str):
                fail(check, item, f"task.json {document}")
            elif item.surrogate and "\\ufffd" not in json.dumps(document):
                fail(check, item, "task.json shows no U+FFFD where ROS sent lone surrogates")
            elif item.kind == "failure" and templates:
                fail(check, item, f"a FAILURE with template objects {templates}")
            elif item.kind != "failure" and len(templates) != 1:
                fail(check, item, f"{len(templates)} template objects")
            elif item.kind != "failure" and stored_sha(templates[0]) != item.template_sha:
                fail(check, item, "the stored template does not hash to the task's")
            elif item.files is not None and (problem := workspace_problem(keys, prefix, item, document, stored_sha)):
                fail(check, item, problem)
            else:
                check.ok += 1

    for name, (prefix, only_swept, messages) in outputs.items():
        check = result.check(name)
        by_event: dict[str, list[dict]] = {}
        for message_id, raw in messages:
            document = decode(raw)
            if isinstance(document, str):
                result.problems.append(f"{name}: a message {document}: {raw[:120]!r}")
                check.lost += 1
                continue
            if message_id is not None and message_id != document.get("id"):
                result.problems.append(f"{name}: message_id {message_id} is not the event id {document.get('id')}")
            by_event.setdefault(str(document.get("id")), []).append(document)
        wanted = {item.event_id: item for item in expected if item.event_id and (item.swept or not only_swept)}
        for event_id in sorted(set(by_event) - set(wanted)):
            result.problems.append(f"{name}: an event no finished task explains: {event_id}")
            check.duplicates += len(by_event[event_id])
        for event_id, item in wanted.items():
            check.expected += 1
            found = by_event.get(event_id, [])
            if not found:
                fail(check, item, "no message")
                continue
            data = found[0].get("data") or {}
            problem = None
            if item.kind != "failure":
                if data.get("template_sha256") != item.template_sha:
                    problem = "data.template_sha256 is not the task's"
                elif "template_ref" in data:
                    ref, want = data["template_ref"], f"s3://{bucket}/{prefix}{item.task_id}/"
                    if (
                        not str(ref).startswith(want)
                        or stored_sha(str(ref)[len(f"s3://{bucket}/") :]) != item.template_sha
                    ):
                        problem = f"template_ref {ref} does not resolve to the stored template"
                elif hashlib.sha256(str(data.get("template")).encode()).hexdigest() != item.template_sha:
                    problem = "the inline template does not hash to the task's"
            if item.surrogate and "\\ufffd" not in json.dumps(found[0]):
                problem = "shows no U+FFFD where ROS sent lone surrogates"
            omitted = item.files is None or "workspace" in (data.get("omitted") or ())  # (a record claim check)
            if not omitted and data.get("workspace") != list(item.files or ()):
                problem = f"data.workspace {data.get('workspace')!r:.200} does not list the workspace files"
            if problem:
                fail(check, item, problem)
            else:
                check.ok += 1
            if len(found) > 1:
                check.duplicates += len(found) - 1
                if event_id in (explained or {}).get(name.split()[0], ()):
                    check.explained += len(found) - 1
                    result.notes.append(f"{name}: duplicate, logged by the relay as possible: {event_id}")
                else:
                    result.problems.append(f"{name}: duplicate: {event_id} ({len(found)} messages)")

    check = result.check("reports")
    for item in expected:
        if item.kind not in ("stuck", "unknown"):
            continue
        reason = "timed_out" if item.kind == "stuck" else "not_found"
        check.expected += 1
        times = reports.get(reason, {}).get(item.task_id, 0)
        if not times:
            fail(check, item, f"not reported {reason}")
            continue
        check.ok += 1
        # Without faults nothing delivers a record twice: a second report means the relay committed a record's
        # report (or forked its tracker) on a delivery that it then failed. With faults (a batch processed
        # twice, a worker killed) reports are at least once.
        if times > 1 and strict_reports:
            check.duplicates += times - 1
            logged = item.task_id in (explained or {}).get("reports", ())
            if logged:
                check.explained += times - 1
            multi = " (a multi-task record)" if item.group is not None else ""
            (result.notes if logged else result.problems).append(
                f"reports: {item.task_id} reported {reason} {times} times{multi}" + (", logged as possible" * logged)
            )

    # The sweeps' own counts: a task delivered by an earlier sweep (or by a consumer) is already_delivered, so
    # the sweeps together cannot have delivered more tasks than finished.
    check = result.check("sweep counts")
    finished = sum(1 for item in expected if item.event_id and item.swept)
    check.expected = finished
    delivered = sum(int(s.get("delivered") or 0) for s in result.sweeps)
    check.ok = finished  # (a count, not per task: an over-count shows as duplicates)
    if delivered > finished:
        check.duplicates = delivered - finished
        # A sweep that announced a task again because its record could not be made (logged, and explained on
        # the swept queue's own check) counts it as delivered again: the same repeats, explained the same way.
        swept_queue = result.checks.get("sqs fifo swept")
        check.explained = min(check.duplicates, swept_queue.explained if swept_queue else 0)
        (result.notes if check.explained == check.duplicates else result.problems).append(
            f"sweep counts: {len(result.sweeps)} sweeps counted {delivered} deliveries of {finished} finished tasks "
            f"(repeats must be already_delivered; {check.explained} of {check.duplicates} explained)"
        )
    failed = [s["error"] for s in result.sweeps if "error" in s and "listing_fault" not in s]
    if failed:  # (a sweep given a listing error is expected to fail: see "listing errors")
        result.problems.append(f"sweep counts: a sweep failed: {failed}")

    check = result.check("listing errors")
    for number, summary in enumerate(result.sweeps):
        if "listing_fault" not in summary:
            continue
        check.expected += 1
        what = f"sweep {number + 1}, answered {summary['listing_fault']}"
        if not summary["listing_fault_met"]:
            result.problems.append(f"listing errors: {what}: the sweep never asked for that page (not checked)")
        elif summary.get("complete"):
            check.lost += 1
            lost.add(f"sweep {number + 1}")
            result.problems.append(f"listing errors: {what}: the sweep called itself complete (pages "
                                   f"{summary.get('pages')}): a watermark would pass its window")  # fmt: skip
        else:
            check.ok += 1

    for case in CASES:
        check = result.check(case)
        missed: list[str] = []
        for item in expected:
            if item.case != case:
                continue
            check.expected += 1
            if item.task_id not in lost and case == LAG and reports.get("not_found", {}).get(item.task_id):
                fail(check, item, "reported not_found: a task the relay created, within RELAY_CREATE_GRACE_SECONDS")
            elif item.task_id in lost:
                check.lost += 1
            elif case == LAG and item.task_id not in (hidden or set()):
                # Delivered, but its first look came after its 10-20 s of 404s (a loaded machine): the case did
                # not happen for this task. A note; the case must still happen for at least one (below).
                check.ok += 1
                missed.append(item.task_id)
            else:
                check.ok += 1
        if case == LAG and missed:
            line = f"{case}: ROS never answered {len(missed)} of {check.expected} a 404: {missed[:5]}"
            (result.problems if len(missed) == check.expected else result.notes).append(
                line + (" (the case did not happen at all)" if len(missed) == check.expected else "")
            )

    tasks = {item.task_id for item in expected}
    result.lost = len(lost)  # tasks, and sweeps that read a listing error as the listing's end
    result.delivered = len(expected) - len(lost & tasks)
    result.duplicates = sum(c.duplicates for c in result.checks.values())
    result.explained = sum(c.explained for c in result.checks.values())


def failures(results: list[Result]) -> list[str]:
    """Every problem the soak reports, one line each: the run exits 1 when there is any. They are what reconcile
    found wrong, each named (a task lost or wrong in a store or queue, a wrong template_ref, a message that is
    not UTF-8 JSON or whose message id is not its event id, a repeated report or an over-count the relay did not
    log as possible, a sweep that failed, a case that did not happen), and what each check's counts show: a task
    or sweep lost, a duplicate the relay did not log as possible, a task not checked, or no task to check."""
    found = []
    for r in results:
        found += [f"{r.scenario}: {problem}" for problem in r.problems]
        for c in r.checks.values():
            if c.expected == 0:
                found.append(f"{r.scenario}: {c.name}: no task to check")
            if c.lost:
                found.append(f"{r.scenario}: {c.name}: {c.lost} lost")
            if c.duplicates > c.explained:
                found.append(f"{r.scenario}: {c.name}: {c.duplicates - c.explained} duplicates unexplained")
            if c.ok + c.lost < c.expected:
                found.append(f"{r.scenario}: {c.name}: {c.expected - c.ok - c.lost} of {c.expected} not checked")
        if r.lost:
            found.append(f"{r.scenario}: {r.lost} tasks or sweeps lost")
        if r.duplicates > r.explained:
            found.append(f"{r.scenario}: {r.duplicates - r.explained} of {r.duplicates} duplicates unexplained")
    return found


# --- the table --------------------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    lines = [
        "| scenario | tasks | delivered | duplicates | lost | retries | elapsed |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        cells = [r.scenario, r.tasks, r.delivered, r.duplicates, r.lost, r.retries, f"{r.elapsed:.1f} s"]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += [
        "",
        "| check | scenario | expected | ok | lost | duplicates | explained |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for c in r.checks.values():
            cells = [c.name, r.scenario, c.expected, c.ok, c.lost, c.duplicates, c.explained]
            lines.append("| " + " | ".join(map(str, cells)) + " |")
    return "\n".join(lines)


def sweep_line(result: Result) -> str:
    """The sweeper runs of the swept deployment, summed: what each run delivered and counted as already done."""
    keys = ("delivered", "already_delivered", "pending", "failed", "seconds")
    runs = []
    for s in result.sweeps:
        if "error" not in s:
            runs.append(" ".join(f"{k}={s.get(k, '?')}" for k in keys))
        elif "listing_fault" in s:  # the exception's own line: what the relay made of the listing error
            runs.append(f"failed on its listing error, as it must: {s['error'].strip().splitlines()[-1]}")
        else:
            runs.append(f"error: {s['error']}")
    return f"{result.scenario}: {len(result.sweeps)} sweeps: " + "; ".join(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", default="run", choices=["run", "worker", "sweep"])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--scenarios", default="baseline,faults,mns")
    parser.add_argument("--stats")
    parser.add_argument("--double-every", type=int, default=0)
    parser.add_argument("--hold", action="store_true")
    args = parser.parse_args(argv)
    if args.mode == "worker":
        worker(args.stats, args.double_every, args.hold)
        return 0
    if args.mode == "sweep":
        sweep_once()
        return 0
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    results = []
    for name in args.scenarios.split(","):
        results.append(Soak(name, args.tasks, name == "faults", args.seed, args.timeout, mns=name == "mns").run())
        shown: dict[str, int] = {}
        for problem in results[-1].problems + results[-1].notes:  # the first few of each check's
            check = problem.split(":", 1)[0]
            shown[check] = shown.get(check, 0) + 1
            if shown[check] <= 10:
                print(f"  {name}: {problem}", file=sys.stderr)
    print(table(results))
    for result in results:
        print(sweep_line(result))
        for note in result.notes:
            if note.startswith("(chaos"):
                print(f"{result.scenario}: {note[1:-1]}")
        if result.duplicates:
            print(
                f"{result.scenario}: {result.explained} of {result.duplicates} duplicates were logged by the relay as "
                "possible (an AMQP publish unconfirmed, a publish whose announcement record failed, an MNS send "
                "unanswered) or are an MNS answer the stand-in dropped; the others are unexplained"
            )
    problems = failures(results)
    for problem in problems[:40]:
        print(f"soak: {problem}", file=sys.stderr)
    if problems:
        print(f"soak: {len(problems)} problems{' (the first 40 above)' if len(problems) > 40 else ''}: exit 1")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
