"""The ``mbbench`` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from algorithms import (
    UnknownAlgorithmError,
    broken_plugins,
    get_algorithm,
    list_algorithms,
    list_unavailable,
)
from benchmark.config import parse_assignments
from benchmark.errors import ConfigError, DiskFullError, RunDirError
from benchmark.tasks import TASKS, UnknownTaskError, list_tasks

USAGE_ERRORS = (ConfigError, UnknownTaskError, UnknownAlgorithmError, RunDirError)
"""Errors caused by the user's input: one line on stderr, exit code 2, nothing written."""


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if text else ""


def cmd_list(args: argparse.Namespace) -> int:
    print("algorithms:")
    for name in list_algorithms():
        cls = get_algorithm(name)
        presets = f" [presets: {', '.join(sorted(cls.presets))}]" if cls.presets else ""
        print(f"  {name:12s} {_first_line(cls.__doc__)}{presets}")
    for missing in list_unavailable():
        print(f"  {missing.name:12s} (not available) {missing.reason}")
    for name, why in sorted(broken_plugins().items()):
        print(f"  {name:12s} (broken) {why}")
    print("tasks:")
    for name in list_tasks():
        spec = TASKS[name]
        print(f"  {name:12s} horizon {spec.horizon:4d}  {spec.env_id:22s} {spec.description}")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    import yaml

    from benchmark.config import describe
    from benchmark.run import RunConfig, configure_algorithm

    cls = get_algorithm(args.algo)
    config = configure_algorithm(cls, args.preset)
    rows = describe(config) + describe(RunConfig(), prefix="run.")
    preset = f"preset {args.preset}" if args.preset else "defaults"
    if args.format == "yaml":
        print(f"# {args.algo} settings ({preset}): mbbench run --algo {args.algo} --config FILE")
        print("# (--set KEY=VALUE overrides this file; env.KWARG sets an env kwarg)")
        for row in rows:
            bounds = f" ({row['bounds']})" if row["bounds"] else ""
            print(f"\n# {row['doc']}{bounds}" if row["doc"] else "")
            value = yaml.safe_dump(row["value"], default_flow_style=True)
            print(f"{row['key']}: {value.removesuffix('...' + chr(10)).strip()}")
        return 0
    print(f"{args.algo}: {_first_line(cls.__doc__)} ({preset})")
    width = max(len(row["key"]) for row in rows)
    for row in rows:
        bounds = f"  [{row['bounds']}]" if row["bounds"] else ""
        print(f"  {row['key']:{width}s} = {row['value']!r}  ({row['type']}){bounds}")
        if row["doc"]:
            print(f"  {'':{width}s}   {row['doc']}")
    if cls.progress_columns:
        print("progress.csv diagnostics (beside the columns every run logs):")
        for column, meaning in cls.progress_columns.items():
            print(f"  {column}: {meaning}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from benchmark.config import load_settings_file
    from benchmark.run import default_run_dir, execute, resolve_run

    overrides = load_settings_file(args.config) if args.config else {}
    overrides |= parse_assignments(args.set or [])
    resolved = resolve_run(args.algo, args.task, args.seed, args.steps, overrides, args.preset)
    out = args.out or default_run_dir(resolved.config)
    progress = "quiet" if args.quiet else args.progress
    execute(
        resolved,
        out,
        device=args.device,
        progress=progress,
        extend=args.extend,
        branch_from=args.branch_from,
    )
    print(out)
    return 0


def cmd_aggregate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from benchmark.analysis.aggregate import aggregate
    from benchmark.rundir import atomic_write_text

    root = Path(args.root)
    if not root.is_dir():
        raise RunDirError(f"{root}: no such results directory")
    table = aggregate(root)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, table.to_csv(index=False))
    counts = table.drop_duplicates("run_dir")["status"].value_counts().to_dict()
    print(f"{out}: {len(table)} rows from {sum(counts.values())} runs {counts}")
    return 0


