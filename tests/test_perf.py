"""The perf commands run and print their figures (speed itself is measured, not tested)."""

from __future__ import annotations

from benchmark import perf


def test_perf_ensemble_prints_the_ratios_last():
    lines: list[str] = []
    figures = perf.perf_ensemble(horizon=3, rounds=1, print_fn=lines.append)
    assert lines[-2].startswith("train_ratio_to_matmul_peak=")
    assert float(lines[-2].split("=")[1]) == round(figures["train_ratio_to_matmul_peak"], 2)
    assert lines[-1].startswith("rollout_ratio_to_matmul_peak=")
    assert float(lines[-1].split("=")[1]) == round(figures["rollout_ratio_to_matmul_peak"], 2)
    assert figures["matmul_peak_gflops"] > 0 and figures["train_samples_per_s"] > 0


def test_perf_mbmpo_times_one_iteration_by_phase():
    lines: list[str] = []
    overrides = {
        "meta_steps": 1,
        "initial_random_steps": 300,
        "model_max_epochs": 2,
        "model_hidden_sizes": (32, 32),
        "imagined_trajectories": 5,
    }
    figures = perf.perf_mbmpo("point2d", overrides=overrides, print_fn=lines.append)
    assert lines[-1].startswith("seconds_per_iteration=")
    assert any("imagined sampling" in line and "GFLOP/s" in line for line in lines)
    for phase in ("time_collect_s", "time_fit_s", "time_imagine_s", "time_meta_s"):
        assert figures[phase] >= 0
