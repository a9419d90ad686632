"""The issue's targets judged from recorded figures. A target whose scenarios were not run in
this invocation is left out rather than judged."""

from collections.abc import Mapping

from benchmarks.cache_read import CACHE_READ_SCENARIOS, READ_TARGET_SHARE
from benchmarks.facefusion_overhead import FACEFUSION_OVERHEAD, RATIO_TARGET
from benchmarks.measure import as_float
from benchmarks.model_memory import SCENARIO as MEMORY_SCENARIO
from benchmarks.model_memory import actor_memory_target

Results = Mapping[str, Mapping[str, object]]

NEURAL = "neural_10gflop"
NEURAL_BASELINE = f"{NEURAL}_sequential_baseline_cold"
NEURAL_ONE_WORKER = f"{NEURAL}_engine_1_worker_cold"
NEURAL_TWO_WORKERS = f"{NEURAL}_engine_2_workers_cold"
AB_PREFIX = "ab_"
AB_SHARE_TARGET = 0.5
BASELINE_SPEEDUP_TARGET = 1.5
WORKER_SPEEDUP_TARGET = 1.8
WARM_CACHE_TARGET = 0.25
# target -> the scenario pair (PREFIX_cold, PREFIX_warm_new_source) it compares.
WARM_CACHE_PAIRS = {
    "warm_cache_rerender_vs_cold": "720p_cache",
    "warm_cache_rerender_vs_cold_reference_selector": "720p_reference_cache",
    "warm_cache_rerender_vs_cold_sequential": "720p_sequential_cache",
}


def targets_summary(results: Results) -> dict[str, object]:
    summary: dict[str, object] = {}
    speedups = (
        ("engine_2_workers_vs_baseline", "720p_engine_2_workers", "720p_sequential_baseline",
         BASELINE_SPEEDUP_TARGET, "ratio_after_engine_startup"),
        ("two_workers_vs_one", "720p_engine_2_workers", "720p_engine_1_worker",
         WORKER_SPEEDUP_TARGET, "ratio_after_startup"),
        ("standin_10_gflop_2_workers_vs_baseline", NEURAL_TWO_WORKERS, NEURAL_BASELINE,
         BASELINE_SPEEDUP_TARGET, "ratio_after_engine_startup"),
        ("standin_10_gflop_two_workers_vs_one", NEURAL_TWO_WORKERS, NEURAL_ONE_WORKER,
         WORKER_SPEEDUP_TARGET, "ratio_after_startup"),
    )  # fmt: skip
    for key, faster, slower, target, after_startup_key in speedups:
        if faster in results and slower in results:
            summary[key] = speedup(results[faster], results[slower], target, after_startup_key)
    short, long = (
        results.get("720p_engine_2_workers"),
        results.get("720p_x4_length_engine_2_workers"),
    )
    if short and long:
        growth = peak_memory(long) / peak_memory(short) - 1.0
        summary["peak_rss_growth_4x_length"] = {
            "growth": round(growth, 3),
            "target": 0.10,
            "met": growth <= 0.10,
        }
    if short:
        share = as_float(short["outside_work_stages_share"])
        summary["outside_work_stages"] = {"share": share, "target": 0.15, "met": share <= 0.15}
    for key, prefix in WARM_CACHE_PAIRS.items():
        cold, warm = results.get(f"{prefix}_cold"), results.get(f"{prefix}_warm_new_source")
        if cold and warm:
            summary[key] = warm_cache_share(cold, warm)
    overhead = results.get(FACEFUSION_OVERHEAD)
    if overhead and overhead.get("ratio_to_facefusion") is not None:
        ratio = as_float(overhead["ratio_to_facefusion"])
        summary["facefusion_overhead_ratio"] = {
            "ratio": ratio,
            "target": RATIO_TARGET,
            "met": ratio >= RATIO_TARGET,
        }
    summary.update(cache_read_targets(results))
    summary.update(ab_targets(results))
    if MEMORY_SCENARIO in results:
        summary["actor_peak_memory_published_costs"] = actor_memory_target(results[MEMORY_SCENARIO])
    return summary


def warm_cache_share(cold: Mapping[str, object], warm: Mapping[str, object]) -> dict[str, object]:
    """A warm re-render's wall time over the cold run's, with the ratio after start-up beside."""
    share = as_float(warm["wall_seconds"]) / as_float(cold["wall_seconds"])
    after_startup = seconds_after_startup(warm) / seconds_after_startup(cold)
    return {
        "share": round(share, 3),
        "share_after_startup": round(after_startup, 3),
        "target": WARM_CACHE_TARGET,
        "met": share <= WARM_CACHE_TARGET,
    }


def seconds_after_startup(entry: Mapping[str, object]) -> float:
    return as_float(entry["wall_seconds"]) - as_float(entry["startup_seconds"])


def cache_read_targets(results: Results) -> dict[str, object]:
    """Reading a chunk from the cache against analysing it, per analysis and store. Judged
    on the whole cost of a hit, fingerprinting the decoded frames included."""
    judged: dict[str, object] = {}
    for name in CACHE_READ_SCENARIOS:
        entry = results.get(name)
        if not entry:
            continue
        stores = entry["stores"]
        assert isinstance(stores, dict)
        for store, figures in stores.items():
            share = as_float(figures["read_and_fingerprint_share_of_analysis"])
            judged[f"{name}_{store}"] = {
                "share": share,
                "share_without_fingerprint": figures["read_share_of_analysis"],
                "target": READ_TARGET_SHARE,
                "met": share < READ_TARGET_SHARE,
            }
    return {"cache_read_vs_analysis": judged} if judged else {}


def speedup(
    faster: Mapping[str, object],
    slower: Mapping[str, object],
    target: float,
    after_startup_key: str,
) -> dict[str, object]:
    """Frames per second of `faster` over `slower`, judged on wall time (start-up included)
    as the ratio is shown, to two decimals, so the verdict never contradicts the figure."""
    ratio = round(as_float(faster["frames_per_second"]) / as_float(slower["frames_per_second"]), 2)
    steady = as_float(faster["frames_per_second_after_startup"]) / as_float(
        slower["frames_per_second_after_startup"]
    )
    return {
        "ratio": ratio,
        after_startup_key: round(steady, 2),
        "target": target,
        "met": ratio >= target,
    }


def ab_targets(results: Results) -> dict[str, object]:
    """A/B with 8 sources in at most half the time of 8 renders, and every A/B analysed once."""
    scaling = {name: entry for name, entry in results.items() if name.startswith(AB_PREFIX)}
    if not scaling:
        return {}
    targets: dict[str, object] = {
        "ab_share_of_separate_renders": {
            str(entry["sources"]): entry["ab_share_of_separate"] for entry in scaling.values()
        },
        "ab_analysed_once": {
            "met": all(entry["analysed_once"] is True for entry in scaling.values()),
        },
    }
    eight = results.get("ab_8_sources")
    if eight:
        share = as_float(eight["ab_share_of_separate"])
        targets["ab_8_sources_vs_8_renders"] = {
            "share": share,
            "target": AB_SHARE_TARGET,
            "met": share <= AB_SHARE_TARGET,
        }
    return targets


def peak_memory(entry: Mapping[str, object]) -> float:
    memory = entry["peak_memory_mib"]
    assert isinstance(memory, dict)
    return max(as_float(value) for value in memory.values())
