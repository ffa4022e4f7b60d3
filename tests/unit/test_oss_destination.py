"""OssDestination's versioning check with a stub client (a unit test of one module: no sockets).

What OSS and the shim do on a versioned bucket is proved against moto's server in the integration tests;
here the stub plays the answers the shim cannot be made to give on demand (AccessDenied on
GetBucketVersioning, a transient failure) and counts the calls made from several threads.
"""

import base64
import hashlib
import threading
from types import SimpleNamespace

import alibabacloud_oss_v2 as oss
import pytest

from aitask_relay.adapters.destinations import build_destination
from aitask_relay.adapters.destinations.oss import OssDestination, build_oss_client
from aitask_relay.core.errors import DestinationFailure
from aitask_relay.core.normalize import normalize

T = "2026-11-29T00:00:00.000Z"


def service_error(status, code, operation="GetBucketVersioning"):
    fields = {"ec": "", "timestamp": "", "request_target": "GET /?versioning"}
    inner = oss.exceptions.ServiceError(status_code=status, code=code, message=code, request_id="R-oss", **fields)
    return oss.exceptions.OperationError(name=operation, error=inner)


class StubOss:
    def __init__(self, versioning=None, error=None, put_errors=(), stored=None, head_error=None, read_error=None):
        self.versioning = versioning
        self.errors = error if isinstance(error, list) else None  # a list: one answer per call, then fine
        self.error = None if isinstance(error, list) else error
        self.asked, self.puts, self.requests = 0, [], []
        self.put_errors = list(put_errors)  # one answer per put (None: written), then written
        # What a HEAD of an existing task.json returns: this version's metadata of a SUCCESS with its template
        self.stored = stored if stored is not None else {"status": "SUCCESS", "template": "template.yaml"}
        self.head_error, self.read_error = head_error, read_error
        self._lock = threading.Lock()

    def get_bucket_versioning(self, request):
        with self._lock:
            self.asked += 1
        error = (self.errors.pop(0) if self.errors else None) if self.errors is not None else self.error
        if error is not None:
            raise error
        return SimpleNamespace(version_status=self.versioning)

    def put_object(self, request):
        with self._lock:
            self.requests.append(request)
            answer = self.put_errors.pop(0) if self.put_errors else None
            if answer is not None:
                raise answer
            self.puts.append(request.key)

    def head_object(self, request):
        if self.head_error is not None:
            raise self.head_error
        return SimpleNamespace(metadata=dict(self.stored))

    def get_object(self, request):
        raise self.read_error


def obs(task_id="t-u"):
    body = {"TaskId": task_id, "Status": "SUCCESS", "TaskType": "GenerateTemplate", "TaskOutput": {"Result": "A: 1\n"}}
    return normalize(body, task_id=task_id, observed_at=T)


def dest(client):
    return OssDestination("relay-bucket", "t/", region="cn-hangzhou", client=client)


def test_a_role_that_may_not_read_the_versioning_is_refused_for_good_and_told_which_grant_is_missing():
    # Given a RAM role from an older template, without oss:GetBucketVersioning
    client = StubOss(error=service_error(403, "AccessDenied"))
    # When a task is delivered
    with pytest.raises(DestinationFailure) as caught:
        dest(client).deliver(obs())
    # Then the delivery is refused, not retryable, naming the bucket and the missing grant; nothing written
    error = caught.value
    assert error.retryable is False and error.upstream_code == "AccessDenied" and error.http_status == 403
    assert "relay-bucket" in error.message and "oss:GetBucketVersioning" in error.message
    assert client.puts == []


def test_a_transient_failure_is_retryable_and_asked_again_next_time():
    # Given GetBucketVersioning failing once with a 503, then answering "never versioned"
    client = StubOss(error=[service_error(503, "ServiceUnavailable")])
    store = dest(client)
    # When delivered twice
    with pytest.raises(DestinationFailure) as caught:
        store.deliver(obs())
    delivery = store.deliver(obs())
    # Then the first is retryable with nothing written, naming the store; the second asks again and writes
    assert caught.value.retryable is True
    assert caught.value.message.startswith("oss://relay-bucket/t/: ServiceUnavailable")
    assert client.asked == 2 and delivery.outcome == "created"
    assert client.puts == ["t/t-u/template.yaml", "t/t-u/task.json"]


def test_an_unversioned_bucket_is_asked_about_once_whatever_the_threads():
    # Given a never-versioned bucket and one store shared by 8 threads (the relay's pool)
    client = StubOss()
    store = dest(client)
    start = threading.Barrier(8)

    def work(n):
        start.wait()
        store.deliver(obs(f"t-{n}"))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then GetBucketVersioning was asked once and every task was written
    assert client.asked == 1 and len(client.puts) == 16


