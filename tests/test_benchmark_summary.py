"""The benchmark's verdicts on the targets follow from the recorded figures."""

from benchmarks.run import targets_summary


def scenario(fps: float, after_startup: float, memory: float, overhead: float) -> dict[str, object]:
    return {
        "frames_per_second": fps,
        "frames_per_second_after_startup": after_startup,
        "peak_memory_mib": {"driver": memory - 5, "actor_0": memory},
        "outside_work_stages_share": overhead,
    }


def test_targets_are_judged_from_the_figures() -> None:
    summary = targets_summary(
        {
            "720p_engine_2_workers": scenario(30.0, 40.0, 200.0, 0.10),
            "720p_engine_1_worker": scenario(15.0, 20.0, 200.0, 0.10),
            "720p_sequential_baseline": scenario(25.0, 25.0, 190.0, 0.05),
            "720p_x4_length_engine_2_workers": scenario(35.0, 40.0, 230.0, 0.05),
        }
    )
    assert summary["engine_2_workers_vs_baseline"] == {
        "ratio": 1.2,
        "ratio_after_engine_startup": 1.6,
        "target": 1.5,
        "met": False,
    }
    assert summary["two_workers_vs_one"]["met"] is True
    assert summary["peak_rss_growth_4x_length"] == {"growth": 0.15, "target": 0.1, "met": False}
    assert summary["outside_work_stages"]["met"] is True
    assert summary["ab_8_sources_vs_8_renders"] == {"measured": False, "needs": "issue 6 (A/B)"}
    assert "warm_cache_rerender_vs_cold" not in summary


def test_warm_cache_share_is_judged_on_wall_time() -> None:
    summary = targets_summary(
        {
            "720p_cache_cold": {"wall_seconds": 20.0},
            "720p_cache_warm_new_source": {"wall_seconds": 4.0},
        }
    )
    assert summary["warm_cache_rerender_vs_cold"] == {"share": 0.2, "target": 0.25, "met": True}


def test_missing_scenarios_are_not_judged() -> None:
    summary = targets_summary({"720p_engine_2_workers": scenario(30.0, 40.0, 200.0, 0.3)})
    assert "engine_2_workers_vs_baseline" not in summary
    assert summary["outside_work_stages"]["met"] is False
