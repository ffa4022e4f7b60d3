"""OssDestination's versioning check with a stub client (a unit test of one module: no sockets).

What OSS and the shim do on a versioned bucket is proved against moto's server in the integration tests;
here the stub plays the answers the shim cannot be made to give on demand (AccessDenied on
GetBucketVersioning, a transient failure) and counts the calls made from several threads.
"""

import threading
from types import SimpleNamespace

import alibabacloud_oss_v2 as oss
import pytest

from aitask_relay.destinations.oss import OssDestination
from aitask_relay.errors import DestinationFailure
from aitask_relay.normalize import normalize

T = "2026-11-29T00:00:00.000Z"


def service_error(status, code):
    fields = {"ec": "", "timestamp": "", "request_target": "GET /?versioning"}
    inner = oss.exceptions.ServiceError(status_code=status, code=code, message=code, request_id="R-oss", **fields)
    return oss.exceptions.OperationError(name="GetBucketVersioning", error=inner)


class StubOss:
    def __init__(self, versioning=None, error=None):
        self.versioning = versioning
        self.errors = error if isinstance(error, list) else None  # a list: one answer per call, then fine
        self.error = None if isinstance(error, list) else error
        self.asked, self.puts = 0, []
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
            self.puts.append(request.key)


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
    # Then the first is retryable with nothing written, the second asks again and writes
    assert caught.value.retryable is True
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
    assert caught.value.retryable is False and f"versioning {state}" in caught.value.message
    assert client.puts == []
