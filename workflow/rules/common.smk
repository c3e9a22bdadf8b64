# Job list derived from the config: one training job per (experiment, task, algo, seed).
import json
import sys

RESULTS = config["results"]
# The suite's CLI from the interpreter running Snakemake: works without an activated venv.
MBBENCH = f"{sys.executable} -m benchmark.cli"


def training_jobs():
    jobs = []
    for exp, spec in config["experiments"].items():
        for task in spec["tasks"]:
            for algo in spec["algos"]:
                for seed in spec["seeds"]:
                    jobs.append(dict(exp=exp, task=task, algo=algo, seed=seed))
    return jobs


def run_dir(job):
    return f"{RESULTS}/runs/{job['exp']}/{job['task']}/{job['algo']}/seed{job['seed']}"


def done_markers():
    return [f"{run_dir(job)}/run.done" for job in training_jobs()]


def run_arguments(wildcards):
    """mbbench run arguments of one job: the experiment's settings, then the algorithm's."""
    spec = config["experiments"][wildcards.exp]
    algo_spec = spec["algos"][wildcards.algo] or {}
    settings = {**spec.get("set", {}), **algo_spec.get("set", {})}
    args = [f"--steps {algo_spec.get('steps', spec['steps'])}"]
    if algo_spec.get("preset"):
        args.append(f"--preset {algo_spec['preset']}")
    args += [f"--set {key}={json.dumps(value)!r}" for key, value in settings.items()]
    return " ".join(args)
