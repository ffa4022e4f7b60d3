"""The Alibaba Cloud credential chain (alibabacloud-credentials), one client per process.

ROS and OSS share it: environment (ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET / _SECURITY_TOKEN), RRSA/OIDC,
the CLI profile, the ECS RAM role, a credentials URI. The OSS SDK's own environment provider reads other
variable names (OSS_ACCESS_KEY_ID), which is why OSS gets this chain through a bridge instead.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def default_chain() -> Any:
    """The default credential client (it caches and refreshes temporary credentials itself)."""
    from alibabacloud_credentials.client import Client

    return Client()
