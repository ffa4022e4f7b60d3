"""Amazon S3 (or any S3 API): ``s3://bucket/prefix/``, create-only with ``If-None-Match: *``.

412 PreconditionFailed means the key exists: already delivered. 409 ConditionalRequestConflict means a
concurrent write to the same key is in flight: retried a few times, then reported as retryable.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, cast

from aitask_relay.adapters.destinations.store import BucketStore, content_md5
from aitask_relay.core.errors import destination_error

CONFLICT_RETRIES = 3


class S3Destination(BucketStore):
    """Create-only delivery to an S3 bucket under a prefix."""

    scheme = "s3"
    # "The object key name is a sequence of Unicode characters with UTF-8 encoding of up to 1,024 bytes long"
    # (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html); a longer one is KeyTooLongError.
    max_key_bytes = 1024

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: Any = None,
        sse: str | None = None,
        kms_key_id: str | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(bucket, prefix, client=client, name=name)
        self._encryption = {"ServerSideEncryption": sse} if sse else {}
        if kms_key_id:
            self._encryption["SSEKMSKeyId"] = kms_key_id

    @classmethod
    def from_spec(cls, spec: Any, *, client: Any = None, **_: Any) -> S3Destination:
        params = spec.params
        return cls(
            spec.bucket,
            spec.prefix,
            client=client,
            sse=params.get("sse"),
            kms_key_id=params.get("kms_key_id"),
            name=spec.name,
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            from aitask_relay.adapters import aws

            self._client = aws.client("s3")
        return self._client

    def _exists(self, key: str) -> bool:
        return self._head(key) is not None

    def _head(self, key: str) -> Mapping[str, str] | None:
        # HeadObject returns the x-amz-meta-* headers as Metadata (botocore strips the prefix). It needs
        # s3:GetObject, and a missing key is a 404 only with s3:ListBucket on the bucket (a 403 without it,
        # which reads as "cannot tell"): https://docs.aws.amazon.com/AmazonS3/latest/API/API_HeadObject.html
        try:
            answer = self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:  # a 404 says "not there"; anything else, that we cannot tell
            error = destination_error(exc, self.name)
            if error.http_status == 404:
                return None
            raise error from exc
        return {str(k).lower(): str(v) for k, v in (answer.get("Metadata") or {}).items()}

    def _read(self, key: str) -> bytes:
        try:
            # boto3 is untyped here (boto3-stubs not wanted): a StreamingBody's read() is bytes
            return cast(bytes, self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except Exception as exc:
            raise destination_error(exc, self.name) from exc

    def _put(self, key: str, body: bytes, content_type: str, metadata: Mapping[str, str]) -> None:
        try:
            self.client.put_object(**self._request(key, body, content_type, metadata))
        except Exception as exc:
            raise destination_error(exc, self.name) from exc

    def _request(self, key: str, body: bytes, content_type: str, metadata: Mapping[str, str]) -> dict[str, Any]:
        return {
            "Bucket": self.bucket,
            "Key": key,
            "Body": body,
            "ContentType": content_type,
            "ContentMD5": content_md5(body),
            "Metadata": dict(metadata),
            **self._encryption,
        }

    def _create(self, key: str, body: bytes, content_type: str, metadata: Mapping[str, str]) -> bool:
        # If-None-Match: * makes the put create-only: 412 when the key exists. S3 conditional writes:
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html
        request = {**self._request(key, body, content_type, metadata), "IfNoneMatch": "*"}
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                self.client.put_object(**request)
                return True
            except Exception as exc:  # botocore's ClientError and transport errors, translated below
                error = destination_error(exc, self.name)
                if error.http_status == 412:
                    return False
                if error.http_status == 409 and attempt < CONFLICT_RETRIES:
                    time.sleep(0.05 * 2**attempt)
                    continue
                raise error from exc
        raise AssertionError("unreachable")  # pragma: no cover
