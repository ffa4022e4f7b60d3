"""Lazy imports: loading fetch_task (a file-destination deployment) pulls in no SDK it does not use."""

import json
import subprocess
import sys

import pytest

from relay_devkit import ROOT

# Powertools imports the botocore package itself (0.4 ms, for its user-agent hook); a client or session
# is what costs, so those are what must not load.
# "mns": the MNS SDK is for Function Compute's queues only. "pydantic": the HTTP API's models, loaded by the HTTP
# function on its first request (not at its cold start), and by no other function.
FORBIDDEN = {
    "boto3", "botocore.session", "botocore.client", "pika", "redis", "alibabacloud_oss_v2", "aws_xray_sdk", "mns",
    "pydantic", "standardwebhooks", "aitask_relay.adapters.destinations.signing",
    "aitask_relay.adapters.destinations.webhook", "aitask_relay.adapters.destinations.eventbridge",
    "aitask_relay.adapters.destinations.sns", "alibabacloud_eventbridge20200401",
    "aitask_relay.adapters.destinations.acs_eventbridge",
}  # fmt: skip


@pytest.mark.parametrize("function", ["fetch_task", "queue_consumer", "sweeper", "http_api"])
def test_loading_a_handler_imports_no_aws_sdk_broker_client_or_xray(function):
    code = (
        "import json, sys; from relay_devkit.runner import load_handler; "
        f"load_handler({function!r}); print(json.dumps(sorted(sys.modules)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert not loaded & FORBIDDEN
    assert "aitask_relay.usecases.relay" in loaded


def fetched_in_a_fresh_process(emulator, task_id, **env):
    """fetch_task run for ``task_id`` in a new Python process pointed at the emulator and ``env``: the first
    delivery's outcome and every module the process loaded."""
    import os

    env = dict(os.environ, ROS_ENDPOINT=emulator.endpoint, ROS_PROTOCOL="http", **env)
    code = (
        "import json, sys; from relay_devkit.runner import load_handler, LambdaContext; "
        f"h = load_handler('fetch_task'); r = h({{'TaskId': {task_id!r}}}, LambdaContext(function_name='f')); "
        "print(json.dumps([r['results'][0]['deliveries'][0]['outcome'], sorted(sys.modules)]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_an_s3_only_deployment_delivers_without_loading_pika_redis_or_the_oss_sdk(emulator, aws):
    # Given a deployment whose only destination is S3 (moto), and a finished task
    emulator.add_task({"TaskId": "t-s3-only", "Status": "SUCCESS", "TaskOutput": {"Result": "Resources: {}\n"}})
    bucket = aws.bucket()
    # When the handler runs in a fresh process
    outcome, modules = fetched_in_a_fresh_process(
        emulator, "t-s3-only", RELAY_DESTINATIONS=f"s3://{bucket}/", AWS_ENDPOINT_URL=aws.endpoint
    )
    # Then it delivered through boto3 and never imported the other destinations' clients
    assert outcome == "created"
    assert "boto3" in modules
    assert not set(modules) & {"pika", "redis", "alibabacloud_oss_v2", "aitask_relay.adapters.ledger", "aws_xray_sdk",
                               "standardwebhooks", "aitask_relay.adapters.destinations.webhook"}  # fmt: skip
    assert not set(modules) & {"mns", "aitask_relay.adapters.destinations.mns"}


def test_an_mns_destination_loads_the_mns_sdk_and_no_other_destinations_client(emulator):
    # Given a deployment delivering to an MNS queue (the devkit's stand-in), and a finished task
    import os

    from relay_devkit.mns import MnsStandIn

    key = (os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"], os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"])
    standin = MnsStandIn({key[0]: (key[1], None)}).start()
    try:
        standin.create_queue("imports-out")
        emulator.add_task({"TaskId": "t-mns-only", "Status": "SUCCESS", "TaskOutput": {"Result": "Resources: {}\n"}})
        # When the handler runs in a fresh process
        outcome, modules = fetched_in_a_fresh_process(
            emulator, "t-mns-only", RELAY_DESTINATIONS=standin.destination("imports-out")
        )
        # Then it delivered through the MNS SDK and imported no other destination's client
        assert outcome == "created" and len(standin.pending("imports-out")) == 1
        assert {"mns", "aitask_relay.adapters.destinations.mns"} <= set(modules)
        others = {"boto3", "pika", "redis", "alibabacloud_oss_v2", "aitask_relay.adapters.destinations.webhook"}
        assert not set(modules) & others
    finally:
        standin.stop()


def test_an_acs_eventbridge_destination_loads_its_sdk_and_no_other_destinations_client(emulator):
    # Given a deployment publishing to an Alibaba Cloud EventBridge bus (the devkit's stand-in), and a finished task
    import os

    from relay_devkit.acs_eventbridge import AcsEventBridgeStandIn

    key = (os.environ["ALIBABA_CLOUD_ACCESS_KEY_ID"], os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"])
    standin = AcsEventBridgeStandIn({key[0]: (key[1], None)}).start()
    try:
        uri = standin.create_bus("imports-bus")
        emulator.add_task({"TaskId": "t-eb-only", "Status": "SUCCESS", "TaskOutput": {"Result": "Resources: {}\n"}})
        # When the handler runs in a fresh process
        outcome, modules = fetched_in_a_fresh_process(emulator, "t-eb-only", RELAY_DESTINATIONS=uri)
        # Then it published through the EventBridge SDK and imported no other destination's client
        assert outcome == "created" and len(standin.events("imports-bus")) == 1
        assert {"alibabacloud_eventbridge20200401", "aitask_relay.adapters.destinations.acs_eventbridge"} <= set(
            modules
        )
        others = {"boto3", "pika", "redis", "alibabacloud_oss_v2", "mns", "aitask_relay.adapters.destinations.webhook"}
        assert not set(modules) & others
    finally:
        standin.stop()


def test_a_webhook_only_deployment_delivers_without_loading_any_cloud_sdk_or_broker_client(emulator):
    # Given a deployment whose only destination is a webhook (an HTTPS receiver on loopback), and a finished task
    from urllib.parse import quote

    from relay_devkit.webhook import WebhookReceiver

    emulator.add_task({"TaskId": "t-hook-only", "Status": "SUCCESS", "TaskOutput": {"Result": "Resources: {}\n"}})
    receiver = WebhookReceiver().start()
    secret = quote("whsec_" + "QUJD" * 8, safe="")
    try:
        # When the handler runs in a fresh process
        outcome, modules = fetched_in_a_fresh_process(
            emulator,
            "t-hook-only",
            RELAY_DESTINATIONS=f"{receiver.url()}?allow_private=true&secret={secret}",
            SSL_CERT_FILE=receiver.ca_file,
        )
    finally:
        receiver.stop()
    # Then it was POSTed, with the webhook module and the signing package, and nothing of boto3, pika, redis or OSS
    assert outcome == "created" and len(receiver.requests) == 1
    assert {"aitask_relay.adapters.destinations.webhook", "standardwebhooks"} <= set(modules)
    assert not set(modules) & {"boto3", "botocore.client", "pika", "redis", "alibabacloud_oss_v2", "aws_xray_sdk"}


def test_a_bus_and_topic_deployment_delivers_loading_only_their_modules(emulator, aws):
    # Given a deployment whose destinations are an EventBridge bus and an SNS topic (moto) whose subscriber is an
    # SQS queue, and a finished task
    import boto3

    emulator.add_task({"TaskId": "t-buses", "Status": "SUCCESS", "TaskOutput": {"Result": "Resources: {}\n"}})
    boto3.client("events", endpoint_url=aws.endpoint).create_event_bus(Name="relay-imports")
    sns = boto3.client("sns", endpoint_url=aws.endpoint)
    topic = sns.create_topic(Name="relay-imports")["TopicArn"]
    _name, url = aws.queue()
    queue_arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    # When the handler runs in a fresh process
    outcome, modules = fetched_in_a_fresh_process(
        emulator,
        "t-buses",
        RELAY_DESTINATIONS="eventbridge://relay-imports,sns://relay-imports",
        AWS_ENDPOINT_URL=aws.endpoint,
    )
    # Then both delivered through boto3 (the bus first; the topic's subscriber got the event), and no other
    # destination's client nor the other destination modules loaded
    assert outcome == "created" and len(aws.receive_all(url)) == 1
    assert {"boto3", "aitask_relay.adapters.destinations.eventbridge", "aitask_relay.adapters.destinations.sns"} <= set(
        modules
    )
    others = {"pika", "redis", "alibabacloud_oss_v2", "mns", "aitask_relay.adapters.destinations.amqp",
              "aitask_relay.adapters.destinations.webhook"}  # fmt: skip
    assert not set(modules) & others


AWS_ONLY = {
    "boto3",
    "botocore.session",
    "botocore.client",
    "aws_xray_sdk",
    "aitask_relay.adapters.aws",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.data_classes",
    "aws_lambda_powertools.utilities.idempotency",
    "aws_lambda_powertools.utilities.parameters",
    "aws_lambda_powertools.event_handler",
}  # Powertools' package __init__ itself imports its tracing and metrics modules (no X-Ray, no boto3)


def test_the_function_compute_entry_imports_nothing_aws_only(emulator, aws):
    # Given an FC deployment delivering to OSS (moto), and a finished task
    import os

    emulator.add_task({"TaskId": "t-fc-imports", "Status": "SUCCESS", "TaskOutput": {"Result": "Resources: {}\n"}})
    bucket = aws.bucket("relay-fc")
    env = dict(
        os.environ,
        ROS_ENDPOINT=emulator.endpoint,
        ROS_PROTOCOL="http",
        RELAY_DESTINATIONS=f"oss://{bucket}/?region=cn-hangzhou&endpoint={aws.endpoint}",
    )
    code = (
        "import json, sys; from relay_devkit.runner import load_fc_handler, FcContext; "
        "h = load_fc_handler('event'); "
        "event = {'id': 'e', 'source': 's', 'specversion': '1.0', 'data': {'TaskId': 't-fc-imports'}}; "
        "r = json.loads(h(json.dumps(event).encode(), FcContext())); "
        "print(json.dumps([r['events'][0]['results'][0]['deliveries'][0]['outcome'], sorted(sys.modules)]))"
    )
    # When the event handler runs in a fresh process
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    outcome, modules = json.loads(proc.stdout.strip().splitlines()[-1])
    # Then it delivered through the OSS SDK and loaded no AWS SDK, X-Ray or Lambda-only utility
    assert outcome == "created" and "alibabacloud_oss_v2" in modules
    assert not {m for m in modules if m in AWS_ONLY or m.startswith(tuple(f"{a}." for a in AWS_ONLY))}
