"""boto3 clients, one per (service, region) per process, built on first use and shared by threads.

boto3 is imported here and only when a client is asked for, so a deployment without an AWS destination
or ledger never loads it. Endpoints follow boto3's own AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, cast
from urllib.parse import urlsplit

from aitask_relay import __version__
from aitask_relay.adapters.queue_size import KeptMessageSize
from aitask_relay.core.errors import DestinationFailure, destination_error

_lock = threading.RLock()  # secret() holds it while client() takes it
_clients: dict[tuple[str, str | None], Any] = {}
_providers: dict[str, Any] = {}  # Powertools parameter providers on those clients (each caches values)


def client(service: str, region: str | None = None) -> Any:
    """The process-wide boto3 client for ``service`` (clients are thread-safe; creating them is not)."""
    key = (service, region)
    with _lock:
        if key not in _clients:
            import boto3
            from botocore.config import Config

            config = Config(
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=5,
                read_timeout=10,
                max_pool_connections=32,
                user_agent_extra=f"aitask-relay/{__version__}",
            )
            _clients[key] = boto3.session.Session().client(service, region_name=region, config=config)
        return _clients[key]


def secret(name: str, *, max_age: int, transform: str | None = None) -> Any:
    """A Secrets Manager secret through Powertools' SecretsProvider, cached for ``max_age`` seconds.

    The provider is built on this module's client, not Powertools' get_secret, whose process-wide default
    provider keeps the boto3 client it made first (with botocore's 60 s timeouts, and the endpoint of that
    moment: reset() could not forget it). Errors are Powertools' GetParameterError/TransformParameterError:
    https://docs.aws.amazon.com/powertools/python/latest/utilities/parameters/#secretsprovider
    """
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    with _lock:  # one lock for the client and the provider: a reset() cannot come between them
        if "secretsmanager" not in _providers:
            _providers["secretsmanager"] = SecretsProvider(boto3_client=client("secretsmanager"))
        provider = _providers["secretsmanager"]
    return provider.get(name, max_age=max_age, transform=transform)


def reset() -> None:
    """Forget the cached clients and secrets (tests that change the environment)."""
    with _lock:
        _clients.clear()
        _providers.clear()


# A queue takes messages up to its own MaximumMessageSize: 1,024 bytes to 1 MiB, body plus every message
# attribute's name, type and value. Queues created since August 2025 default to 1 MiB; older ones keep the
# old default of 256 KiB unless raised. MaximumMessageSize in
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html (and
# API_CreateQueue.html), the message quotas in
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html, the 2025
# change in https://aws.amazon.com/blogs/compute/more-room-to-build-serverless-services-now-support-payloads-up-to-1-mb
# ("Amazon SQS increases maximum message payload size to 1 MiB"; an older queue still refusing above 256 KiB
# after it: https://github.com/aws/aws-sdk-net/issues/4001), attributes in the size in
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_MessageAttributeValue.html.
SQS_MAX_MESSAGE_BYTES = 1_048_576
SQS_OLD_DEFAULT_MESSAGE_BYTES = 262_144


class SqsQueue(KeptMessageSize):
    """One SQS queue, named by its name or its URL; the URL of a name is looked up once, and so is the
    queue's MaximumMessageSize (``max_message_bytes``, see queue_size.KeptMessageSize).

    Failures are translated into DestinationFailure (retryable or not, by the one table in errors.py).
    """

    assumed_max_message_bytes = SQS_OLD_DEFAULT_MESSAGE_BYTES

    def __init__(self, name_or_url: str, *, client: Any = None, name: str | None = None) -> None:
        is_url = "://" in name_or_url
        self.name = name or name_or_url
        self.fifo = name_or_url.rstrip("/").endswith(".fifo")
        self._url = name_or_url if is_url else None
        self._queue_name = name_or_url.rstrip("/").rsplit("/", 1)[-1]
        self._region = _region_of(name_or_url) if is_url else None
        self._client = client
        self._lock = threading.Lock()
        self._init_size()

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = client("sqs", self._region)
        return self._client

    @property
    def url(self) -> str:
        with self._lock:
            if self._url is None:
                try:
                    self._url = self.client.get_queue_url(QueueName=self._queue_name)["QueueUrl"]
                except Exception as exc:
                    raise destination_error(exc, self.name) from exc
            return self._url

    def _ask_max_message_bytes(self) -> int:
        url = self.url  # a missing queue fails the delivery here (DestinationFailure), as its SendMessage would
        answer = self.client.get_queue_attributes(QueueUrl=url, AttributeNames=["MaximumMessageSize"])
        return int(answer["Attributes"]["MaximumMessageSize"])

    def send(self, body: str, *, delay_seconds: int = 0, **extra: Any) -> str:
        """Send one message; returns its MessageId."""
        request: dict[str, Any] = {"QueueUrl": self.url, "MessageBody": body, **extra}
        if delay_seconds:
            request["DelaySeconds"] = delay_seconds
        try:
            return cast(str, self.client.send_message(**request)["MessageId"])  # boto3 is untyped here (no stubs)
        except Exception as exc:  # ClientError or a transport error
            raise destination_error(exc, self.name) from exc

    def send_many(self, bodies: Sequence[str], *, delays: Sequence[int] | None = None) -> dict[int, DestinationFailure]:
        """Send messages ten to a request (SendMessageBatch), each with its own delay if given.

        Returns the failures by index in ``bodies`` (empty: all were sent). A request that fails as a whole
        fails its ten; the other requests are still made.
        """
        failures: dict[int, DestinationFailure] = {}
        for start in range(0, len(bodies), 10):
            indexes = range(start, min(start + 10, len(bodies)))
            entries: list[dict[str, str | int]] = [{"Id": str(i), "MessageBody": bodies[i]} for i in indexes]
            if delays is not None:
                for i, entry in zip(indexes, entries, strict=True):
                    entry["DelaySeconds"] = delays[i]
            try:
                refused = self.client.send_message_batch(QueueUrl=self.url, Entries=entries).get("Failed") or []
            except Exception as exc:  # ClientError or a transport error
                failures.update(dict.fromkeys(indexes, destination_error(exc, self.name)))
                continue
            for entry in refused:
                failures[int(entry["Id"])] = DestinationFailure(
                    f"{self.name}: message refused ({entry.get('Code')}: {entry.get('Message')})",
                    upstream_code=entry.get("Code"),
                    retryable=not entry.get("SenderFault"),
                )
        return failures


def _region_of(queue_url: str) -> str | None:
    """sqs.<region>.amazonaws.com (or the legacy <region>.queue.amazonaws.com); None for other hosts."""
    labels = (urlsplit(queue_url).hostname or "").split(".")
    if len(labels) >= 4 and labels[0] == "sqs":
        return labels[1]
    if len(labels) >= 4 and labels[1] == "queue":
        return labels[0]
    return None
