"""Verification of the ACS3-HMAC-SHA256 ("V3") request signature, written from the public algorithm.

It is deliberately independent of the SDK's own signing code: a request the real SDK signs must verify
here, so the emulator checks the SDK's wire format instead of agreeing with it by construction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

ALGORITHM = "ACS3-HMAC-SHA256"
_AUTH = re.compile(rf"^{ALGORITHM} Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]+)$")
_REQUIRED_SIGNED = (
    "host",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
)
MAX_CLOCK_SKEW_S = 900


class ApiError(Exception):
    """A request the real service would refuse: HTTP status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class NonceCache:
    """Remembers recent nonces so that a replayed request is refused (as the service does)."""

    def __init__(self, size: int = 100_000) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def use(self, nonce: str) -> bool:
        if nonce in self._seen:
            return False
        self._seen[nonce] = None
        if len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True


def canonical_query(raw_query: str) -> str:
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    return "&".join(f"{key}={quote(value, safe='~')}" for key, value in sorted(pairs))


def canonical_request(
    method: str, path: str, raw_query: str, headers: Mapping[str, list[str]], signed: list[str], payload_hash: str
) -> str:
    lines = "".join(f"{name}:{','.join(sorted(v.strip() for v in headers.get(name, [])))}\n" for name in signed)
    return f"{method}\n{path}\n{canonical_query(raw_query)}\n{lines}\n{';'.join(signed)}\n{payload_hash}"


def verify(
    method: str,
    path: str,
    raw_query: str,
    headers: Mapping[str, list[str]],
    body: bytes,
    secrets: Mapping[str, str],
    nonces: NonceCache,
) -> str:
    """Check one request's signature; return its AccessKey id or raise ApiError.

    ``headers`` maps lower-case names to all their values.
    """
    auth = (headers.get("authorization") or [""])[0]
    match = _AUTH.match(auth)
    if not match:
        raise ApiError(400, "IncompleteSignature", f"The request signature does not conform to {ALGORITHM}.")
    access_key_id, signed_headers, signature = match.groups()
    if access_key_id not in secrets:
        raise ApiError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    signed = signed_headers.split(";")
    if signed != sorted(signed) or any(name not in signed for name in _REQUIRED_SIGNED):
        raise ApiError(400, "IncompleteSignature", "SignedHeaders must be sorted and cover the x-acs-* headers.")
    payload_hash = (headers.get("x-acs-content-sha256") or [""])[0]
    if not hmac.compare_digest(payload_hash, hashlib.sha256(body).hexdigest()):
        raise ApiError(400, "ContentSHA256NotMatched", "x-acs-content-sha256 does not match the body.")
    request = canonical_request(method, path, raw_query, headers, signed, payload_hash)
    string_to_sign = f"{ALGORITHM}\n{hashlib.sha256(request.encode()).hexdigest()}"
    expected = hmac.new(secrets[access_key_id].encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise ApiError(400, "SignatureDoesNotMatch", "The request signature does not conform to Aliyun standards.")
    _check_date((headers.get("x-acs-date") or [""])[0])
    if not nonces.use((headers.get("x-acs-signature-nonce") or [""])[0]):
        raise ApiError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
    return access_key_id


def _check_date(value: str) -> None:
    try:
        stamp = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise ApiError(400, "InvalidTimeStamp.Format", "x-acs-date is not ISO 8601 UTC.") from None
    if abs(time.time() - stamp) > MAX_CLOCK_SKEW_S:
        raise ApiError(400, "InvalidTimeStamp.Expired", "x-acs-date is too far from the server time.")
