"""Alibaba Cloud OSS: ``oss://bucket/prefix/?region=...&endpoint=...`` with the official SDK v2.

``forbid_overwrite=True`` makes every put create-only: 409 FileAlreadyExists means already delivered.
Credentials come from the same alibabacloud-credentials chain as ROS.

Create-only needs a bucket that has never been versioned: "If versioning for a bucket is enabled or
suspended ... the x-oss-forbid-overwrite request header ... does not take effect during uploads"
(https://help.aliyun.com/en/oss/user-guide/overview-78/, "Mutually exclusive features"; the API reference
https://www.alibabacloud.com/help/en/oss/developer-reference/putbucketversioning lists the three states,
disabled by default). On such a bucket every redelivery would write a new version and ``already_present``
would never happen, so the store asks GetBucketVersioning once per process, before its first write, and
refuses a versioned or suspended bucket (and a role that may not ask) with a non-retryable error.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

from aitask_relay.adapters.destinations.store import BucketStore, content_md5
from aitask_relay.adapters.destinations.uri import is_loopback
from aitask_relay.core.errors import DestinationFailure, destination_error
from aitask_relay.core.model import Delivery, Observation


class OssDestination(BucketStore):
    """Create-only delivery to an OSS bucket under a prefix."""

    scheme = "oss"
    # "The name must be 1 to 1,023 bytes in length" (https://www.alibabacloud.com/help/en/oss/user-guide/object-naming-conventions);
    # the OSS SDK refuses a longer one itself (ObjectNameInvalidError), before any request.
    max_key_bytes = 1023

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        region: str,
        endpoint: str | None = None,
        client: Any = None,
        credential: Any = None,
        name: str | None = None,
    ) -> None:
        super().__init__(bucket, prefix, client=client, name=name)
        self._region = region
        self._endpoint = endpoint
        self._credential = credential
        self._unversioned = False  # set once GetBucketVersioning said the bucket was never versioned
        self._versioning_lock = threading.Lock()

    @classmethod
    def from_spec(cls, spec: Any, *, client: Any = None, credential: Any = None, **_: Any) -> OssDestination:
        params = spec.params
        return cls(
            spec.bucket,
            spec.prefix,
            region=params["region"],
            endpoint=params.get("endpoint"),
            client=client,
            credential=credential,
            name=spec.name,
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = build_oss_client(self._region, self._endpoint, self._credential)
        return self._client

    def deliver(
        self, observation: Observation, stored: Sequence[Delivery] = (), *, deadline: float | None = None
    ) -> Delivery:
        self._require_unversioned()  # before any write: nothing is written to a bucket that would duplicate
        # A store does not wait between attempts: the deadline is not needed.
        return super().deliver(observation, stored)

    def _require_unversioned(self) -> None:
        """Raise a non-retryable DestinationFailure unless the bucket's versioning was never turned on.

        Only the good answer is kept: once versioning is on it can only be suspended, never disabled
        again (PutBucketVersioning above), so a refusal would stand too, but asking again costs one
        request per delivery and lets a role that was just granted the permission start working. A
        transient failure is raised as translated (retryable) and asked again next time.
        """
        if self._unversioned:
            return
        with self._versioning_lock:  # deliveries run on several threads; one asks, the others wait
            if self._unversioned:
                return
            import alibabacloud_oss_v2 as oss

            try:
                status = self.client.get_bucket_versioning(oss.GetBucketVersioningRequest(bucket=self.bucket))
            except Exception as exc:  # OperationError wrapping a ServiceError, or a transport error
                error = destination_error(exc, self.name)
                if error.http_status == 403 or error.upstream_code == "AccessDenied":
                    # A role made from a template before this check lacks oss:GetBucketVersioning. Writing
                    # anyway could duplicate silently on a versioned bucket; refusing is loud and loses
                    # nothing the sweeper cannot find again once the grant is added.
                    raise error.restated(
                        f"{self.name}: may not read the versioning state of bucket {self.bucket} "
                        f"({error.upstream_code or error.http_status}); grant oss:GetBucketVersioning on it "
                        "(a RAM role from an older template lacks it). Nothing was written: create-only "
                        "delivery cannot be trusted without knowing the bucket is unversioned",
                        retryable=False,
                    ) from exc
                raise error from exc
            state = getattr(status, "version_status", None)
            if state:  # "Enabled" or "Suspended"
                raise DestinationFailure(
                    f"{self.name}: bucket {self.bucket} has versioning {state}; OSS ignores "
                    "x-oss-forbid-overwrite on a versioned or suspended bucket, so every redelivery would "
                    "write a new copy. Use a bucket whose versioning was never enabled. Nothing was written",
                    upstream_code=f"Versioning{state}",
                    retryable=False,
                )
            self._unversioned = True

    def _exists(self, key: str) -> bool:
        # False on NoSuchKey; raises otherwise. oss:GetObject is the permission it needs:
        # https://help.aliyun.com/en/oss/developer-reference/determine-whether-an-object-exists
        return bool(self.client.is_object_exist(self.bucket, key))

    def _head(self, key: str) -> Mapping[str, str] | None:
        # HeadObject returns the x-oss-meta-* headers (the SDK strips the prefix into ``metadata``):
        # https://help.aliyun.com/en/oss/developer-reference/manage-object-metadata-1
        import alibabacloud_oss_v2 as oss

        try:
            answer = self.client.head_object(oss.HeadObjectRequest(bucket=self.bucket, key=key))
        except Exception as exc:  # 404 NoSuchKey says "not there"; anything else, that we cannot tell
            error = destination_error(exc, self.name)
            if error.http_status == 404:
                return None
            raise error from exc
        return {str(k).lower(): str(v) for k, v in (answer.metadata or {}).items()}

    def _read(self, key: str) -> bytes:
        import alibabacloud_oss_v2 as oss

        try:
            answer = self.client.get_object(oss.GetObjectRequest(bucket=self.bucket, key=key))
            with answer.body as body:
                return cast(bytes, body.read())  # the SDK is untyped (no py.typed, no stubs): read() gives bytes
        except Exception as exc:
            raise destination_error(exc, self.name) from exc

    def _create(self, key: str, body: bytes, content_type: str, metadata: Mapping[str, str]) -> bool:
        # x-oss-forbid-overwrite: true makes the put create-only (409 FileAlreadyExists when the key exists): see
        # https://www.alibabacloud.com/help/en/object-storage-service/latest/disable-overwriting-object-with-the-same-name
        # and https://help.aliyun.com/en/oss/user-guide/0026-00000201
        try:
            self.client.put_object(self._request(key, body, content_type, metadata, forbid_overwrite=True))
        except Exception as exc:  # OperationError wrapping a ServiceError, or a transport error
            error = destination_error(exc, self.name)
            if error.http_status == 409 and error.upstream_code == "FileAlreadyExists":
                return False
            raise error from exc
        return True

    def _put(self, key: str, body: bytes, content_type: str, metadata: Mapping[str, str]) -> None:
        try:
            self.client.put_object(self._request(key, body, content_type, metadata, forbid_overwrite=False))
        except Exception as exc:
            raise destination_error(exc, self.name) from exc

    def _request(
        self, key: str, body: bytes, content_type: str, metadata: Mapping[str, str], *, forbid_overwrite: bool
    ) -> Any:
        import alibabacloud_oss_v2 as oss

        return oss.PutObjectRequest(
            bucket=self.bucket,
            key=key,
            body=body,
            forbid_overwrite=forbid_overwrite,
            content_type=content_type,
            content_md5=content_md5(body),
            metadata=dict(metadata),
        )


def build_oss_client(region: str, endpoint: str | None, credential: Any = None) -> Any:
    """An OSS SDK v2 client on the alibabacloud-credentials chain.

    A loopback endpoint (a local S3-compatible server in tests) is addressed path-style; real OSS
    endpoints use virtual-hosted style, the SDK's default.
    """
    import alibabacloud_oss_v2 as oss

    from aitask_relay.adapters.credentials import provider

    chain = credential if credential is not None else provider()

    def credentials() -> Any:
        current = chain.get_credential()
        return oss.credentials.Credentials(
            current.access_key_id, current.access_key_secret, current.security_token or None
        )

    config = oss.config.load_default()
    config.region = region
    config.credentials_provider = oss.credentials.CredentialsProviderFunc(credentials)
    config.connect_timeout = 5
    config.readwrite_timeout = 20
    config.retry_max_attempts = 3
    if endpoint:
        config.endpoint = endpoint
        host = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}").hostname or ""
        config.use_path_style = is_loopback(host)
    return oss.Client(config)
