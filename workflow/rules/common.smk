# Job lists derived from the config: one training job per (experiment, task, label, seed).
import functools
import shlex
import sys

# Only light imports while a cluster job parses the workflow: the layout module; the algorithm
# registry (torch, SB3) is imported when a job's resources are computed, and by the
# configuration check, which the main process alone runs (below).
from benchmark import jobs, layout

RESULTS = config["results"]
# The suite's CLI from the interpreter running Snakemake: works without an activated venv.
MBBENCH = f"{sys.executable} -m benchmark.cli"


def experiment(exp):
    return config["experiments"][exp]


def training_jobs():
    return jobs.training_jobs(config)


def run_dir(exp, task, algo, seed):
    return str(layout.run_dir(f"{RESULTS}/runs", exp, task, algo, seed))


def done_markers():
    return [f"{run_dir(**job)}/run.done" for job in training_jobs()]


def job_settings(exp, label):
    """(algorithm, steps, preset, settings) of one label of one experiment."""
    return jobs.job_settings(config, exp, label)


def run_arguments(wildcards):
    """mbbench run arguments of one job: the algorithm, budget, preset and settings."""
    return " ".join(jobs.run_arguments(config, wildcards.exp, wildcards.algo))


# Every job's settings are resolved (algorithm, task, preset, keys, types, ranges) when the
# workflow is parsed by the main process, so a bad config stops a dry run and a real run alike
# with one line naming the experiment, the label and what is wrong, before anything is written.
# (Jobs on a cluster parse the workflow again; they skip the check and its imports.)
if workflow.is_main_process:
    from benchmark.run import check_training_jobs

    from benchmark.cost import config_rates

    try:
        check_training_jobs(config)
        config_rates(config)
    except ValueError as error:
        sys.exit(str(error))


def figure_experiments():
    return [e for e, s in config["experiments"].items() if s.get("figure", "curves") != "none"]


def plasticity_experiments():
    return [e for e, s in config["experiments"].items() if s.get("plasticity")]


FIGURE_METRIC = config.get("figure_metric", "return_mean")


def figure_flags(exp, metric):
    """mbbench figure's options for experiment ``exp`` plotting ``metric``."""
    spec = experiment(exp)
    return " ".join(
        [
            f"--title {shlex.quote(spec.get('title', exp))}",
            f"--note {shlex.quote(spec.get('note', ''))}",
            "--per-seed" if spec.get("figure") == "per_seed" else "",
            f"--metric {metric}",
        ]
    )


def claims_plasticity_run():
    """The run C5 reads its plasticity grid from: the first experiment's that draws Fig. 2."""
    for exp in plasticity_experiments():
        return exp, run_dir(exp, **experiment(exp)["plasticity"])
    return None, None


def aggregate_experiments():
    """Experiments over two or more tasks: each gets an across-task figure (rliable's)."""
    return [e for e in figure_experiments() if len(experiment(e)["tasks"]) >= 2]


def figure_files():
    files = [f"{RESULTS}/figures/{e}.png" for e in figure_experiments()]
    files += [f"{RESULTS}/figures/{e}_aggregate.png" for e in aggregate_experiments()]
    if FIGURE_METRIC != "return_mean":  # the deterministic evaluation in a second figure
        files += [f"{RESULTS}/figures/{e}_evaluation.png" for e in figure_experiments()]
    files += [f"{RESULTS}/figures/{e}_plasticity.png" for e in plasticity_experiments()]
    if "reference" in config:  # the shipped reference runs, drawn beside this profile's
        files.append(f"{RESULTS}/figures/reference.png")
    return files


TABLES = [f"{RESULTS}/tables/final_returns.md", f"{RESULTS}/tables/samples_needed.md"]


# What a training job asks a scheduler for: its projected time x a margin and its data
# (benchmark/cost.py, rates measured by `mbbench perf --calibrate`), the same projection
# `mbbench plan` prints and `mbbench rehearse` holds one full-size iteration against.


@functools.lru_cache(maxsize=None)
def job_rates():
    """The rates every job's request is projected with (benchmark.cost.config_rates), read once."""
    from benchmark.cost import config_rates

    return config_rates(config)


@functools.lru_cache(maxsize=None)
def job_projection(exp, task, label):
    """(projected seconds, megabytes at the largest data held) of one training job; computed
    once per job (Snakemake asks for runtime and memory separately, on every retry)."""
    from benchmark.cost import memory_mb, project
    from benchmark.tasks import make_task

    algo, steps, preset, settings = job_settings(exp, label)
    secs, peak, imagined = project(algo, preset, steps, settings, task, job_rates())
    spec = make_task(task)
    return secs, memory_mb(peak, spec.obs_dim, spec.act_dim, imagined)


def train_runtime_min(wildcards, attempt):
    """Minutes to ask for (benchmark.cost.runtime_request_min); a retry asks for more."""
    from benchmark.cost import runtime_request_min

    secs, _ = job_projection(wildcards.exp, wildcards.task, wildcards.algo)
    return runtime_request_min(secs, attempt)


def train_mem_mb(wildcards, attempt):
    """Megabytes to ask for (benchmark.cost.memory_mb): the interpreter, torch and MuJoCo, the
    transitions the job will hold at its largest, and a meta step's imagined samples."""
    _, megabytes = job_projection(wildcards.exp, wildcards.task, wildcards.algo)
    return megabytes * attempt
