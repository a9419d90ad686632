"""The benchmark's verdicts on the targets follow from the recorded figures, and a chosen
scenario brings the ones it needs first."""

import pytest

from benchmarks.run import selected_scenarios, targets_summary


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
    assert "warm_cache_rerender_vs_cold" not in summary
    assert "ab_8_sources_vs_8_renders" not in summary
    assert "standin_10_gflop_2_workers_vs_baseline" not in summary


def test_warm_cache_share_is_judged_on_wall_time() -> None:
    summary = targets_summary(
        {
            "720p_cache_cold": {"wall_seconds": 20.0, "startup_seconds": 5.0},
            "720p_cache_warm_new_source": {"wall_seconds": 8.0, "startup_seconds": 5.0},
            "720p_reference_cache_cold": {"wall_seconds": 40.0, "startup_seconds": 4.0},
            "720p_reference_cache_warm_new_source": {"wall_seconds": 10.0, "startup_seconds": 4.0},
        }
    )
    assert summary["warm_cache_rerender_vs_cold"] == {
        "share": 0.4,
        "share_after_startup": 0.2,
        "target": 0.25,
        "met": False,
    }
    assert summary["warm_cache_rerender_vs_cold_reference_selector"]["share"] == 0.25
    assert summary["warm_cache_rerender_vs_cold_reference_selector"]["met"] is True


def cache_read(analysis: float, fingerprint: float, reads: dict[str, float]) -> dict:
    return {
        "analysis_seconds": analysis,
        "fingerprint_seconds": fingerprint,
        "stores": {
            store: {
                "read_share_of_analysis": round(read / analysis, 4),
                "read_and_fingerprint_share_of_analysis": round((read + fingerprint) / analysis, 4),
            }
            for store, read in reads.items()
        },
    }


def test_a_cache_read_is_judged_with_the_frame_fingerprints_it_checks() -> None:
    summary = targets_summary(
        {
            "cache_read_chunk_detector": cache_read(0.4, 0.1, {"local": 0.002, "s3": 0.01}),
            "cache_read_chunk_detector_and_embeddings": cache_read(7.0, 0.1, {"s3": 0.02}),
        }
    )
    judged = summary["cache_read_vs_analysis"]
    # Parquet alone would pass (0.5%); with fingerprinting the hit costs 25.5% of analysing.
    assert judged["cache_read_chunk_detector_local"] == {
        "share": 0.255,
        "share_without_fingerprint": 0.005,
        "target": 0.05,
        "met": False,
    }
    assert judged["cache_read_chunk_detector_s3"]["met"] is False
    assert judged["cache_read_chunk_detector_and_embeddings_s3"]["met"] is True
    assert "cache_read_vs_analysis" not in targets_summary({})


def test_missing_scenarios_are_not_judged() -> None:
    summary = targets_summary({"720p_engine_2_workers": scenario(30.0, 40.0, 200.0, 0.3)})
    assert "engine_2_workers_vs_baseline" not in summary
    assert summary["outside_work_stages"]["met"] is False


def ab_scaling(sources: int, share: float, detector_calls: int, frames: int = 120) -> dict:
    return {
        "sources": sources,
        "frames": frames,
        "ab_share_of_separate": share,
        "analysed_once": detector_calls == frames,
    }


def test_ab_with_8_sources_is_judged_against_8_separate_renders() -> None:
    summary = targets_summary(
        {
            "ab_1_source": ab_scaling(1, 1.05, 120),
            "ab_8_sources": ab_scaling(8, 0.42, 120),
        }
    )
    assert summary["ab_8_sources_vs_8_renders"] == {"share": 0.42, "target": 0.5, "met": True}
    assert summary["ab_share_of_separate_renders"] == {"1": 1.05, "8": 0.42}
    assert summary["ab_analysed_once"] == {"met": True}


