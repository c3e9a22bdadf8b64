# Figures, tables and the report, from the aggregated table.


rule figure:
    input:
        f"{RESULTS}/summary/runs.csv",
    output:
        png=f"{RESULTS}/figures/{{exp}}.png",
        pdf=f"{RESULTS}/figures/{{exp}}.pdf",
    wildcard_constraints:
        exp="[^/]+(?<!_plasticity)(?<!_evaluation)(?<!_aggregate)",
    params:
        mbbench=MBBENCH,
        flags=lambda wc: figure_flags(wc.exp, FIGURE_METRIC),
        stem=lambda wc, output: output.png[: -len(".png")],
    log:
        f"{RESULTS}/logs/figure_{{exp}}.log",
    shell:
        "{params.mbbench} figure {input} --experiment {wildcards.exp} {params.flags}"
        " --out {params.stem} > {log} 2>&1"


rule figure_evaluation:
    input:
        f"{RESULTS}/summary/runs.csv",
    output:
        png=f"{RESULTS}/figures/{{exp}}_evaluation.png",
        pdf=f"{RESULTS}/figures/{{exp}}_evaluation.pdf",
    params:
        mbbench=MBBENCH,
        flags=lambda wc: figure_flags(wc.exp, "return_mean"),
        stem=lambda wc, output: output.png[: -len(".png")],
    log:
        f"{RESULTS}/logs/figure_{{exp}}_evaluation.log",
    shell:
        "{params.mbbench} figure {input} --experiment {wildcards.exp} {params.flags}"
        " --out {params.stem} > {log} 2>&1"


rule figure_aggregate:
    input:
        f"{RESULTS}/summary/runs.csv",
    output:
        png=f"{RESULTS}/figures/{{exp}}_aggregate.png",
        pdf=f"{RESULTS}/figures/{{exp}}_aggregate.pdf",
    params:
        mbbench=MBBENCH,
        flags=lambda wc: figure_flags(wc.exp, FIGURE_METRIC),
        stem=lambda wc, output: output.png[: -len(".png")],
    log:
        f"{RESULTS}/logs/figure_{{exp}}_aggregate.log",
    shell:
        "{params.mbbench} figure {input} --experiment {wildcards.exp} {params.flags} --aggregate"
        " --out {params.stem} > {log} 2>&1"


rule plasticity:
    input:
        lambda wc: f"{run_dir(wc.exp, **experiment(wc.exp)['plasticity'])}/run.done",
    output:
        png=f"{RESULTS}/figures/{{exp}}_plasticity.png",
        pdf=f"{RESULTS}/figures/{{exp}}_plasticity.pdf",
    params:
        mbbench=MBBENCH,
        run_dir=lambda wc, input: str(Path(input[0]).parent),
        note=lambda wc: shlex.quote(experiment(wc.exp).get("note", "")),
        stem=lambda wc, output: output.png[: -len(".png")],
    log:
        f"{RESULTS}/logs/plasticity_{{exp}}.log",
    shell:
        "{params.mbbench} plasticity {params.run_dir} --note {params.note} --out {params.stem}"
        " > {log} 2>&1"


rule tables:
    input:
        f"{RESULTS}/summary/runs.csv",
    output:
        TABLES + [t.replace(".md", ".csv") for t in TABLES],
    params:
        mbbench=MBBENCH,
        out=lambda wc, output: str(Path(output[0]).parent),
        horizons=" ".join(
            f"--horizon {e}={s['set']['horizon']}"
            for e, s in config["experiments"].items()
            if "horizon" in s.get("set", {})
        ),
        note=shlex.quote(config.get("note", "")),
    log:
        f"{RESULTS}/logs/tables.log",
    shell:
        "{params.mbbench} tables {input} --out {params.out} {params.horizons}"
        " --note {params.note} > {log} 2>&1"


rule claims:
    input:
        runs=f"{RESULTS}/summary/runs.csv",
        plasticity=[f"{d}/run.done" for d in [claims_plasticity_run()[1]] if d],
    output:
        md=f"{RESULTS}/claims.md",
        csv=f"{RESULTS}/claims.csv",
    params:
        mbbench=MBBENCH,
        flags=" ".join(
            [f"--note {shlex.quote(config.get('note', ''))}"]
            + (
                [f"--plasticity {claims_plasticity_run()[1]}"]
                + [f"--plasticity-figure {claims_plasticity_run()[0]}_plasticity"]
                if claims_plasticity_run()[1]
                else []
            )
            + [f"--figure {e}=figures/{e}.png" for e in figure_experiments()]
            + [f"--figure {e}_plasticity=figures/{e}_plasticity.png" for e in plasticity_experiments()]
        ),
        out=lambda wc, output: str(Path(output.md).parent),
    log:
        f"{RESULTS}/logs/claims.log",
    shell:
        "{params.mbbench} claims {input.runs} --out {params.out} {params.flags} > {log} 2>&1"


rule report:
    input:
        runs=f"{RESULTS}/summary/runs.csv",
        figures=figure_files(),
        tables=TABLES,
    output:
        f"{RESULTS}/report.md",
    params:
        mbbench=MBBENCH,
        note=shlex.quote(config.get("note", "")),
    log:
        f"{RESULTS}/logs/report.log",
    shell:
        "{params.mbbench} report {input.runs} --figures {input.figures} --tables {input.tables}"
        " --note {params.note} --out {output} > {log} 2>&1"
