"""`make demo`: the relay end to end on this machine, with no cloud account.

Starts the ROS emulator with the bundled scenario (tasks in every state and template format), replays
every events/fetch_task sample through the fetch_task handler, delivers to a local directory, prints a
table and where everything went, stops the emulator.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from relay_devkit import ROOT
from relay_devkit.emulation import DEMO_SCENARIO, start_emulator
from relay_devkit.events import EVENTS, load_event
from relay_devkit.runner import LambdaContext, load_handler


def main() -> int:
    out = ROOT / "out" / "demo"
    shutil.rmtree(out, ignore_errors=True)
    delivered = out / "templates"
    delivered.mkdir(parents=True)
    log_path = out / "handler.log"
    console = sys.stdout
    emulator = start_emulator(scenario=DEMO_SCENARIO, own_process=True)
    print(f"ROS emulator (python -m ros_emulator) listening on {emulator.endpoint}")
    # With the report stage (docs/destinations.md#the-report-relay_report): the emulator checks each template
    os.environ.update(emulator.environment(delivered.as_uri(), RELAY_REPORT="validate,summary,cost,policy"))
    unexpected = 0
    rows: list[tuple[str, ...]] = []
    try:
        # Powertools writes its JSON logs and EMF metrics to stdout: send them to a file, keep the table here.
        with log_path.open("w", encoding="utf-8") as log:
            sys.stdout = log
            handler = load_handler("fetch_task")
            from aitask_relay.core.errors import InvalidInput

            for path in sorted((EVENTS / "fetch_task").glob("*.json")):
                expect_invalid = path.name.startswith("invalid-")
                try:
                    response = handler(load_event(path), LambdaContext(function_name="fetch_task"))
                except InvalidInput as exc:
                    rows.append((path.name, "-", "rejected", "-", "-", "-", f"InvalidInput: {exc}"))
                    unexpected += not expect_invalid
                    continue
                unexpected += expect_invalid
                for record in response["results"]:
                    rows.append((path.name, *_row(record, delivered)))
    finally:
        sys.stdout = console
        emulator.stop()
    header = ("event", "task", "status", "format", "bytes", "valid / cost a month / actions", "delivered / error")
    _print_table(header, rows)
    print(f"\ntemplates delivered under: {delivered}")
    print(f"handler logs and metrics:  {log_path}")
    print(
        f"files: {sum(1 for p in delivered.rglob('*') if p.is_file())} in {len(list(delivered.iterdir()))} task folders"
    )
    if unexpected:
        print(f"\n{unexpected} event(s) did not behave as their name says", file=sys.stderr)
        return 1
    return 0


def _row(record: dict, delivered: Path) -> tuple[str, ...]:
    if record["error"]:
        outcome = f"error {record['error']['code']}: {record['error']['message']}"
    elif record["deliveries"]:
        outcome = ", ".join(
            f"{d['outcome']} {Path(d['location'][len('file://') :]).relative_to(delivered)}"
            if d["location"]
            else f"{d['outcome']}: {d['error']['message']}"
            for d in record["deliveries"]
        )
    else:
        outcome = "not delivered (still running)" if not record["terminal"] else "-"
    size = "" if record["template_bytes"] is None else str(record["template_bytes"])
    fmt = record["template_format"] or "-"
    return record["task_id"], record["status"] or "-", fmt, size, _report_cell(record.get("report")), outcome


SHORT = {"unsupported_resource_types": "unpriced", "needs_parameters": "needs params", "invalid": "-"}


def _report_cell(report: dict | None) -> str:
    """valid / cost a month / actions from the record's report summary; a part without an answer shows its reason."""
    if not report:
        return "-"
    parts = report["parts"]
    reasons = {part: state.rpartition(":")[2] for part, state in parts.items()}
    if set(reasons.values()) == {"unsupported_format"}:
        return "not checked (not a ROS template)"
    valid = {True: "valid", False: "invalid"}.get(report["valid"], reasons.get("validate", "-"))
    cost = report["monthly_cost"]
    if cost:
        price = f"{cost['amount']:.2f} {cost['currency']}{' (partial)' if cost['partial'] else ''}"
    else:
        price = SHORT.get(reasons.get("cost", "-"), reasons.get("cost", "-"))
    actions = report["policy_actions"]
    return f"{valid} / {price} / {actions if actions is not None else reasons.get('policy', '-')}"


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    widths[-1] = min(widths[-1], 90)
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*(str(c)[:w] for c, w in zip(row, widths, strict=True))))


if __name__ == "__main__":
    sys.exit(main())
