"""The baselines the relay is measured against, kept small and honest.

- floor: the raw official SDK call (and, for cold start, a process that imports only
  alibabacloud_ros20190910.client and makes one call);
- naive: what a user would write instead of the relay: a sequential loop that builds a client per task,
  always asks for OutputOption=Enabled and writes TaskOutput to a file;
- ideal: the relay's own work done with raw calls and nothing else: the same ROS calls (ListAITaskEvents, then
  GetAITask with the output; ListAITasks pages for a sweep) and the same create-only writes (template + task.json)
  to the same store, on as many threads. What the relay adds on top (normalizing, records, checks, logs) is its cost.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

Create = Callable[[str, bytes], None]  # a create-only write of one object (key, body) to a store


def sdk_client(endpoint: str) -> Any:
    """A plain SDK client on the emulator (the demo AccessKey pair from the environment's chain)."""
    from alibabacloud_credentials.client import Client as Credentials
    from alibabacloud_ros20190910.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    return Client(Config(credential=Credentials(), endpoint=endpoint, protocol="http", region_id="cn-hangzhou"))


def floor_fetch(client: Any, task_id: str, out: Path | str) -> None:
    """One GetAITask with the output, and the template written to a file."""
    from alibabacloud_ros20190910 import models

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


def ideal_task(client: Any, task_id: str, create: Create, *, probe: bool = True) -> None:
    """One finished task as the ideal relay handles it: the look (ListAITaskEvents, with ``probe``), then GetAITask
    with the output, and the template and a task.json written create-only."""
    from alibabacloud_ros20190910 import models

    if probe:
        client.list_aitask_events(models.ListAITaskEventsRequest(task_id=task_id, max_results="100"))
    body = client.get_aitask(models.GetAITaskRequest(task_id=task_id, output_option="Enabled")).body.to_map()
    result = body.pop("TaskOutput")["Result"]
    create(f"{task_id}/template.yaml", (result if isinstance(result, str) else json.dumps(result)).encode())
    create(f"{task_id}/task.json", json.dumps(body).encode())


def file_creator(root: Path) -> Create:
    """Create-only, durable file writes (O_EXCL, then fsync), as the file store's guarantee needs."""

    def create(key: str, data: bytes) -> None:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644), "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    return create


def s3_creator(s3: Any, bucket: str) -> Create:
    """Create-only S3 puts (If-None-Match: *), as the S3 store writes."""
    return lambda key, data: s3.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*")


def ideal_sweep(client: Any, page_size: int, workers: int, create: Create) -> int:
    """The ideal sweep: every ListAITasks page in turn, each SUCCESS task fetched with its output and written
    (no probe: the listing said SUCCESS) on ``workers`` threads while the next pages are read. The tasks written."""
    from alibabacloud_ros20190910 import models

    token, started = None, []
    with ThreadPoolExecutor(workers) as pool:
        while True:
            request = models.ListAITasksRequest(max_results=page_size, next_token=token)
            page = client.list_aitasks(request).body.to_map()
            for task in page.get("Tasks") or []:
                if task.get("Status") == "SUCCESS":
                    started.append(pool.submit(ideal_task, client, task["TaskId"], create, probe=False))
            token = page.get("NextToken")
            if not token:
                break
    for future in started:
        future.result()  # raises what a task raised
    return len(started)
