"""`make bench`'s pictures, drawn after the measuring from the numbers the benches recorded (measurements.json).

Three PNG files, each drawn only when its series was recorded:
- tracking-lag.png: the finish-to-delivery lag of every drawn task under each tracking policy (bench `tracking`),
  as cumulative distributions of the lag in seconds and of the lag as a share of the task's duration;
- sweep-time.png: a sweep's wall time against the number of tasks listed, the relay's against the ideal sweep's
  and the physical floor (bench `sweep`);
- concurrency-speedup.png: fetch_task's speed-up over the naive sequential relay against the ROS latency, with the
  ideal relay's and the physical bound (bench `concurrency`).

matplotlib's Agg backend writes the files without a screen. ``python bench/plots.py MEASUREMENTS.json OUT_DIR``
draws them again from a recorded file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

POLICIES = {"relay": "relay (shipped schedule)", "doubling": "doubling 30 s .. 900 s", "fixed": "fixed 30 s poller"}


class MeasurementError(ValueError):
    """A recorded series that cannot be drawn: the message names the series and what is wrong with it."""


def draw(measurements: dict[str, Any], out: Path) -> list[Path]:
    """The PNG files for the series in ``measurements`` (the others are left out), written into ``out``."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, whatever MPLBACKEND says
    checks = {"tracking": _tracking_lags, "sweep": _sweep_points, "concurrency": _speedup_points}
    drawers = {"tracking": _tracking, "sweep": _sweep, "concurrency": _concurrency}
    unknown = set(measurements) - set(drawers) - {"measured_on"}
    if unknown:
        raise MeasurementError(f"no plot for the series {sorted(unknown)}; known: {sorted(drawers)}")
    # Every series is checked before any picture is drawn: a bad one leaves the folder as it was.
    checked = {name: check(measurements[name]) for name, check in checks.items() if name in measurements}
    out.mkdir(parents=True, exist_ok=True)
    return [drawers[name](data, out, measurements.get("measured_on", "")) for name, data in checked.items()]


def _figure(title: str, measured_on: str, panels: int = 1) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, panels, figsize=(6.4 * panels, 4.4), layout="constrained")
    figure.suptitle(f"{title}\nmake bench, {measured_on}" if measured_on else title, fontsize=11)
    return figure, axes


