# Job lists derived from the config: one training job per (experiment, task, label, seed).
import json
import shlex
import sys

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
    return f"{RESULTS}/runs/{exp}/{task}/{algo}/seed{seed}"


def done_markers():
    return [f"{run_dir(**job)}/run.done" for job in training_jobs()]


def run_arguments(wildcards):
    """mbbench run arguments of one job: the algorithm, budget, preset and settings."""
    spec = experiment(wildcards.exp)
    algo = label_spec(wildcards.exp, wildcards.algo)
    settings = {**spec.get("set", {}), **algo.get("set", {})}
    args = [
        f"--algo {algo.get('algo', wildcards.algo)}",
        f"--steps {algo.get('steps', spec['steps'])}",
    ]
    if algo.get("preset"):
        args.append(f"--preset {algo['preset']}")
    args += [f"--set {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in settings.items()]
    return " ".join(args)


def figure_experiments():
    return [e for e, s in config["experiments"].items() if s.get("figure", "curves") != "none"]


def plasticity_experiments():
    return [e for e, s in config["experiments"].items() if s.get("plasticity")]


def figure_files():
    files = [f"{RESULTS}/figures/{e}.png" for e in figure_experiments()]
    files += [f"{RESULTS}/figures/{e}_plasticity.png" for e in plasticity_experiments()]
    return files


TABLES = [f"{RESULTS}/tables/final_returns.md", f"{RESULTS}/tables/samples_needed.md"]