@pytest.mark.parametrize("state", ["Enabled", "Suspended"])
def test_a_versioned_bucket_is_refused_before_any_write(state):
    client = StubOss(versioning=state)
    with pytest.raises(DestinationFailure) as caught:
        dest(client).deliver(obs())
    error = caught.value
    assert error.retryable is False and f"versioning {state}" in error.message
    assert error.upstream_code == f"Versioning{state}"  # what the logs and the task's error record say
    # The message says why it is refused, what to do about it, and that nothing was written
    assert "OSS ignores x-oss-forbid-overwrite on a versioned or suspended bucket" in error.message
    assert "every redelivery would write a new copy" in error.message
    assert "whose versioning was never enabled. Nothing was written" in error.message
    assert client.puts == []


@pytest.mark.parametrize(("status", "code"), [(403, "UserDisable"), (400, "AccessDenied"), (403, "SlowDown")])
def test_a_403_or_an_access_denied_from_get_bucket_versioning_is_refused_for_good(status, code):
    # Given GetBucketVersioning denied, told either by the HTTP status or by the error code alone (whatever
    # the code: one that would otherwise be retried, like SlowDown, does not make the refusal retryable)
    client = StubOss(error=service_error(status, code))
    # When a task is delivered
    with pytest.raises(DestinationFailure) as caught:
        dest(client).deliver(obs())
    # Then it is refused (not retryable), naming the answer, the grant to add and that nothing was written
    error = caught.value
    assert error.retryable is False and f"({code}); grant oss:GetBucketVersioning" in error.message
    assert "Nothing was written: create-only delivery cannot be trusted" in error.message
    assert client.puts == []


URI = "oss://relay-bucket/t/?region=cn-hangzhou"  # its name is the whole URI, query included


def test_a_store_built_from_its_uri_uses_the_given_client_and_is_named_by_the_uri():
    # Given a store built from a URI with a client handed in
    client = StubOss()
    # When a task is delivered
    delivery = build_destination(URI, client=client).deliver(obs())
    # Then the client got both objects and the delivery names the destination as configured
    assert client.puts == ["t/t-u/template.yaml", "t/t-u/task.json"] and delivery.destination == URI


def test_a_store_built_without_a_prefix_writes_at_the_top_of_the_bucket():
    client = StubOss()
    delivery = OssDestination("relay-bucket", region="cn-hangzhou", client=client).deliver(obs())
    assert client.puts == ["t-u/template.yaml", "t-u/task.json"] and delivery.destination == "oss://relay-bucket/"


def md5(body):
    return base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode("ascii")


def test_every_put_is_create_only_with_its_md5_and_a_failure_record_is_replaced_by_an_overwrite():
    # Given a bucket whose task.json records a FAILURE (the task has succeeded since)
    exists = service_error(409, "FileAlreadyExists", "PutObject")
    client = StubOss(put_errors=[None, exists], stored={"status": "FAILURE"})
    # When the SUCCESS is delivered
    delivery = build_destination(URI, client=client).deliver(obs())
    # Then the template and task.json are put create-only, then task.json is overwritten, as JSON
    assert delivery.outcome == "created"
    assert [(r.key, r.forbid_overwrite) for r in client.requests] == [
        ("t/t-u/template.yaml", True),
        ("t/t-u/task.json", True),
        ("t/t-u/task.json", False),
    ]
    assert client.requests[2].content_type == "application/json"
    assert client.requests[2].metadata["status"] == "SUCCESS"
    # and every put carries the MD5 of its body, so a corrupted upload is refused by OSS
    assert all(r.content_md5 == md5(r.body) for r in client.requests)


def test_a_409_other_than_file_already_exists_is_a_failure_not_a_delivery():
    # Given an object OSS refuses with a 409 that does not mean "already there" (a retention policy)
    client = StubOss(put_errors=[service_error(409, "FileImmutable", "PutObject")])
    # When delivered
    with pytest.raises(DestinationFailure) as caught:
        build_destination(URI, client=client).deliver(obs())
    # Then it fails, naming the store and the code: nothing was delivered
    assert caught.value.message.startswith(f"{URI}: FileImmutable") and client.puts == []


def test_a_record_that_cannot_be_headed_is_not_overwritten():
    # Given a task.json already there whose HEAD is denied: the store cannot tell what it records
    exists = service_error(409, "FileAlreadyExists", "PutObject")
    client = StubOss(put_errors=[None, exists], head_error=service_error(403, "AccessDenied", "HeadObject"))
    # When the SUCCESS is delivered
    with pytest.raises(DestinationFailure) as caught:
        build_destination(URI, client=client).deliver(obs())
    # Then it fails, naming the store and the denial, and task.json is never overwritten
    assert caught.value.message.startswith(f"{URI}: AccessDenied") and caught.value.http_status == 403
    assert [r.forbid_overwrite for r in client.requests] == [True, True]