def test_ab_analysing_the_target_more_than_once_fails_its_target() -> None:
    summary = targets_summary({"ab_4_sources": ab_scaling(4, 0.6, 240)})
    assert summary["ab_analysed_once"] == {"met": False}
    # Without the 8-source run the share target is not judged.
    assert "ab_8_sources_vs_8_renders" not in summary


def test_standin_swapper_speedups_use_the_cold_runs() -> None:
    summary = targets_summary(
        {
            "neural_10gflop_sequential_baseline_cold": scenario(1.6, 1.6, 300.0, 0.0),
            "neural_10gflop_engine_1_worker_cold": scenario(1.2, 1.6, 300.0, 0.1),
            "neural_10gflop_engine_2_workers_cold": scenario(2.4, 3.2, 300.0, 0.1),
            # Warm runs are recorded but not judged: a much faster one changes nothing.
            "neural_10gflop_engine_2_workers_warm_new_source": scenario(9.0, 9.0, 300.0, 0.1),
        }
    )
    assert summary["standin_10_gflop_2_workers_vs_baseline"] == {
        "ratio": 1.5,
        "ratio_after_engine_startup": 2.0,
        "target": 1.5,
        "met": True,
    }
    assert summary["standin_10_gflop_two_workers_vs_one"] == {
        "ratio": 2.0,
        "ratio_after_startup": 2.0,
        "target": 1.8,
        "met": True,
    }
    # The embedded-model scenarios were not run, so their targets are not judged.
    assert "engine_2_workers_vs_baseline" not in summary


def test_a_warm_scenario_brings_its_cold_run_first() -> None:
    chosen = selected_scenarios(["neural_10gflop_engine_2_workers_warm_new_source"], quick=False)
    assert chosen == [
        "neural_10gflop_engine_2_workers_cold",
        "neural_10gflop_engine_2_workers_warm_new_source",
    ]
    assert selected_scenarios(["ab_8_sources", "720p_cache_warm_new_source"], quick=False) == [
        "720p_cache_cold",
        "720p_cache_warm_new_source",
        "ab_8_sources",
    ]


def test_quick_keeps_its_four_scenarios_and_unknown_names_are_refused() -> None:
    assert selected_scenarios(None, quick=True) == [
        "720p_cache_cold",
        "720p_cache_warm_new_source",
        "720p_engine_2_workers",
        "720p_sequential_baseline",
    ]
    full = selected_scenarios(None, quick=False)
    assert {"ab_1_source", "ab_8_sources", "neural_10gflop_sequential_2_threads"} <= set(full)
    with pytest.raises(ValueError, match="unknown scenario"):
        selected_scenarios(["ab_3_sources"], quick=False)


def test_kept_ray_jobs_are_judged_on_medians_of_wall_time() -> None:
    from benchmarks.kept_ray_jobs import judged

    def job(wall: float, frames: int, startup: float = 0.2) -> dict[str, object]:
        return {
            "wall_seconds": wall,
            "frames_per_second": frames / wall,
            "startup_seconds": startup,
        }

    rounds = [
        {
            "sequential": job(10, 300),
            "engine": job(9, 300),
            "cold": job(20, 600),
            "warm": job(14, 600),
        },
        {
            "sequential": job(11, 300),
            "engine": job(12, 300),
            "cold": job(22, 600),
            "warm": job(18, 600),
        },
        {
            "sequential": job(10, 300),
            "engine": job(10, 300),
            "cold": job(24, 600, 1.5),
            "warm": job(16, 600),
        },
    ]
    targets = judged(rounds)["targets"]
    assert targets["warm_rerender_vs_cold"] == {"figure": 0.727, "target": "<= 0.75", "met": True}
    assert targets["engine_vs_sequential"]["figure"] == 1.0
    assert targets["engine_vs_sequential"]["met"]
    assert targets["largest_startup_seconds_in_kept_ray"]["figure"] == 1.5
    assert not targets["largest_startup_seconds_in_kept_ray"]["met"]