def _load_results(path: str):
    """The aggregated table of a results folder (run directories) or an aggregated CSV."""
    from pathlib import Path

    import pandas as pd

    from benchmark.analysis.aggregate import aggregate

    source = Path(path)
    if source.is_file():
        return pd.read_csv(source)
    if source.is_dir():
        return aggregate(source)
    raise RunDirError(f"{source}: no such results folder or CSV file")


def cmd_compare(args: argparse.Namespace) -> int:
    import json

    from benchmark.analysis.aggregate import select_labels
    from benchmark.analysis.stats import compare, format_comparison

    table = _load_results(args.results)
    try:
        table = select_labels(table, args.algos)
    except ValueError as error:
        raise ConfigError(f"{args.results}: {error}") from None
    if args.metric not in table.columns:
        columns = sorted(c for c in table.columns if c not in ("run_dir", "experiment"))
        raise ConfigError(
            f"--metric {args.metric!r}: no such progress column in {args.results}; "
            f"columns: {', '.join(columns)}"
        )
    if args.task:
        table = table[table["task"].isin(args.task)]
    try:
        comparison = compare(
            table,
            args.algos[0],
            args.algos[1],
            args.task,
            args.at,
            metric=args.metric,
            include_unfinished=args.include_unfinished,
        )
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if args.format == "csv":
        import pandas as pd

        print(pd.DataFrame(comparison.records()).to_csv(index=False), end="")
    elif args.format == "json":
        document = {
            "records": comparison.records(),
            "aggregates_skipped": comparison.aggregates_skipped,
            "bootstrap": comparison.bootstrap,
        }
        print(json.dumps(document, indent=2))
    else:
        print(format_comparison(comparison))
    return 0


def cmd_figure(args: argparse.Namespace) -> int:
    from pathlib import Path

    from benchmark.analysis.plots import aggregate_figure, learning_curves
    from benchmark.analysis.tables import published_curve_points, published_points

    table = _load_results(args.results)
    stem, title, note = Path(args.out), args.title or "", args.note or ""

    def draw():
        if args.aggregate:
            return aggregate_figure(
                table, args.experiment, stem, title, note, metric=args.metric, at=args.at
            )
        return learning_curves(
            table,
            args.experiment,
            stem,
            title,
            args.per_seed,
            note,
            metric=args.metric,
            published=published_points(table, args.experiment) if args.published else None,
            include_unfinished=args.include_unfinished,
            published_curves=(
                published_curve_points(table, args.experiment) if args.published else None
            ),
        )

    try:
        paths = draw()
    except ValueError as error:
        raise ConfigError(str(error)) from None
    print("\n".join(map(str, paths)))
    return 0


def cmd_plasticity(args: argparse.Namespace) -> int:
    from pathlib import Path

    from benchmark.analysis.plasticity import plasticity_grid
    from benchmark.analysis.plots import plasticity_heatmaps
    from benchmark.run import load_run_algorithm

    grid = plasticity_grid(load_run_algorithm(args.run_dir), n=args.grid)
    paths = plasticity_heatmaps(grid, Path(args.out), args.note or "")
    print("\n".join(map(str, paths)))
    return 0


def cmd_frozen_models(args: argparse.Namespace) -> int:
    from pathlib import Path

    import pandas as pd

    from benchmark.frozen_models import optimise_in_frozen_models
    from benchmark.rundir import atomic_write_text

    shown = ("imagined_return_pre", "meta_kl", "meta_surrogate_gain", "paper_return")
    rows: list[dict] = []

    def report(row: dict) -> None:
        values = "  ".join(f"{k} {row[k]:.4g}" for k in shown if k in row)
        print(f"meta step {row['meta_step']}: {values}", file=sys.stderr, flush=True)
        rows.append(row)  # the CSV so far: an interrupted call keeps its finished steps
        atomic_write_text(Path(args.out), pd.DataFrame(rows).to_csv(index=False))

    optimise_in_frozen_models(
        args.run_dir,
        args.meta_steps,
        args.eval_every,
        parse_assignments(args.set or []),
        report,
    )
    print(args.out)
    return 0


