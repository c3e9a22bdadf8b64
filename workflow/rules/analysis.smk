# Figures, tables and the report, from the aggregated table.


rule figure:
    input:
        f"{RESULTS}/summary/runs.csv",
    output:
        png=report(
            f"{RESULTS}/figures/{{exp}}.png",
            caption="../report/figure.rst",
            category="Figures",
            subcategory="{exp}",
            labels={"experiment": "{exp}", "figure": "learning curves"},
        ),
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
        png=report(
            f"{RESULTS}/figures/{{exp}}_evaluation.png",
            caption="../report/figure_evaluation.rst",
            category="Figures",
            subcategory="{exp}",
            labels={"experiment": "{exp}", "figure": "deterministic evaluation"},
        ),
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
        png=report(
            f"{RESULTS}/figures/{{exp}}_aggregate.png",
            caption="../report/figure_aggregate.rst",
            category="Figures",
            subcategory="{exp}",
            labels={"experiment": "{exp}", "figure": "across tasks (IQM, profiles)"},
        ),
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


ruleorder: reference_figure > figure


rule reference_figure:
    input:
        config["reference"]["runs"] if "reference" in config else [],
    output:
        png=report(
            f"{RESULTS}/figures/reference.png",
            caption="../report/reference.rst",
            category="Reference runs (shipped, not run by this profile)",
            labels={"figure": "MB-MPO against the published curve"},
        ),
        pdf=f"{RESULTS}/figures/reference.pdf",
    params:
        mbbench=MBBENCH,
        flags=lambda wc: " ".join(
            [
                f"--experiment {shlex.quote(config['reference']['experiment'])}",
                f"--title {shlex.quote(config['reference']['title'])}",
                f"--note {shlex.quote(config['reference'].get('note', ''))}",
                "--metric paper_return --published --include-unfinished",
            ]
        ),
        stem=lambda wc, output: output.png[: -len(".png")],
    log:
        f"{RESULTS}/logs/figure_reference.log",
    shell:
        "{params.mbbench} figure {input} {params.flags} --out {params.stem} > {log} 2>&1"


rule plasticity:
    input:
        lambda wc: f"{run_dir(wc.exp, **experiment(wc.exp)['plasticity'])}/run.done",
    output:
        png=report(
            f"{RESULTS}/figures/{{exp}}_plasticity.png",
            caption="../report/figure_plasticity.rst",
            category="Figures",
            subcategory="{exp}",
            labels={"experiment": "{exp}", "figure": "policy plasticity (Fig. 2)"},
        ),
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
        TABLES
        + [t.replace(".md", ".csv") for t in TABLES]
        + [
            report(
                t.replace(".md", ".html"),
                caption="../report/tables.rst",
                category="Tables",
                labels={"table": Path(t).stem.replace("_", " ")},
            )
            for t in TABLES
        ],
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
        html=report(
            f"{RESULTS}/claims.html",
            caption="../report/claims.rst",
            category="Claims",
            labels={"table": "verdicts"},
        ),
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
        report(
            f"{RESULTS}/report.md",
            caption="../report/report.rst",
            category="Report",
            labels={"file": "report.md (figures, tables and failed runs in one page)"},
        ),
    params:
        mbbench=MBBENCH,
        note=shlex.quote(config.get("note", "")),
    log:
        f"{RESULTS}/logs/report.log",
    shell:
        "{params.mbbench} report {input.runs} --figures {input.figures} --tables {input.tables}"
        " --note {params.note} --out {output} > {log} 2>&1"