def _save(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    # No timestamps in the file, so that drawing the same numbers again gives the same bytes.
    figure.savefig(path, dpi=110, metadata={"Software": None, "CreationDate": None})
    plt.close(figure)
    return path


def _numbers(series: str, values: Any, *, positive: bool = False) -> list[float]:
    if not isinstance(values, list) or not values or not all(isinstance(v, int | float) for v in values):
        raise MeasurementError(f"{series}: expected a non-empty list of numbers, got {str(values)[:80]}")
    if positive and min(values) <= 0:
        raise MeasurementError(f"{series}: expected positive numbers, got {min(values)}")
    return [float(v) for v in values]


def _ecdf(values: list[float]) -> tuple[list[float], list[float]]:
    ordered = sorted(values)
    return ordered, [(i + 1) / len(ordered) for i in range(len(ordered))]


def _tracking_lags(series: Any) -> dict[str, tuple[list[float], list[float]]]:
    if not isinstance(series, dict) or not series or not all(isinstance(v, dict) for v in series.values()):
        raise MeasurementError("tracking: expected {policy: {lags, shares}}")
    return {policy: (_numbers(f"tracking.{policy}.lags", recorded.get("lags")),
                     _numbers(f"tracking.{policy}.shares", recorded.get("shares")))
            for policy, recorded in series.items()}  # fmt: skip


def _tracking(series: dict[str, tuple[list[float], list[float]]], out: Path, measured_on: str) -> Path:
    """Cumulative distributions of the lag (log seconds) and of the lag share, one line per policy."""
    figure, (seconds, shares) = _figure("Finish-to-delivery lag per tracking policy", measured_on, panels=2)
    for policy, (lags, share) in series.items():
        label = f"{POLICIES.get(policy, policy)}, {len(lags)} tasks"
        # A lag of 0 (a look at the very moment a task ended) has no place on a log axis: drawn at 0.1 s (0.01 %).
        seconds.step(*_ecdf([max(lag, 0.1) for lag in lags]), where="post", label=label)
        shares.step(*_ecdf([max(100 * s, 0.01) for s in share]), where="post", label=label)
    seconds.set(xscale="log", xlabel="lag after the task finished (s, log scale)", ylabel="share of tasks delivered",
                title="lag in seconds")  # fmt: skip
    shares.set(xscale="log", xlabel="lag as % of the task's duration (log scale)", title="lag relative to duration")
    for axis in (seconds, shares):
        axis.axhline(0.95, color="grey", linewidth=0.6, linestyle=":")
        axis.set_ylim(0, 1.01)
        axis.grid(True, which="major", alpha=0.3)
    seconds.legend(loc="lower right", fontsize=8)
    return _save(figure, out / "tracking-lag.png")


def _points(series: str, rows: Any, keys: tuple[str, ...]) -> list[dict[str, Any]]:
    if not isinstance(rows, list) or len(rows) < 2:
        raise MeasurementError(f"{series}: expected a list of at least two points, got {str(rows)[:80]}")
    for row in rows:
        missing = [k for k in keys if not isinstance(row, dict) or not isinstance(row.get(k), int | float)]
        if missing:
            raise MeasurementError(f"{series}: a point without {missing}: {str(row)[:80]}")
    return sorted(rows, key=lambda row: row[keys[0]])


def _sweep_points(rows: Any) -> list[dict[str, Any]]:
    return _points("sweep", rows, ("listed", "relay_s", "ideal_s", "physical_s"))


def _speedup_points(rows: Any) -> list[dict[str, Any]]:
    return _points("concurrency", rows, ("latency_ms", "relay_speedup", "ideal_speedup", "physical_speedup"))


def _sweep(points: list[dict[str, Any]], out: Path, measured_on: str) -> Path:
    """Wall time of one sweep against the tasks listed: the relay, the ideal sweep, the physical floor."""
    figure, axis = _figure("Sweep time against the number of tasks listed", measured_on)
    listed = [p["listed"] for p in points]
    axis.plot(listed, [p["relay_s"] for p in points], marker="o", label="relay (sweeper handler, fresh process)")
    axis.plot(listed, [p["ideal_s"] for p in points], marker="s", label="ideal sweep (raw SDK calls, same threads)")
    axis.plot(listed, [p["physical_s"] for p in points], linestyle="--", color="grey",
              label="physical (pages in turn, finished tasks at once)")  # fmt: skip
    finished = points[-1].get("finished_share")
    note = f", {finished:.0%} of them finished" if isinstance(finished, float) else ""
    axis.set(xlabel=f"tasks listed{note}", ylabel="wall time of one sweep (s)", xlim=(0, None), ylim=(0, None))
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, out / "sweep-time.png")


def _concurrency(points: list[dict[str, Any]], out: Path, measured_on: str) -> Path:
    """fetch_task's speed-up over the naive relay against the latency of each ROS call."""
    figure, axis = _figure("fetch_task's concurrency: speed-up over the naive sequential relay", measured_on)
    latency = [p["latency_ms"] for p in points]
    ids, workers = points[0].get("ids"), points[0].get("workers")
    label = f"relay ({workers} at once)" if workers else "relay"
    axis.plot(latency, [p["relay_speedup"] for p in points], marker="o", label=label)
    axis.plot(latency, [p["ideal_speedup"] for p in points], marker="s", label="ideal relay (raw SDK calls, threads)")
    axis.plot(latency, [p["physical_speedup"] for p in points], linestyle="--", color="grey",
              label="physical bound (round trips only)")  # fmt: skip
    axis.set(xscale="log", xlabel="latency of each ROS call (ms, log scale)",
             ylabel=f"speed-up, {ids} finished ids" if ids else "speed-up", ylim=(0, None))  # fmt: skip
    axis.set_xticks(latency, [f"{x:g}" for x in latency])
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=8)
    return _save(figure, out / "concurrency-speedup.png")


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python bench/plots.py MEASUREMENTS.json OUT_DIR", file=sys.stderr)
        return 2
    for path in draw(json.loads(Path(argv[0]).read_text()), Path(argv[1])):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
