"""Events: the samples under events/ and the builders of the shapes Lambda delivers (an SQS batch, an API
Gateway HTTP API request), for the replay, the demo, the soak, the bench and the tests."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

from . import ROOT

EVENTS = ROOT / "events"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:aitask-relay-tracking"


def load_event(path: Path) -> Any:
    """A sample event file's JSON."""
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def sqs_record(body, message_id=None, sent_ms=None):
    """One record of a Lambda SQS event, in the shape Lambda delivers it."""
    sent = str(sent_ms if sent_ms is not None else int(time.time() * 1000))
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "AQEB" + uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": sent,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": sent,
        },
        "messageAttributes": {},
        "md5OfBody": "0" * 32,
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "us-east-1",
    }


def lambda_event_from(messages):
    """Messages received from a (moto) SQS queue as the event Lambda's SQS poller would send."""
    return {
        "Records": [
            sqs_record(m["Body"], m["MessageId"], m.get("Attributes", {}).get("SentTimestamp")) for m in messages
        ]
    }


def http_api_event(method, path, body=None, query=None, base64_body=False):
    """An API Gateway HTTP API (payload 2.0) event, as Lambda receives it."""
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "&".join(f"{k}={v}" for k, v in (query or {}).items()),
        "headers": {"content-type": "application/json", "host": "api.example.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.1"},
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "timeEpoch": 0,
        },
        "isBase64Encoded": base64_body,
    }
    if query:
        event["queryStringParameters"] = query
    if body is not None:
        text = body if isinstance(body, str) else json.dumps(body)
        event["body"] = base64.b64encode(text.encode()).decode() if base64_body else text
    return event
