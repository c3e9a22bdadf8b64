# Every run directory into one tidy table.


rule aggregate:
    input:
        done_markers(),
    output:
        f"{RESULTS}/summary/runs.csv",
    params:
        mbbench=MBBENCH,
        runs=lambda wc, output: str(Path(output[0]).parent.parent / "runs"),
    log:
        f"{RESULTS}/logs/aggregate.log",
    shell:
        "{params.mbbench} aggregate {params.runs} --out {output} > {log} 2>&1"
