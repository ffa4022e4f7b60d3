"""Function Compute 3.0 entry points over the same aitask_relay library (no AWS dependency at run time).

- timer_handler: a timer trigger -> the sweep (summary as JSON)
- event_handler: EventBridge / MNS-queue CloudEvents, one or a batch -> fetch and deliver the tasks they name;
  with RELAY_TRACKING_QUEUE (an MNS queue), MNS messages are tracking records, settled as on AWS's queue consumer
- http_handler: the HTTP trigger -> GET /tasks/{id}, GET /tasks/{id}/report, POST /tasks (each route's ROS calls
  end before the invocation's timeout)
"""

import json
import time

from aitask_relay import runtime
from aitask_relay.adapters.observability import invocation
from aitask_relay.triggers import fc

runtime.use_platform("fc")
runtime.config()  # validate the environment at cold start: a bad variable fails the init, by name


def timer_handler(event: object, context: object) -> str:
    with invocation(context, "timer"):
        started = time.monotonic()
        lookback = fc.parse_timer_event(fc.decode_event(event))
        summary = runtime.sweeper().run(fc.remaining_ms(context, started), lookback_seconds=lookback)
        return json.dumps(summary)


def event_handler(event: object, context: object) -> str:
    with invocation(context, "event"):
        started = time.monotonic()
        decoded = fc.decode_event(event)
        answer = fc.handle_events(decoded, runtime.relay(), runtime.fc_tracking(), fc.remaining_ms(context, started))
        return json.dumps(answer, ensure_ascii=False)


def http_handler(event: object, context: object) -> str:
    with invocation(context, "http"):
        started = time.monotonic()
        return json.dumps(
            fc.handle_http(event, runtime.task_api(), fc.remaining_ms(context, started)), ensure_ascii=False
        )