def test_a_record_gone_between_the_put_and_the_head_is_written_again():
    # Given a task.json that answered FileAlreadyExists, then 404 to the HEAD (deleted in between)
    exists = service_error(409, "FileAlreadyExists", "PutObject")
    client = StubOss(put_errors=[None, exists], head_error=service_error(404, "NoSuchKey", "HeadObject"))
    # When the SUCCESS is delivered
    delivery = build_destination(URI, client=client).deliver(obs())
    # Then the missing record is written
    assert delivery.outcome == "created" and client.puts[-1] == "t/t-u/task.json"


def test_a_record_without_metadata_that_cannot_be_read_is_a_failure_naming_the_store():
    # Given a task.json from an older version (no status metadata) whose GetObject is denied
    exists = service_error(409, "FileAlreadyExists", "PutObject")
    denied = service_error(403, "AccessDenied", "GetObject")
    client = StubOss(put_errors=[None, exists], stored={}, read_error=denied)
    # When the SUCCESS is delivered
    with pytest.raises(DestinationFailure) as caught:
        build_destination(URI, client=client).deliver(obs())
    # Then the failure names the store and the upstream code; nothing is overwritten
    assert caught.value.message.startswith(f"{URI}: AccessDenied") and caught.value.upstream_code == "AccessDenied"
    assert len(client.requests) == 2


def test_a_denied_overwrite_of_a_failure_record_is_a_failure_naming_the_store():
    # Given a task.json recording a FAILURE, and a role that may create but not overwrite
    exists = service_error(409, "FileAlreadyExists", "PutObject")
    denied = service_error(403, "AccessDenied", "PutObject")
    client = StubOss(put_errors=[None, exists, denied], stored={"status": "FAILURE"})
    # When the SUCCESS is delivered
    with pytest.raises(DestinationFailure) as caught:
        build_destination(URI, client=client).deliver(obs())
    # Then the overwrite's failure names the store and the upstream code, and is not retried
    error = caught.value
    assert error.message.startswith(f"{URI}: AccessDenied") and error.upstream_code == "AccessDenied"
    assert error.retryable is False and len(client.requests) == 3


class Chain:
    """The alibabacloud-credentials chain's interface: get_credential() with the three fields."""

    def __init__(self, token):
        self.token = token

    def get_credential(self):
        return SimpleNamespace(access_key_id="AK-chain", access_key_secret="secret", security_token=self.token)


@pytest.fixture
def configs(monkeypatch):
    """oss.Client replaced by one that returns its config: what the store would connect with, no socket."""
    monkeypatch.setattr(oss, "Client", lambda config: config)


def test_the_client_is_built_for_the_store_region_with_the_given_credentials_and_bounded_waits(configs):
    # Given a store for a region, with a credential chain that gives an STS token
    store = build_destination(URI, credential=Chain("sts-token"))
    # When its client is built
    config = store.client
    # Then it is for that region, signs with the chain's current credentials and token, and never waits
    # long: a few seconds to connect, 20 to read or write, 3 attempts (a Lambda has minutes, not hours)
    credentials = config.credentials_provider.get_credentials()
    assert config.region == "cn-hangzhou"
    assert (credentials.access_key_id, credentials.access_key_secret) == ("AK-chain", "secret")
    assert credentials.security_token == "sts-token"
    assert (config.connect_timeout, config.readwrite_timeout, config.retry_max_attempts) == (5, 20, 3)


def test_a_chain_without_a_token_signs_without_one(configs):
    # Given long-lived AccessKeys (the chain's token is empty)
    config = build_oss_client("cn-hangzhou", None, Chain(""))
    # Then no empty security token header is sent
    assert config.credentials_provider.get_credentials().security_token is None


@pytest.mark.parametrize(
    ("endpoint", "path_style"),
    [
        ("http://127.0.0.1:9000", True),
        ("localhost:9000", True),
        ("https://oss-cn-hangzhou.aliyuncs.com", False),
        ("oss-cn-hangzhou-internal.aliyuncs.com", False),
    ],
)
def test_only_a_loopback_endpoint_is_addressed_path_style(configs, endpoint, path_style):
    # Given an endpoint, with or without a scheme
    config = build_oss_client("cn-hangzhou", endpoint, Chain(None))
    # Then a local server is addressed path-style, real OSS virtual-hosted style (the SDK's default)
    assert config.endpoint == endpoint and config.use_path_style is path_style
