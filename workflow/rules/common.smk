# Job lists derived from the config: one training job per (experiment, task, label, seed).
import json
import shlex
import sys

# Only light imports while the workflow is parsed (every SLURM job parses it again): the
# layout module; the algorithm registry (torch, SB3) is imported when a job's resources are
# computed, and the configuration check runs once, at the start of a real run (onstart).
from benchmark import layout

RESULTS = config["results"]
# The suite's CLI from the interpreter running Snakemake: works without an activated venv.
MBBENCH = f"{sys.executable} -m benchmark.cli"


def experiment(exp):
    return config["experiments"][exp]


def label_spec(exp, label):
    return experiment(exp)["algos"][label] or {}


def training_jobs():
    return [
        dict(exp=exp, task=task, algo=label, seed=seed)
        for exp, spec in config["experiments"].items()
        for task in spec["tasks"]
        for label in spec["algos"]
        for seed in spec["seeds"]
    ]


def run_dir(exp, task, algo, seed):
    return str(layout.run_dir(f"{RESULTS}/runs", exp, task, algo, seed))


def done_markers():
    return [f"{run_dir(**job)}/run.done" for job in training_jobs()]


def job_settings(exp, label):
    """(algorithm, steps, preset, settings) of one label of one experiment."""
    spec = experiment(exp)
    algo = label_spec(exp, label)
    settings = {**spec.get("set", {}), **algo.get("set", {})}
    return algo.get("algo", label), algo.get("steps", spec["steps"]), algo.get("preset"), settings


def run_arguments(wildcards):
    """mbbench run arguments of one job: the algorithm, budget, preset and settings."""
    algo, steps, preset, settings = job_settings(wildcards.exp, wildcards.algo)
    args = [f"--algo {algo}", f"--steps {steps}"]
    if preset:
        args.append(f"--preset {preset}")
    args += [f"--set {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in settings.items()]
    return " ".join(args)


def check_training_jobs():
    """Resolve every training job's configuration (algorithm, task, preset, keys, types,
    ranges) before anything runs: a typo fails the whole workflow here, naming the job."""
    from benchmark.errors import ConfigError
    from benchmark.run import resolve_run
    from benchmark.tasks import UnknownTaskError
    from algorithms import UnknownAlgorithmError

    checked = set()
    for job in training_jobs():
        algo, steps, preset, settings = job_settings(job["exp"], job["algo"])
        key = (algo, job["task"], steps, preset, json.dumps(settings, sort_keys=True))
        if key in checked:
            continue
        checked.add(key)
        try:
            resolve_run(algo, job["task"], job["seed"], steps, dict(settings), preset=preset)
        except (ConfigError, UnknownTaskError, UnknownAlgorithmError, ValueError) as error:
            raise ValueError(
                f"config: experiment {job['exp']!r}, task {job['task']!r}, "
                f"algorithm label {job['algo']!r}: {error}"
            ) from None


onstart:
    check_training_jobs()


def figure_experiments():
    return [e for e, s in config["experiments"].items() if s.get("figure", "curves") != "none"]


def plasticity_experiments():
    return [e for e, s in config["experiments"].items() if s.get("plasticity")]


def figure_files():
    files = [f"{RESULTS}/figures/{e}.png" for e in figure_experiments()]
    files += [f"{RESULTS}/figures/{e}_plasticity.png" for e in plasticity_experiments()]
    return files


TABLES = [f"{RESULTS}/tables/final_returns.md", f"{RESULTS}/tables/samples_needed.md"]


# What a training job asks a scheduler for, from its budget and the algorithm's measured speed
# (``seconds_per_1000_steps`` and ``off_policy``, facts of each registered algorithm class).
RUNTIME_MARGIN = 2.0  # machines differ, clusters are busy


def job_budget(wildcards):
    """(algorithm, preset, real steps) of one training job."""
    algo, steps, preset, _ = job_settings(wildcards.exp, wildcards.algo)
    return algo, preset, steps


def algorithm_class(name):
    from algorithms import get_algorithm

    return get_algorithm(name)


def train_runtime_min(wildcards, attempt):
    """Minutes to ask for: measured speed x budget x margin, at least 10; a retry (after a
    time-out, say) asks for ``attempt`` times as much."""
    name, preset, steps = job_budget(wildcards)
    rate = algorithm_class(name).seconds_per_1000(preset)
    return attempt * max(10, round(steps / 1000 * rate * RUNTIME_MARGIN / 60))


def train_mem_mb(wildcards, attempt):
    """Megabytes to ask for: the interpreter, torch and MuJoCo (~1 GB), the model-based
    ensembles and buffers, and for off-policy baselines the replay buffer, held twice while
    a checkpoint is written (at most ~1 KB per stored transition on every task)."""
    name, _, steps = job_budget(wildcards)
    memory = 2000
    if algorithm_class(name).off_policy:
        memory += 2 * min(steps, 1_000_000) // 1000
    return memory * attempt