def cmd_claims(args: argparse.Namespace) -> int:
    from pathlib import Path

    from benchmark.analysis import claims
    from benchmark.analysis.report import html_table_page
    from benchmark.rundir import atomic_write_text

    table = _load_results(args.results)
    grid = None
    if args.plasticity:
        from benchmark.analysis.plasticity import plasticity_grid
        from benchmark.run import load_run_algorithm

        grid = plasticity_grid(load_run_algorithm(Path(args.plasticity)), n=args.grid)
    rows = claims.evaluate_claims(table, grid, args.plasticity_figure)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    figures = dict(item.split("=", 1) for item in args.figure or [])
    frame = claims.to_frame(rows)
    atomic_write_text(out / "claims.csv", frame.to_csv(index=False))
    published = claims.published_beside(table, rows)
    atomic_write_text(out / "claims.md", claims.report(rows, figures, args.note or "", published))
    verdicts = frame.drop(columns=["figure"], errors="ignore")
    atomic_write_text(
        out / "claims.html", html_table_page("The paper's claims", verdicts, args.note or "")
    )
    for claim, verdict in claims.summarize(rows).items():
        print(f"{claim}: {verdict}")
    return 0


def cmd_tables(args: argparse.Namespace) -> int:
    from pathlib import Path

    from benchmark.analysis import tables

    table = _load_results(args.results)
    out = Path(args.out)
    horizons = dict(item.split("=") for item in args.horizon or [])
    horizons = {k: int(v) for k, v in horizons.items()}
    final = tables.final_returns(table, horizons)
    # The profile's note heads each table as it labels each figure (a variant says so).
    profile = f"{args.note.strip()}\n\n" if args.note and args.note.strip() else ""
    fit = "model_fit: how the dynamics models were fitted (stopping rule, epoch cap per fit)."
    note = tables.not_available_note()
    written = tables.write_table(
        final,
        out / "final_returns",
        f"{profile}Final evaluation return, mean ± std over seeds. {fit} {note}".rstrip(),
    )
    needed = tables.samples_needed(table, args.fraction)
    written += tables.write_table(
        needed,
        out / "samples_needed",
        f"{profile}Real steps to close {args.fraction:.0%} of the gap between the random policy "
        f"and the best model-free final return. {fit}",
    )
    print("\n".join(map(str, written)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from benchmark.analysis.report import build_report

    build_report(
        Path(args.runs_csv),
        [Path(f) for f in args.figures or []],
        [Path(t) for t in args.tables or []],
        Path(args.out),
        args.note or "",
    )
    print(args.out)
    return 0


def cmd_perf(args: argparse.Namespace) -> int:
    from benchmark import perf

    if args.calibrate:
        import platform
        import tempfile
        import time
        from pathlib import Path

        import torch

        from benchmark.cost import RATES_FILE, calibrate_machine

        # Workflow jobs run one thread each (OMP_NUM_THREADS=1): calibrate as they run.
        torch.set_num_threads(1)
        out = Path(args.out or RATES_FILE)
        note = (
            f"{platform.node()}, {os.cpu_count()} cores, one torch thread per job, "
            f"{time.strftime('%Y-%m-%d')}"
        )
        with tempfile.TemporaryDirectory() as workdir:
            rates = calibrate_machine(Path(workdir), task=args.task or "halfcheetah", note=note)
        rates.save(out)
        for unit, rate in rates.seconds_per.items():
            print(f"{unit}: {rate:.4g} s per unit")
        print(f"patience_epochs: {rates.patience_epochs:.1f}")
        print(f"rates written to {out}")
        return 0
    if args.check:
        return _check_costs(args.check, args.rates)
    if args.target == "ensemble":
        perf.perf_ensemble(task_name=args.task or "halfcheetah")
        return 0
    if not args.algo:
        raise ConfigError("mbbench perf: give a target (ensemble) or --algo")
    get_algorithm(args.algo)  # a clear error for an unknown name
    perf_fn = getattr(perf, f"perf_{args.algo}", None)
    if perf_fn is None:
        raise ConfigError(f"no perf measurement for algorithm {args.algo!r}")
    perf_fn(task_name=args.task or "halfcheetah", overrides=parse_assignments(args.set or []))
    return 0


def _check_costs(results: str, rates_file: str | None) -> int:
    """``mbbench perf --check``: every model-based run under ``results`` that logged each
    iteration, measured against the cost model; the others are listed with the reason."""
    from pathlib import Path

    from benchmark.analysis.aggregate import find_runs
    from benchmark.cost import RATES_FILE, Rates, check_run, format_checks

    root = Path(results)
    if not root.is_dir():
        raise ConfigError(f"{root}: no such results folder")
    rates = Rates.load(rates_file or RATES_FILE)
    checks, skipped = [], []
    for run in find_runs(root):
        try:
            checks.append(check_run(run.path, rates))
        except (ValueError, RunDirError, ConfigError, UnknownAlgorithmError) as error:
            skipped.append(f"{os.path.relpath(run.path, root)}: {error}")
    print(f"rates: {rates.machine or 'unknown machine'}")
    if skipped:
        print("not checked:\n" + "\n".join(f"- {line}" for line in skipped))
    if not checks:
        raise ConfigError(f"{root}: no model-based run that logged every iteration")
    print(format_checks(checks, root))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from pathlib import Path

    import yaml

    from benchmark.cost import config_rates, makespan, project_config

    path = Path(args.configfile)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    if args.cores < 1:
        raise ConfigError(f"--cores must be at least 1, got {args.cores}")
    config = yaml.safe_load(path.read_text())
    rates = config_rates(config, args.rates)
    jobs = project_config(config, rates)
    print(f"rates: {rates.machine or 'unknown machine'}")
    for exp in dict.fromkeys(j.exp for j in jobs):
        mine = [j for j in jobs if j.exp == exp]
        hours = sum(j.seconds for j in mine) / 3600
        longest = max(mine, key=lambda j: j.seconds)
        estimated = sorted({j.label for j in mine if not j.modelled})
        print(
            f"{exp}: {len(mine)} jobs, {hours:,.1f} core-hours, longest {longest.label} on "
            f"{longest.task} {longest.seconds / 3600:,.1f} h"
            + (f" (per-1000-steps estimate: {', '.join(estimated)})" if estimated else "")
        )
    total = sum(j.seconds for j in jobs) / 3600
    wall = makespan([j.seconds for j in jobs], args.cores) / 3600
    print(f"total_core_hours={total:.1f} wall_hours={wall:.1f}")
    return 0


def cmd_rehearse(args: argparse.Namespace) -> int:
    from pathlib import Path

    import yaml

    from benchmark.cost import config_rates
    from benchmark.rehearsal import rehearse, write_summary

    path = Path(args.configfile)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    if args.cores < 1:
        raise ConfigError(f"--cores must be at least 1, got {args.cores}")
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, dict) or not isinstance(config.get("experiments"), dict):
        raise ConfigError(f"{path}: not a workflow config (no experiments)")
    if args.probes_only and args.no_probes:
        raise ConfigError("--probes-only and --no-probes exclude each other")
    out = Path(args.out or f"results/rehearsal/{path.stem}")
    rates = config_rates(config, args.rates)
    if args.rates:  # the rehearsed workflow asks for what the probes are held against
        config["rates"] = str(Path(args.rates).resolve())
    result = rehearse(
        config,
        path.stem,
        out,
        args.cores,
        rates,
        probes=not args.no_probes,
        log=lambda line: print(line, flush=True),
        probes_only=args.probes_only,
    )
    summary = write_summary(result, out.resolve())
    failures = result.failures()
    print(f"summary: {summary}")
    for failure in failures:
        print(f"FAILED: {failure}")
    print("rehearsal passed" if not failures else f"rehearsal failed: {len(failures)} problems")
    return 0 if not failures else 1


def add_metric_option(parser: argparse.ArgumentParser, any_column: bool = False) -> None:
    """``--metric``: which progress column is the return (figures), or any column
    (comparisons: ``any_column``)."""
    help_text = (
        "return_mean (default): the deterministic evaluation; paper_return: what the paper "
        "plotted (stochastic pre-update policy / training rollouts)"
    )
    if any_column:
        help_text += "; or any other progress column (e.g. model_next_loss, policy_std)"
    parser.add_argument(
        "--metric",
        default="return_mean",
        choices=None if any_column else ["return_mean", "paper_return"],
        help=help_text,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mbbench", description="Model-based meta-RL reproducibility benchmark"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p_list = sub.add_parser("list", help="list algorithms and tasks")
    p_list.set_defaults(func=cmd_list)

    p_cfg = sub.add_parser(
        "config", help="an algorithm's settings: values, types, bounds and docstrings"
    )
    p_cfg.add_argument("algo", help="algorithm name (see `mbbench list`)")
    p_cfg.add_argument("--preset", default=None, help="show a named config's values")
    p_cfg.add_argument(
        "--format",
        choices=["text", "yaml"],
        default="text",
        help="yaml: a file `mbbench run --config FILE` accepts",
    )
    p_cfg.set_defaults(func=cmd_config)

    p_run = sub.add_parser(
        "run",
        help="train one (algorithm, task, seed) into a run directory",
        epilog="Every setting, its default, bounds and docstring: mbbench config ALGO "
        "[--preset P]; `mbbench config ALGO --format yaml > FILE` writes a --config file.",
    )
    p_run.add_argument("--algo", required=True, help="algorithm name (see `mbbench list`)")
    p_run.add_argument("--task", required=True, help="task name (see `mbbench list`)")
    p_run.add_argument("--seed", type=int, default=0)
    p_run.add_argument("--steps", type=int, required=True, help="budget of real env steps")
    p_run.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a setting: an algorithm field, run.eval_every / run.eval_episodes / "
        "run.horizon, or env.KWARG for the env (repeatable)",
    )
    p_run.add_argument(
        "--preset", default=None, help="named config of the algorithm (paper, quick)"
    )
    p_run.add_argument(
        "--config",
        metavar="FILE",
        help="YAML file of settings (as `mbbench config ALGO --format yaml` writes); "
        "--set overrides it",
    )
    p_run.add_argument(
        "--out", default=None, help="run directory (default results/runs/manual/...)"
    )
    p_run.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p_run.add_argument(
        "--extend",
        action="store_true",
        help="continue the run in --out (finished or not) to the larger --steps; every other "
        "setting must match. Model-based algorithms only: the result equals a run started "
        "with that budget when the old one ended at the end of an iteration",
    )
    p_run.add_argument(
        "--branch-from",
        metavar="RUN_DIR",
        default=None,
        help="start this run (a new --out) from the checkpoint of the run in RUN_DIR: the same "
        "algorithm, task, seed and run settings, other algorithm settings or a larger budget "
        "(an ablation from a common point; model-based algorithms only). progress.csv begins "
        "with RUN_DIR's rows up to its checkpoint, meta.json records the branch point and "
        "the changed settings; the same command resumes the branch",
    )
    p_run.add_argument(
        "--quiet",
        action="store_true",
        help="no progress output (the same as --progress quiet)",
    )
    p_run.add_argument(
        "--progress",
        choices=["auto", "bar", "lines", "phases", "quiet"],
        default="auto",
        help="auto (default): a live bar on a terminal, else a line per evaluation point; "
        "phases: also a line at every change of phase (collecting, fitting, meta step, "
        "evaluating)",
    )
    p_run.set_defaults(func=cmd_run)

    p_agg = sub.add_parser("aggregate", help="collect every run directory into one CSV")
    p_agg.add_argument("root", help="folder holding run directories (e.g. results/runs)")
    p_agg.add_argument("--out", required=True, help="CSV file to write")
    p_agg.set_defaults(func=cmd_aggregate)

    p_cmp = sub.add_parser("compare", help="is algorithm A better than B? (statistics)")
    p_cmp.add_argument("results", help="results/runs folder or an aggregated runs.csv")
    p_cmp.add_argument(
        "--algos",
        nargs=2,
        required=True,
        metavar=("A", "B"),
        help="two run labels; EXPERIMENT/LABEL where several experiments under the folder "
        "ran the same label (e.g. fitrules/mbmpo_official)",
    )
    p_cmp.add_argument("--task", nargs="+", help="tasks to compare (default: all shared)")
    p_cmp.add_argument("--at", type=float, help="compare at this many real steps (default: final)")
    p_cmp.add_argument(
        "--include-unfinished",
        action="store_true",
        help="with --at: also count runs still in progress that have reached that step",
    )
    add_metric_option(p_cmp, any_column=True)
    p_cmp.add_argument(
        "--format",
        choices=["markdown", "csv", "json"],
        default="markdown",
        help="csv/json: every statistic at full precision (estimates, CIs, test statistics, "
        "p-values, n), one record per task and per aggregate",
    )
    p_cmp.set_defaults(func=cmd_compare)

    p_fig = sub.add_parser("figure", help="learning curves of one experiment (PNG and PDF)")
    p_fig.add_argument("results", help="results/runs folder or an aggregated runs.csv")
    p_fig.add_argument("--experiment", required=True)
    p_fig.add_argument("--out", required=True, help="output path without extension")
    p_fig.add_argument("--title")
    p_fig.add_argument("--note", help="a line under the figure (e.g. 'quick profile: ...')")
    p_fig.add_argument("--per-seed", action="store_true", help="one line per seed (Fig. 4)")
    add_metric_option(p_fig)
    p_fig.add_argument(
        "--published",
        action="store_true",
        help="mark the published numbers of the same task, algorithm and horizon, and draw "
        "the published learning curves of that setting as dashed reference lines",
    )
    p_fig.add_argument(
        "--aggregate",
        action="store_true",
        help="instead of learning curves: across the experiment's tasks (2+), IQM and mean of "
        "normalized scores with stratified bootstrap CIs and performance profiles (rliable)",
    )
    p_fig.add_argument(
        "--at", type=float, help="with --aggregate: scores at this many steps (default: final)"
    )
    p_fig.add_argument(
        "--include-unfinished",
        action="store_true",
        help="also draw runs still in progress (e.g. a long reference run)",
    )
    p_fig.set_defaults(func=cmd_figure)

    p_pla = sub.add_parser("plasticity", help="Fig. 2 heatmaps from an MB-MPO point2d run")
    p_pla.add_argument("run_dir")
    p_pla.add_argument("--out", required=True, help="output path without extension")
    p_pla.add_argument("--grid", type=int, default=50, help="grid points per axis")
    p_pla.add_argument("--note")
    p_pla.set_defaults(func=cmd_plasticity)

    p_frz = sub.add_parser(
        "frozen-models",
        help="more MB-MPO meta steps in a run's last models, no new data: is the policy's "
        "optimisation or the models the limit?",
    )
    p_frz.add_argument("run_dir", help="an MB-MPO or ME-TRPO run directory with a checkpoint")
    p_frz.add_argument("--meta-steps", type=int, default=60, help="meta steps to take (60)")
    p_frz.add_argument(
        "--eval-every", type=int, default=10, help="evaluate the policy every N steps (10)"
    )
    p_frz.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="another algorithm setting for these meta steps, "
        "e.g. fisher_product=finite_difference",
    )
    p_frz.add_argument("--out", required=True, help="CSV of one row per meta step")
    p_frz.set_defaults(func=cmd_frozen_models)

    p_tab = sub.add_parser("tables", help="final returns and samples-needed tables")
    p_tab.add_argument("results", help="results/runs folder or an aggregated runs.csv")
    p_tab.add_argument("--out", required=True, help="output folder")
    p_tab.add_argument("--fraction", type=float, default=0.9, help="of the best model-free return")
    p_tab.add_argument("--horizon", action="append", metavar="EXPERIMENT=H", help="for matching")
    p_tab.add_argument("--note", help="a line above each table (e.g. the profile's variant)")
    p_tab.set_defaults(func=cmd_tables)

    p_cla = sub.add_parser(
        "claims", help="a verdict with a 95%% CI for each of the paper's claims (claims.md/csv)"
    )
    p_cla.add_argument("results", help="results/runs folder or an aggregated runs.csv")
    p_cla.add_argument("--out", required=True, help="output folder")
    p_cla.add_argument("--plasticity", help="an MB-MPO point2d run directory, for C5")
    p_cla.add_argument("--plasticity-figure", default="fig2", help="the experiment C5 links to")
    p_cla.add_argument("--grid", type=int, default=50, help="plasticity grid points per axis")
    p_cla.add_argument(
        "--figure", action="append", metavar="EXPERIMENT=PATH", help="a figure to link to"
    )
    p_cla.add_argument("--note", help="a line under the title")
    p_cla.set_defaults(func=cmd_claims)

    p_rep = sub.add_parser("report", help="assemble results/report.md")
    p_rep.add_argument("runs_csv")
    p_rep.add_argument("--figures", nargs="*")
    p_rep.add_argument("--tables", nargs="*")
    p_rep.add_argument("--note")
    p_rep.add_argument("--out", required=True)
    p_rep.set_defaults(func=cmd_report)

    p_perf = sub.add_parser("perf", help="measure speed against this machine's matmul rate")
    p_perf.add_argument("target", nargs="?", choices=["ensemble"], help="a component to measure")
    p_perf.add_argument("--algo", help="time one faithful iteration of this algorithm")
    p_perf.add_argument("--task", help="task to measure on (default halfcheetah)")
    p_perf.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override")
    p_perf.add_argument(
        "--calibrate",
        action="store_true",
        help="measure this machine's cost rates (a few minutes) for `mbbench plan`",
    )
    p_perf.add_argument("--out", help="--calibrate: rates file (default: the shipped one)")
    p_perf.add_argument(
        "--check",
        metavar="RESULTS",
        help="hold the finished model-based runs under RESULTS against the cost model",
    )
    p_perf.add_argument("--rates", help="--check: rates file (default: the shipped one)")
    p_perf.set_defaults(func=cmd_perf)

    p_plan = sub.add_parser("plan", help="projected core-hours and wall time of a profile")
    p_plan.add_argument("--configfile", required=True, help="workflow config (YAML)")
    p_plan.add_argument("--cores", type=int, default=32, help="cores of the machine (32)")
    p_plan.add_argument(
        "--rates",
        help="rates from `mbbench perf --calibrate --out FILE` (default: the config's `rates`, "
        "else the shipped ones)",
    )
    p_plan.set_defaults(func=cmd_plan)

    p_reh = sub.add_parser(
        "rehearse",
        help="every kind of job of a profile, briefly, through the real workflow; one "
        "full-size iteration per algorithm against its scheduler requests",
    )
    p_reh.add_argument("--configfile", required=True, help="workflow config (YAML)")
    p_reh.add_argument(
        "--out", help="results folder of the rehearsal (default: results/rehearsal/PROFILE)"
    )
    p_reh.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores to use (all)")
    p_reh.add_argument(
        "--rates",
        help="rates from `mbbench perf --calibrate --out FILE` (default: the config's `rates`, "
        "else the shipped ones), for the requests and the probes' projections alike",
    )
    p_reh.add_argument("--no-probes", action="store_true", help="skip the full-size probes")
    p_reh.add_argument(
        "--probes-only",
        action="store_true",
        help="run the probes again into --out, keeping its rehearsal's kills and workflow",
    )
    p_reh.set_defaults(func=cmd_rehearse)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from benchmark.run import RunFailed

    try:
        return args.func(args)
    except USAGE_ERRORS as error:
        print(f"mbbench: error: {error}", file=sys.stderr)
        return 2
    except RunFailed as error:
        print(f"mbbench: {error}", file=sys.stderr)
        return 1
    except DiskFullError as error:
        print(f"mbbench: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into a reader that stopped (`| head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
