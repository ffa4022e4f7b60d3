"""boto3 clients, one per (service, region) per process, built on first use and shared by threads.

boto3 is imported here and only when a client is asked for, so a deployment without an AWS destination
or ledger never loads it. Endpoints follow boto3's own AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE>.
"""

from __future__ import annotations

import threading
from typing import Any

from . import __version__

_lock = threading.Lock()
_clients: dict[tuple[str, str | None], Any] = {}


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


def reset() -> None:
    """Forget the cached clients (tests that change the environment)."""
    with _lock:
        _clients.clear()
