"""bench/common.py: per-round ratios, and which rounds other processes disturbed."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))  # the bench scripts import `common`

import common  # noqa: E402


def record(step_s: float, others: float = 0.0) -> dict:
    return {"step_s_median": step_s, "step_s_all": [step_s], "peak_rss_mb": 1000.0, "others_cpu_share": others}


def test_speedups_per_round_and_over_the_quiet_rounds_only():
    ours = [record(2.0), record(4.0, others=0.4), record(2.0)]
    other = [record(3.0), record(4.0), record(2.4)]
    assert common.speedups(other, ours) == {"per_round": [1.5, 1.0, 1.2], "median": 1.2, "quiet_median": 1.35}
    assert common.quiet_rounds({"other": other, "ours": ours}) == [0, 2]


def test_no_quiet_round_gives_no_quiet_median():
    assert common.speedups([record(3.0, others=0.5)], [record(2.0)])["quiet_median"] is None


def test_combine_pools_the_steps_and_keeps_the_highest_peak():
    runs = [record(1.0), {**record(3.0), "peak_rss_mb": 1200.0}, record(2.0)]
    combined = common.combine(runs)
    assert combined["step_s_median"] == 2.0 and combined["step_s_all"] == [1.0, 3.0, 2.0]
    assert combined["peak_rss_mb"] == 1200.0


def test_disturbed_rounds_are_kept_and_made_up_for_by_extra_rounds():
    shares = iter([0.0, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # the first round's second run is disturbed
    runs = common.alternate(["other", "ours"], 2, lambda impl: record(1.0, next(shares)), extra_rounds=5)
    assert [len(r) for r in runs.values()] == [3, 3] and common.quiet_rounds(runs) == [1, 2]
    assert len(common.alternate(["ours"], 2, lambda impl: record(1.0, 0.5), extra_rounds=1)["ours"]) == 3
