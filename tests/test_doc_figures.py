"""The benchmark figures docs/operations.md quotes are the recorded ones: the newest results
file in benchmarks/results/, rounded as the text rounds them."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = ROOT / "docs" / "operations.md"


def newest_results() -> dict[str, dict]:
    newest = sorted((ROOT / "benchmarks" / "results").glob("*.json"))[-1]
    return json.loads(newest.read_text(encoding="utf-8"))["scenarios"]


def quoted(pattern: str) -> tuple[str, ...]:
    text = " ".join(OPERATIONS.read_text(encoding="utf-8").split())
    found = re.search(pattern, text)
    assert found, f"docs/operations.md no longer says: {pattern}"
    return found.groups()


def test_the_quoted_throughput_is_the_recorded_720p_engine_throughput() -> None:
    scenarios = newest_results()
    one, two = quoted(r"one actor renders ([\d.]+) frames/s after start-up and two render ([\d.]+)")
    assert float(one) == round(
        scenarios["720p_engine_1_worker"]["frames_per_second_after_startup"], 1
    )
    assert float(two) == round(
        scenarios["720p_engine_2_workers"]["frames_per_second_after_startup"], 1
    )


def test_the_quoted_startup_spans_the_recorded_startups() -> None:
    startups = [
        scenario["startup_seconds"]
        for scenario in newest_results().values()
        if scenario.get("startup_seconds")
    ]
    low, high = quoted(r"a job spends (\d+)-(\d+) s starting Ray")
    assert (int(low), int(high)) == (math.floor(min(startups)), math.ceil(max(startups)))


def test_the_quoted_actor_memory_spans_the_recorded_actor_peaks() -> None:
    peaks = [
        mib
        for scenario in newest_results().values()
        for process, mib in scenario.get("peak_memory_mib", {}).items()
        if process.startswith("actor")
    ]
    low, high = quoted(r"an actor peaks at (\d+)-(\d+) MiB")
    assert (int(low), int(high)) == (round(min(peaks)), round(max(peaks)))
