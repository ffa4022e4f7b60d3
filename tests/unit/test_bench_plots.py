"""bench/plots.py turns recorded bench numbers into PNG files (a small sample, no bench run)."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import pytest

from relay_devkit.runner import load_module

ROOT = Path(__file__).resolve().parents[2]
plots = load_module("bench_plots", ROOT / "bench" / "plots.py")  # a script of bench/: loaded from its file
PNG = b"\x89PNG\r\n\x1a\n"


def sample() -> dict:
    draw = random.Random(7)
    tracking = {
        policy: {"lags": [draw.lognormvariate(scale, 1) for _ in range(50)] + [0.0],
                 "shares": [draw.uniform(0, 0.5) for _ in range(51)]}
        for policy, scale in (("relay", 2), ("doubling", 4), ("fixed", 3))
    }  # fmt: skip
    sweep = [{"listed": n, "finished_share": 0.2, "relay_s": n * 7e-4, "ideal_s": n * 6e-4, "physical_s": n * 1.3e-4}
             for n in (1000, 2500, 5000, 10000)]  # fmt: skip
    concurrency = [{"latency_ms": ms, "ids": 100, "workers": 32, "relay_speedup": 8 * ms / (ms + 5),
                    "ideal_speedup": 10 * ms / (ms + 4), "physical_speedup": 12.5}
                   for ms in (5, 10, 25, 50, 100)]  # fmt: skip
    return {"measured_on": "x86_64, 2 cores, Python 3.12, 2026-11-30", "tracking": tracking, "sweep": sweep,
            "concurrency": concurrency}


def size(png: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    data = png.read_bytes()
    assert data[:8] == PNG and data[12:16] == b"IHDR", png
    return struct.unpack(">II", data[16:24])


def test_a_recorded_sample_becomes_the_three_pngs(tmp_path):
    # Given a small recorded sample of the three series, When it is drawn
    written = plots.draw(sample(), tmp_path / "plots")
    # Then one PNG per series, of a readable size, is written into the folder
    assert [p.name for p in written] == ["tracking-lag.png", "sweep-time.png", "concurrency-speedup.png"]
    for path in written:
        assert path.parent == tmp_path / "plots"
        width, height = size(path)
        assert width >= 600 and height >= 400, (path.name, width, height)
    assert size(written[0])[0] > size(written[1])[0]  # the lag plot has two panels side by side


def test_drawing_the_same_numbers_again_gives_the_same_bytes(tmp_path):
    # Given the sample drawn twice, Then the files are identical (no timestamp inside: a re-run changes no picture
    # whose numbers did not change)
    first = [p.read_bytes() for p in plots.draw(sample(), tmp_path / "a")]
    second = [p.read_bytes() for p in plots.draw(sample(), tmp_path / "b")]
    assert first == second


def test_only_the_recorded_series_are_drawn(tmp_path):
    # Given a partial run that recorded only the sweep, Then only its picture is written
    recorded = {"sweep": sample()["sweep"]}
    assert [p.name for p in plots.draw(recorded, tmp_path)] == ["sweep-time.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep-time.png"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(sweep=m["sweep"][:1]), "sweep: expected a list of at least two points"),
        (lambda m: m["concurrency"][1].pop("relay_speedup"), r"concurrency: a point without \['relay_speedup'\]"),
        (lambda m: m["tracking"]["fixed"].update(lags=[]), "tracking.fixed.lags: expected a non-empty list"),
        (lambda m: m["tracking"]["relay"].update(shares=["1%"]), "tracking.relay.shares: expected a non-empty list"),
        (lambda m: m.update(latency=[]), r"no plot for the series \['latency'\]"),
    ],
    ids=["one-sweep-point", "point-without-a-value", "no-lags", "shares-not-numbers", "unknown-series"],
)
def test_a_series_that_cannot_be_drawn_is_refused_by_name_and_nothing_is_written(tmp_path, change, message):
    # Given a recorded sample with one series broken
    recorded = sample()
    change(recorded)
    # When it is drawn, Then the error names the series and what is wrong
    with pytest.raises(plots.MeasurementError, match=message):
        plots.draw(recorded, tmp_path / "plots")
    # And no picture at all was written, not even the good series' (every series is checked first)
    assert not (tmp_path / "plots").exists()


def test_the_script_draws_from_a_measurements_file(tmp_path, capsys):
    # Given a measurements.json as make bench writes it, When the script is run on it
    source = tmp_path / "measurements.json"
    source.write_text(json.dumps(sample()))
    assert plots.main([str(source), str(tmp_path / "out")]) == 0
    # Then it prints the files it wrote
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "out" / n) for n in ("tracking-lag.png", "sweep-time.png",
                                                              "concurrency-speedup.png")]  # fmt: skip
