"""Speed measurements that print figures (``mbbench perf ...``), not timed tests.

Every figure is set against this machine's fp32 matmul rate, measured in the same run on
large square matrices: the rate a model evaluation cannot beat on this CPU.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from algorithms.common.ensemble import DynamicsEnsemble, EnsembleConfig, LockstepTrainer
from algorithms.common.policy import GaussianMLPPolicy
from algorithms.common.rollout import imagine
from benchmark.cost import mlp_gflop
from benchmark.logger import NullLogger
from benchmark.tasks import make_task


def best_time(fn: Callable[[], object], repeats: int = 3, min_time: float = 0.5) -> float:
    """Seconds per call: the best of ``repeats`` timings, each averaged over >= min_time."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        calls, start = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= min_time:
                break
        best = min(best, elapsed / calls)
    return best


def matmul_peak_gflops(n: int = 2048, min_time: float = 0.5) -> float:
    """fp32 GFLOP/s of an n x n matmul on this machine (torch's own threads)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    seconds = best_time(lambda: torch.mm(a, b, out=out), min_time=min_time)
    return 2 * n**3 / seconds / 1e9


def perf_ensemble(
    task_name: str = "halfcheetah",
    n_tasks: int = 20,
    n_traj: int = 50,
    horizon: int = 50,
    rounds: int = 5,
    print_fn: Callable[[str], None] = print,
) -> dict[str, float]:
    """Training and rollout throughput of the faithful ensemble (5 x (512, 512))."""
    torch.manual_seed(0)
    task = make_task(task_name)
    config = EnsembleConfig()
    peak = matmul_peak_gflops()
    print_fn(f"threads={torch.get_num_threads()} matmul_peak_gflops={peak:.1f} (fp32, 2048^3)")

    ensemble = DynamicsEnsemble(task.obs_dim, task.act_dim, task.model_input_dims, config)
    sizes = [len(task.model_input_dims) + task.act_dim, *config.hidden_sizes, task.obs_dim]
    flops_fwd = mlp_gflop(sizes) * 1e9

    # Training: one Adam step of every model on its own minibatch of 500, all models in
    # lockstep as DynamicsEnsemble.fit steps them.
    batch = config.batch_size
    k_all = list(range(config.num_models))
    n_in = sizes[0]
    inputs = torch.randn(config.num_models, batch, n_in)
    target = torch.randn(config.num_models, batch, task.obs_dim)
    trainer = LockstepTrainer(ensemble)
    seconds = best_time(lambda: trainer.step(k_all, inputs, target))
    samples = batch * config.num_models / seconds
    train_gflops = samples * 3 * flops_fwd / 1e9  # backward ~ 2x forward
    train_ratio = train_gflops / peak
    print_fn(
        f"training: {samples:,.0f} samples/s, {train_gflops:.1f} GFLOP/s "
        f"(ratio {train_ratio:.2f}), batch {batch} per model, {config.num_models} models"
    )

    # Imagined rollouts: n_tasks policies x n_traj trajectories, one model per task group.
    # Two layouts: one shard of trajectories per thread (the suite's default on the CPU), or
    # a single shard whose every op is split over the threads. This machine's speed drifts by
    # tens of percent from minute to minute, so the rollouts are timed in rounds, each between
    # two matmul timings, and the ratio is the median of the rounds' ratios.
    policy = GaussianMLPPolicy(task.obs_dim, task.act_dim, input_dims=task.model_input_dims)
    params = {
        k: v.detach().expand(n_tasks, *v.shape).clone() for k, v in policy.base_params().items()
    }
    frozen = ensemble.frozen()
    start = torch.randn(n_tasks, n_traj, task.obs_dim)
    generator = torch.Generator().manual_seed(0)
    layouts = {"sharded": torch.get_num_threads(), "one shard": 1}

    def rollout(num_shards: int) -> None:
        imagine(
            frozen,
            lambda o, noise: policy.sample(o, params, noise=noise),
            start,
            horizon,
            task.reward_fn,
            task.termination_fn,
            generator=generator,
            num_shards=num_shards,
        )

    model_flops = n_tasks * n_traj * horizon * flops_fwd
    layout_rates: dict[str, list[float]] = {name: [] for name in layouts}
    round_peaks: list[float] = []
    for _ in range(rounds):
        before = matmul_peak_gflops(min_time=0.3)  # each timing: the best of 3 windows
        seconds = {
            name: best_time(lambda s=shards: rollout(s), repeats=3, min_time=0.3)
            for name, shards in layouts.items()
        }
        round_peak = (before + matmul_peak_gflops(min_time=0.3)) / 2
        round_peaks.append(round_peak)
        for name, sec in seconds.items():
            layout_rates[name].append(model_flops / sec / 1e9)
    ratios = {
        name: statistics.median(r / p for r, p in zip(rates, round_peaks, strict=True))
        for name, rates in layout_rates.items()
    }
    rollout_gflops = statistics.median(layout_rates["sharded"])
    steps = rollout_gflops * 1e9 / flops_fwd
    print_fn(
        f"imagined rollouts: {steps:,.0f} model steps/s, {rollout_gflops:.1f} GFLOP/s in the "
        f"models, {n_tasks} tasks x {n_traj} trajectories, horizon {horizon}, "
        f"{layouts['sharded']} shards (one per thread); median of {rounds} rounds"
    )
    print_fn(
        f"rollout layouts, ratio to the matmul rate of their round (median; the rounds' "
        f"matmul rates {min(round_peaks):.0f}-{max(round_peaks):.0f} GFLOP/s): "
        + ", ".join(
            f"{name} {ratio:.2f} ({statistics.median(layout_rates[name]):.1f} GFLOP/s)"
            for name, ratio in ratios.items()
        )
    )

    # Three layouts of one prediction step: a Python loop over models, batched matmuls, and
    # torch.func.vmap of one model's forward pass over the stacked weights.
    k = config.num_models
    rows = n_tasks * n_traj
    obs_k = torch.randn(k, rows // k, task.obs_dim)
    act_k = torch.randn(k, rows // k, task.act_dim)
    weights = [(frozen.w_in, frozen.b_in), *frozen.layers]

    def one_model(x: torch.Tensor, layers: list[tuple[torch.Tensor, torch.Tensor]]):
        for i, (w, b) in enumerate(layers):
            x = torch.addmm(b, x, w)
            if i < len(layers) - 1:
                x = torch.relu(x)
        return x

    vmapped = torch.func.vmap(one_model)
    loop_view = ensemble.frozen("loop")
    predictions = {
        "loop": lambda: loop_view.predict_grouped(obs_k, act_k),
        "bmm": lambda: frozen.predict_grouped(obs_k, act_k),
        "vmap": lambda: vmapped(torch.cat([obs_k, act_k], -1), weights).add_(obs_k),
    }
    reference = predictions["bmm"]()
    for fn in predictions.values():  # the layouts compute the same prediction
        torch.testing.assert_close(fn(), reference, rtol=1e-4, atol=1e-4)
    step_rates = {name: rows * flops_fwd / best_time(fn) / 1e9 for name, fn in predictions.items()}
    print_fn(
        f"one prediction step ({rows} rows, {rows // k} per model, "
        f"{torch.get_num_threads()} threads): "
        + ", ".join(f"{name} {rate:.1f} GFLOP/s" for name, rate in step_rates.items())
        + f" (the suite uses {frozen.grouped_impl})"
    )
    ratio = ratios["sharded"]
    print_fn(f"train_ratio_to_matmul_peak={train_ratio:.2f}")
    print_fn(f"rollout_ratio_to_matmul_peak={ratio:.2f}")
    return {
        "matmul_peak_gflops": peak,
        "train_samples_per_s": samples,
        "train_gflops": train_gflops,
        "rollout_steps_per_s": steps,
        "rollout_gflops": rollout_gflops,
        "rollout_one_shard_gflops": statistics.median(layout_rates["one shard"]),
        "round_matmul_gflops": statistics.median(round_peaks),
        **{f"{name}_gflops": rate for name, rate in step_rates.items()},
        "rollout_ratio_to_matmul_peak": ratio,
        "train_ratio_to_matmul_peak": train_ratio,
    }


def perf_mbmpo(
    task_name: str = "halfcheetah",
    algo: str = "mbmpo",
    overrides: dict | None = None,
    print_fn: Callable[[str], None] = print,
) -> dict[str, float]:
    """Time one faithful MB-MPO iteration (the first: random data, model fit, meta steps)
    through the training code itself, with phase times and imagined-sampling GFLOP/s."""
    from algorithms import get_algorithm
    from benchmark.config import apply_overrides

    cls = get_algorithm(algo)
    config = apply_overrides(cls.Config(), overrides or {})
    task = make_task(task_name)
    peak = matmul_peak_gflops()
    print_fn(f"threads={torch.get_num_threads()} matmul_peak_gflops={peak:.1f} (fp32, 2048^3)")
    logger = NullLogger(eval_every=10**12)  # one evaluation point: the end of the budget
    algorithm = cls(task, config, 0, logger)
    start = time.perf_counter()
    algorithm.train(config.initial_random_steps)  # exactly one iteration
    total = time.perf_counter() - start
    row = logger.rows[-1]
    horizon = config.imagined_horizon or task.horizon
    rollouts_per_step = 2 if config.inner_lr > 0 else 1
    model_steps = (
        config.meta_steps
        * rollouts_per_step
        * config.num_tasks
        * config.imagined_trajectories
        * horizon
    )
    sizes = [len(task.model_input_dims) + task.act_dim, *config.model_hidden_sizes, task.obs_dim]
    gflops = model_steps * mlp_gflop(sizes) * 1e9 / row["time_imagine_s"] / 1e9
    print_fn(
        f"{algo} on {task_name}: {config.meta_steps} meta steps, {config.num_tasks} tasks x "
        f"{config.imagined_trajectories} trajectories x {horizon} steps, "
        f"{config.num_models} models {list(config.model_hidden_sizes)}"
    )
    print_fn(
        f"seconds per phase: collect {row['time_collect_s']:.1f}, model fit "
        f"{row['time_fit_s']:.1f} ({row['model_epochs']:.0f} epochs), imagined sampling "
        f"{row['time_imagine_s']:.1f}, meta (TRPO) steps {row['time_meta_s']:.1f}; "
        f"iteration total {total:.1f}"
    )
    print_fn(
        f"imagined sampling: {model_steps / 1e6:.1f}M model steps, {gflops:.1f} GFLOP/s, "
        f"ratio to matmul peak {gflops / peak:.2f}"
    )
    print_fn(f"seconds_per_iteration={total:.1f}")
    return {"seconds_per_iteration": total, "imagine_gflops": gflops, "peak": peak, **row}


def perf_metrpo(**kwargs) -> dict[str, float]:
    return perf_mbmpo(algo="metrpo", **kwargs)
