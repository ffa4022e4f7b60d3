"""Alibaba Cloud credentials for ROS and OSS: the standard chain, or an AccessKey pair in Secrets Manager.

- Default: alibabacloud-credentials' chain (ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET / _SECURITY_TOKEN, RRSA/OIDC,
  the CLI profile, the ECS RAM role, a credentials URI). The OSS SDK's own environment provider reads other
  variable names (OSS_ACCESS_KEY_ID), which is why OSS gets this chain through a bridge instead.
- On AWS: ALIBABA_CLOUD_CREDENTIALS_SECRET names a Secrets Manager secret holding
  ``{"AccessKeyId": ..., "AccessKeySecret": ..., "SecurityToken": ... (optional)}``, read through Powertools
  Parameters and cached for five minutes, so a rotated key is picked up without a redeploy.

Both expose ``get_credential()``, which is all the SDKs call. The secret's value is never logged or shown
in an error.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from aitask_relay.core.errors import AccessDenied

SECRET_MAX_AGE_SECONDS = 300


def provider(secret_name: str | None = None) -> Any:
    """The credential provider for ROS and OSS (one per process: built by runtime)."""
    if secret_name:
        return SecretCredentials(secret_name)
    from alibabacloud_credentials.client import Client

    return Client()


class SecretCredentials:
    """An AccessKey pair kept in AWS Secrets Manager."""

    def __init__(self, secret_name: str, *, fetch: Any = None) -> None:
        self.secret_name = secret_name
        self._fetch = fetch

    def get_credential(self) -> Any:
        from alibabacloud_credentials.models import CredentialModel

        try:
            value = self._read()
            key_id, key_secret = value["AccessKeyId"], value["AccessKeySecret"]
            if not isinstance(key_id, str) or not isinstance(key_secret, str) or not key_id or not key_secret:
                raise TypeError
        except AccessDenied:
            raise
        except Exception as exc:  # the secret is missing a field or is not JSON: say so, never show it
            message = f"secret {self.secret_name!r} must be JSON with AccessKeyId and AccessKeySecret strings"
            raise AccessDenied(f"{message} ({type(exc).__name__})") from None
        token = value.get("SecurityToken") or None
        return CredentialModel(
            access_key_id=key_id,
            access_key_secret=key_secret,
            security_token=token,
            type="sts" if token else "access_key",
            provider_name="secrets_manager",
        )

    def _read(self) -> Any:
        if self._fetch is not None:
            return self._fetch(self.secret_name)
        from aws_lambda_powertools.utilities import parameters

        from aitask_relay.adapters import aws

        try:
            return aws.secret(self.secret_name, transform="json", max_age=SECRET_MAX_AGE_SECONDS)
        except parameters.exceptions.TransformParameterError:
            raise ValueError("not JSON") from None
        except Exception as exc:  # GetParameterError: no such secret, no permission, Secrets Manager down
            raise AccessDenied(f"cannot read secret {self.secret_name!r} ({type(exc).__name__})") from None


def profile_region(environ: Mapping[str, str], home: str | None = None) -> str | None:
    """The ``region_id`` of the Alibaba Cloud CLI profile the credential chain reads, or None.

    The chain's CLI profile provider (alibabacloud-credentials, CLIProfileCredentialsProvider) reads
    ``~/.aliyun/config.json``, the profile ALIBABA_CLOUD_PROFILE names or else the file's ``current`` one, unless
    ALIBABA_CLOUD_CLI_PROFILE_DISABLED is true; the aliyun CLI keeps each profile's region there as ``region_id``
    (https://www.alibabacloud.com/help/en/cli/configure-alibaba-cloud-cli). The same profile gives the region here,
    so credentials and region come from one place. A missing or unreadable file, or a profile without a region, is
    None (the region is then ALIBABA_CLOUD_REGION_ID's default): the chain reports a credentials problem itself."""
    config = _cli_config(environ, home)
    if config is None:
        return None
    name = environ.get("ALIBABA_CLOUD_PROFILE") or config.get("current")
    for profile in config.get("profiles") or []:
        if isinstance(profile, Mapping) and profile.get("name") == name:
            region = profile.get("region_id")
            return region if isinstance(region, str) and region else None
    return None


def profile_names(environ: Mapping[str, str], home: str | None = None) -> list[str] | None:
    """The profiles of the aliyun CLI's config file, as the chain's CLI profile provider reads it; None when that
    provider is off (ALIBABA_CLOUD_CLI_PROFILE_DISABLED=true), [] when the file is missing or unreadable."""
    if environ.get("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "").lower() == "true":
        return None
    config = _cli_config(environ, home) or {}
    profiles = config.get("profiles") or []
    return [str(p["name"]) for p in profiles if isinstance(p, Mapping) and isinstance(p.get("name"), str)]


def _cli_config(environ: Mapping[str, str], home: str | None) -> Mapping[str, Any] | None:
    if environ.get("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "").lower() == "true":
        return None
    path = os.path.join(home or environ.get("HOME") or os.path.expanduser("~"), ".aliyun", "config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except (OSError, ValueError):
        return None
    return config if isinstance(config, Mapping) else None
