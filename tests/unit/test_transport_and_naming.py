"""Transport and naming rules that hold everywhere: TLS verification is never turned off, and no string
can make an object store write outside its prefix."""

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from aitask_relay.adapters.destinations.store import ObjectStore
from aitask_relay.core.errors import DestinationFailure
from aitask_relay.core.model import TaskResult

ROOT = Path(__file__).resolve().parents[2]
CODE = [
    *sorted((ROOT / "layers" / "relay" / "aitask_relay").rglob("*.py")),
    *sorted((ROOT / "functions").rglob("*.py")),
]
TLS_OFF = re.compile(
    r"verify\s*=\s*False|insecure_skip_verify\s*=\s*True|CERT_NONE|check_hostname\s*=\s*False|"
    r"ssl_cert_reqs\s*=\s*['\"]none|_create_unverified_context|disable_ssl\s*=\s*True",
    re.IGNORECASE,
)


def test_no_code_turns_tls_verification_off():
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in CODE for n, line in enumerate(p.read_text().splitlines(), 1)
                 if TLS_OFF.search(line)]  # fmt: skip
    assert CODE and offenders == []


class Recording(ObjectStore):
    def __init__(self, prefix):
        self.name, self.prefix, self.keys = "mem://", prefix, []

    def uri_of(self, key):
        return f"mem://{key}"

    def _create(self, key, body, content_type, metadata):
        self.keys.append(key)
        return True

    def _exists(self, key):  # the rest of the primitives: a FAILURE delivery only creates
        raise AssertionError(f"not expected: _exists({key!r})")

    def _head(self, key):
        raise AssertionError(f"not expected: _head({key!r})")

    def _read(self, key):
        raise AssertionError(f"not expected: _read({key!r})")

    def _put(self, key, body, content_type, metadata):
        raise AssertionError(f"not expected: _put({key!r})")


@settings(max_examples=500, deadline=None)
@given(task_id=st.one_of(st.text(max_size=140), st.from_regex(r"[A-Za-z0-9._/\\-]{1,20}", fullmatch=True)))
def test_no_task_id_escapes_the_prefix(task_id):
    store = Recording("tenant/templates/")
    record = TaskResult(task_id=task_id, observed_at="2026-01-01T00:00:00Z", status="FAILURE", terminal=True)
    from aitask_relay.core.model import Observation

    try:
        store.deliver(Observation(record))
    except DestinationFailure as exc:
        assert exc.retryable is False and store.keys == []  # noqa: PT017 - refused or stored, both checked
        return
    (key,) = store.keys
    assert key.startswith("tenant/templates/") and key.endswith("/task.json")
    segments = key.split("/")
    assert len(segments) == 4 and ".." not in segments and "." not in segments and "" not in segments
