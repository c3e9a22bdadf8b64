# Every run directory into one tidy table.


rule aggregate:
    input:
        done_markers(),
    output:
        f"{RESULTS}/summary/runs.csv",
    params:
        runs=f"{RESULTS}/runs",
    log:
        f"{RESULTS}/logs/aggregate.log",
    shell:
        "{MBBENCH} aggregate {params.runs} --out {output} > {log} 2>&1"
