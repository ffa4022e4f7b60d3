"""TaskOutput as ROS documents it (issue 14, items 3 and 11), through the official SDK against the emulator,
into real stores (a directory, S3 on moto, OSS through its SDK on moto's S3 API) and queues.

- A TaskOutput sent as JSON text is read as the object it holds.
- A Terraform template in ROS's own format (``Transform: Aliyun::Terraform-v1.x`` + ``Workspace`` of files,
  https://www.alibabacloud.com/help/en/ros/user-guide/structure-of-terraform-templates) is delivered as
  ``template.json`` plus each file under ``<prefix><task_id>/workspace/<path>``, task.json last.
- A hostile workspace path never leaves the task's folder: the task is refused, nothing is written.
- A task of a type ROS does not document is delivered when its output holds a template; otherwise it is a
  permanent failure, logged and counted.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from aitask_relay import runtime
from aitask_relay.adapters.destinations import build_destination
from aitask_relay.core.errors import DestinationFailure
from aitask_relay.core.model import Observation, Template
from aitask_relay.core.normalize import normalize
from relay_devkit.events import sqs_record

WORKSPACE = {
    "main.tf": 'module "my_vpc" {\n  source = "./modules/vpc"\n}\n',
    "variables.tf": 'variable "zone_id" {\n  type = string\n}\n',
    "outputs.tf": 'output "vpc_id" {\n  value = module.my_vpc.vpc_id\n}\n',
    "modules/vpc/main.tf": 'resource "alicloud_vpc" "vpc" {\n  cidr_block = "172.16.0.0/12"\n}\n',
}
TERRAFORM = {"ROSTemplateFormatVersion": "2015-09-01", "Transform": "Aliyun::Terraform-v1.5", "Workspace": WORKSPACE}
YAML = "ROSTemplateFormatVersion: '2015-09-01'\nResources: {}\n"


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


class Store:
    """One store of a kind, and what it holds as {key under the prefix: bytes}."""

    def __init__(self, kind, aws, tmp_path):
        self.kind, self.aws = kind, aws
        if kind == "file":
            self.root = tmp_path / "store"
            self.uri = self.root.as_uri()
        else:
            self.bucket = aws.bucket()
            self.uri = (
                f"s3://{self.bucket}/t/"
                if kind == "s3"
                else f"oss://{self.bucket}/t/?region=cn-hangzhou&endpoint={aws.endpoint}"
            )

    def objects(self):
        if self.kind == "file":
            if not self.root.exists():
                return {}
            return {
                p.relative_to(self.root).as_posix(): p.read_bytes()
                for p in self.root.rglob("*")
                if p.is_file() and not p.name.startswith(".tmp-")
            }
        listed = self.aws.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return {
            o["Key"].removeprefix("t/"): self.aws.s3.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read()
            for o in listed
        }

    def versions(self):
        if self.kind == "file":
            return {k: v for k, v in self.objects().items()}
        return {o["Key"]: o["ETag"] for o in self.aws.s3.list_objects_v2(Bucket=self.bucket).get("Contents", [])}


@pytest.fixture(params=["file", "s3", "oss"])
def store(request, aws, tmp_path):
    return Store(request.param, aws, tmp_path)


def use(relay_env, *uris):
    relay_env.setenv("RELAY_DESTINATIONS", ",".join(uris))
    runtime.reset()


# --- item 3: a Terraform workspace -----------------------------------------------------------------------


def test_a_terraform_workspace_is_delivered_file_by_file_and_a_repeat_writes_nothing(
    emulator, fetch_task, relay_env, store
):
    # Given a finished Terraform task whose Result is ROS's Transform/Workspace object, and one store
    emulator.add_task({"TaskId": "t-ws", "TaskType": "GenerateTemplate", "Status": "SUCCESS",
                       "TaskOutput": {"Result": TERRAFORM}})
    use(relay_env, store.uri)
    # When fetch_task delivers it
    (record,) = fetch_task({"TaskId": "t-ws"})["results"]
    # Then template.json is the object as ROS returned it, and every file is under workspace/, byte-exact
    assert record["error"] is None and record["deliveries"][0]["outcome"] == "created"
    held = store.objects()
    template = json.dumps(TERRAFORM, indent=2, ensure_ascii=False).encode()
    assert held["t-ws/template.json"] == template
    for path, text in WORKSPACE.items():
        assert held[f"t-ws/workspace/{path}"] == text.encode()
    assert sorted(held) == sorted(
        ["t-ws/template.json", "t-ws/task.json"] + [f"t-ws/workspace/{p}" for p in WORKSPACE]
    )
    # and the record (answer and task.json) lists the files with their sha256 and bytes
    listing = [{"path": p, "sha256": sha(t), "bytes": len(t.encode())} for p, t in WORKSPACE.items()]
    assert record["workspace"] == listing
    assert json.loads(held["t-ws/task.json"])["workspace"] == listing
    # When the same task is delivered again
    before = store.versions()
    (again,) = fetch_task({"TaskId": "t-ws"})["results"]
    # Then it is already_present and nothing new was written
    assert again["deliveries"][0]["outcome"] == "already_present"
    assert store.versions() == before


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_a_crash_between_any_two_writes_is_completed_by_the_retry_without_duplicates(aws, tmp_path, kind):
    # Given a workspace task and, for each point of the delivery, an attempt that died after that many writes
    body = {"TaskId": "t-ws", "Status": "SUCCESS", "TaskType": "GenerateTemplate", "TaskOutput": {"Result": TERRAFORM}}
    obs = normalize(body, task_id="t-ws", observed_at="2026-11-30T00:00:00.000Z")
    writes = len(WORKSPACE) + 2  # each file, template.json, task.json
    for died_after in range(writes):
        store = Store(kind, aws, tmp_path / str(died_after))
        dest = build_destination(store.uri)
        real, done = dest._create, []

        def crashing(key, *args, real=real, done=done, died_after=died_after):
            if len(done) == died_after:
                raise SystemExit("killed")
            done.append(key)
            return real(key, *args)

        dest._create = crashing
        with pytest.raises(SystemExit):
            dest.deliver(obs)
        # task.json is the last write: a half delivery is never taken as held
        assert "t-ws/task.json" not in store.objects()
        assert build_destination(store.uri).delivered_at("t-ws", "SUCCESS") is None
        # When a fresh process retries
        retry = build_destination(store.uri).deliver(obs)
        # Then the delivery is complete, each object once, with the right bytes
        assert retry.outcome == "created"
        held = store.objects()
        assert len(held) == writes and held["t-ws/task.json"] == obs.result.to_json_bytes()
        assert all(held[f"t-ws/workspace/{p}"] == t.encode() for p, t in WORKSPACE.items())
        assert build_destination(store.uri).delivered_at("t-ws", "SUCCESS") is not None


@pytest.mark.parametrize("kind", ["file", "s3"])
@pytest.mark.parametrize(
    "hostile",
    ["../escape.tf", "/etc/passwd", "a//b.tf", "a\\b.tf", ".", "", "a\x00.tf", "x" * 1100, "mod"],
)
def test_a_hostile_workspace_path_refuses_the_task_and_writes_nothing(
    emulator, fetch_task, relay_env, aws, tmp_path, kind, hostile
):
    # Given a finished task whose workspace holds a path that could leave the task's folder (or collide:
    # "mod" is both a file and the folder of "mod/main.tf")
    workspace = {"main.tf": "a = 1\n", "mod/main.tf": "b = 2\n", hostile: "c = 3\n"}
    result = {**TERRAFORM, "Workspace": workspace}
    emulator.add_task({"TaskId": "t-evil", "Status": "SUCCESS", "TaskOutput": {"Result": result}})
    store = Store(kind, aws, tmp_path)
    use(relay_env, store.uri)
    # When fetch_task is asked for it
    (record,) = fetch_task({"TaskId": "t-evil"})["results"]
    # Then the task is refused for good, naming the path, and nothing at all was written
    assert record["error"]["code"] == "bad_upstream_response" and record["error"]["retryable"] is False
    assert "workspace path" in record["error"]["message"] and record["deliveries"] == []
    assert store.objects() == {}
    assert not (tmp_path / "escape.tf").exists()


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_a_store_refuses_a_hostile_path_even_if_one_reached_it(aws, tmp_path, kind):
    # Given an observation built by hand (not through normalize) with a path that leaves the folder
    from aitask_relay.core.model import TemplateFile

    body = {"TaskId": "t-evil", "Status": "SUCCESS", "TaskType": "GenerateTemplate", "TaskOutput": {"Result": YAML}}
    obs = normalize(body, task_id="t-evil", observed_at="2026-11-30T00:00:00.000Z")
    bad = TemplateFile("../../outside.tf", b"x", hashlib.sha256(b"x").hexdigest())
    template = Template(obs.template.body, obs.template.format, obs.template.sha256, files=(bad,))
    store = Store(kind, aws, tmp_path / "root")
    # When a store is asked to deliver it
    with pytest.raises(DestinationFailure) as caught:
        build_destination(store.uri).deliver(Observation(obs.result, template))
    # Then it refuses, not retryably, before writing anything
    assert caught.value.retryable is False and "'../../outside.tf'" in caught.value.message
    assert store.objects() == {} and not (tmp_path / "outside.tf").exists()


@pytest.mark.parametrize("kind", ["s3", "oss"])
def test_a_workspace_path_within_ros_limits_but_over_the_stores_key_limit_is_refused_before_any_write(
    emulator, fetch_task, relay_env, aws, tmp_path, kind
):
    # Given a store under a 60-character prefix, and a workspace whose second path is 965 characters: within
    # ROS's 1,024, but prefix + task key + workspace/ + path is over S3's 1,024 bytes and OSS's 1,023
    long_path = "/".join(["d" * 240] * 4)[:962] + ".tf"
    workspace = {"main.tf": "a = 1\n", long_path: "b = 2\n"}
    result = {**TERRAFORM, "Workspace": workspace}
    emulator.add_task({"TaskId": "t-long", "Status": "SUCCESS", "TaskOutput": {"Result": result}})
    store = Store(kind, aws, tmp_path)
    prefix = "p" * 60 + "/"
    store.uri = store.uri.replace("/t/", "/" + prefix, 1)
    use(relay_env, store.uri)
    # When fetch_task delivers it
    (record,) = fetch_task({"TaskId": "t-long"})["results"]
    # Then the store refuses the task, not retryably, naming the store's limit, and wrote nothing at all (not
    # even main.tf): a retry would meet the same key (moto takes any length; OSS's SDK refuses over 1,023)
    (delivery,) = record["deliveries"]
    assert delivery["outcome"] == "failed" and delivery["error"]["retryable"] is False, delivery
    assert "bytes, over the" in delivery["error"]["message"]
    assert aws.s3.list_objects_v2(Bucket=store.bucket).get("KeyCount", 0) == 0


def test_a_workspace_task_is_announced_with_template_json_and_its_file_list(emulator, fetch_task, relay_env, aws):
    # Given S3 and an SQS queue
    bucket, (name, url) = aws.bucket(), aws.queue()
    emulator.add_task({"TaskId": "t-ws", "Status": "SUCCESS", "TaskOutput": {"Result": TERRAFORM}})
    use(relay_env, f"s3://{bucket}/", f"sqs://{name}")
    # When delivered
    fetch_task({"TaskId": "t-ws"})
    # Then the message carries template.json's text inline and the record's workspace list
    (message,) = aws.receive_all(url)
    data = json.loads(message["Body"])["data"]
    assert json.loads(data["template"]) == TERRAFORM and data["template_format"] == "json"
    assert [f["path"] for f in data["workspace"]] == list(WORKSPACE)


def test_a_repeated_sweep_finds_a_workspace_task_held_and_does_not_fetch_it_again(emulator, invoke, relay_env, aws):
    # Given a workspace task and an S3 store, swept once
    bucket = aws.bucket()
    emulator.add_task({"TaskId": "t-ws", "Status": "SUCCESS", "TaskOutput": {"Result": TERRAFORM}})
    use(relay_env, f"s3://{bucket}/t/")
    first = invoke("sweeper", {})
    keys = {o["Key"] for o in aws.s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert {f"t/t-ws/workspace/{p}" for p in WORKSPACE} < keys
    emulator.reset_stats()
    # When swept again
    second = invoke("sweeper", {})
    # Then the second sweep counts it already delivered, without a GetAITask
    assert (first["delivered"], second["already_delivered"], second["delivered"]) == (1, 1, 0)
    assert emulator.stats()["get_by_output_option"] == {}


# --- item 3: TaskOutput as JSON text ---------------------------------------------------------------------


def test_a_task_output_sent_as_json_text_is_delivered(emulator, fetch_task, out_dir):
    # Given a SUCCESS whose TaskOutput is a string holding the JSON object
    output = json.dumps({"Result": YAML, "Explanation": "why"})
    emulator.add_task({"TaskId": "t-text", "Status": "SUCCESS", "TaskOutput": output})
    # When fetched
    (record,) = fetch_task({"TaskId": "t-text"})["results"]
    # Then the template inside was delivered and the other keys are in output_extra
    assert record["error"] is None and record["template_format"] == "yaml"
    assert (out_dir / "t-text" / "template.yaml").read_text() == YAML
    assert record["output_extra"] == {"Explanation": "why"}


def test_a_task_output_that_is_no_json_object_is_a_permanent_failure_and_nothing_is_stored(
    emulator, fetch_task, out_dir
):
    emulator.add_task({"TaskId": "t-text", "Status": "SUCCESS", "TaskOutput": "the template could not be shown"})
    (record,) = fetch_task({"TaskId": "t-text"})["results"]
    assert record["error"]["code"] == "bad_upstream_response" and record["error"]["retryable"] is False
    assert not out_dir.exists() or list(out_dir.rglob("*")) == []


# --- item 11: task types ROS does not document -----------------------------------------------------------


def test_unknown_task_types_are_delivered_with_a_template_and_reported_logged_and_counted_without(
    emulator, invoke, relay_env, aws, out_dir, captured_logs, capsys
):
    # Given two SUCCESS tasks of an undocumented type, tracked by the consumer: one whose output holds a
    # template, one whose output holds none
    emulator.add_task({"TaskId": "t-new", "TaskType": "DeployStack", "Status": "SUCCESS",
                       "TaskOutput": {"StackId": "s-1"}})
    emulator.add_task({"TaskId": "t-new-yaml", "TaskType": "DeployStack", "Status": "SUCCESS",
                       "TaskOutput": {"Result": YAML}})
    _name, failures = aws.queue()
    relay_env.setenv("RELAY_FAILURE_QUEUE", failures)
    runtime.reset()
    # When the queue consumer settles them
    answer = invoke("queue_consumer", {"Records": [sqs_record("t-new"), sqs_record("t-new-yaml")]})
    # Then both records are settled (not retried); the one with a template is delivered
    assert answer == {"batchItemFailures": []}
    assert (out_dir / "t-new-yaml" / "template.yaml").read_text() == YAML
    # and the other is reported once, naming the type, with nothing stored
    (report,) = [json.loads(m["Body"]) for m in aws.receive_all(failures)]
    assert report["TaskId"] == "t-new" and "DeployStack" in report["message"]
    assert not (out_dir / "t-new").exists()
    # and it was logged with the type, and counted as unknown_task_type
    assert any("DeployStack" in line["message"] for line in captured_logs())
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(doc.get("unknown_task_type") == [1.0] or doc.get("unknown_task_type") == 1 for doc in emf), emf

