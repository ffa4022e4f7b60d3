"""The baselines the relay is measured against, kept small and honest.

- floor: the raw official SDK call (and, for cold start, a process that imports only
  alibabacloud_ros20190910.client and makes one call);
- naive: what a user would write instead of the relay: a sequential loop that builds a client per task,
  always asks for OutputOption=Enabled and writes TaskOutput to a file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def sdk_client(endpoint: str) -> Any:
    """A plain SDK client on the emulator (the demo AccessKey pair from the environment's chain)."""
    from alibabacloud_credentials.client import Client as Credentials
    from alibabacloud_ros20190910.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    return Client(Config(credential=Credentials(), endpoint=endpoint, protocol="http", region_id="cn-hangzhou"))


def floor_fetch(client: Any, task_id: str, out: Path | str, *, probe: bool = False) -> None:
    """One GetAITask with the output (after one without it, with ``probe``), and the template written to a file."""
    from alibabacloud_ros20190910 import models

    if probe:
        client.get_aitask(models.GetAITaskRequest(task_id=task_id, output_option="Disabled"))
    body = client.get_aitask(models.GetAITaskRequest(task_id=task_id, output_option="Enabled")).body.to_map()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    result = body["TaskOutput"]["Result"]
    (folder / f"{task_id}.yaml").write_text(result if isinstance(result, str) else json.dumps(result))


def floor_cold(endpoint: str, task_id: str) -> None:
    """The cold-start floor: import the SDK, build a client, make one call."""
    from alibabacloud_ros20190910 import models

    client = sdk_client(endpoint)
    client.get_aitask(models.GetAITaskRequest(task_id=task_id, output_option="Enabled"))


def naive_relay(endpoint: str, task_ids: list[str], out: Path) -> None:
    """The hand-written relay: sequential, a client per task, always Enabled, TaskOutput to a file."""
    from alibabacloud_ros20190910 import models

    out.mkdir(parents=True, exist_ok=True)
    for task_id in task_ids:
        client = sdk_client(endpoint)
        body = client.get_aitask(models.GetAITaskRequest(task_id=task_id, output_option="Enabled")).body.to_map()
        (out / f"{task_id}.json").write_text(json.dumps(body.get("TaskOutput")))
