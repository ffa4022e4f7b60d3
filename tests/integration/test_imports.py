"""Lazy imports: loading fetch_task (a file-destination deployment) pulls in no SDK it does not use."""

import json
import subprocess
import sys

from relay_local import ROOT

# Powertools imports the botocore package itself (0.4 ms, for its user-agent hook); a client or session
# is what costs, so those are what must not load.
FORBIDDEN = {"boto3", "botocore.session", "botocore.client", "pika", "redis", "alibabacloud_oss_v2", "aws_xray_sdk"}


def test_fetch_task_loads_no_aws_sdk_broker_client_or_xray():
    code = (
        "import json, sys; sys.path.insert(0, 'tools'); from relay_local import load_handler; "
        "load_handler('fetch_task'); print(json.dumps(sorted(sys.modules)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert not loaded & FORBIDDEN
    assert "aitask_relay.relay" in loaded
