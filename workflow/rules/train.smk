# One training job = one run directory. The rule's output is a marker written after the run
# ended, never the run directory itself: Snakemake deletes the outputs of an interrupted
# job, and the run directory holds the checkpoint the next attempt resumes from.
# A run that failed on its own (exit 1: diverged, or an error recorded in its meta.json) still
# gets its marker, so the workflow goes on and the report lists it; bad input (exit 2) or a
# killed run (no exit code of mbbench's) fails the job.
# --extend: raising a model-based label's budget in the config and running the workflow again
# continues its finished runs from their checkpoints (the changed arguments make Snakemake
# rerun the job) instead of refusing them as runs of another config.


rule train:
    output:
        f"{RESULTS}/runs/{{exp}}/{{task}}/{{algo}}/seed{{seed}}/run.done",
    params:
        mbbench=MBBENCH,
        run_dir=lambda wc: run_dir(wc.exp, wc.task, wc.algo, wc.seed),
        args=run_arguments,
    log:
        f"{RESULTS}/logs/train/{{exp}}/{{task}}/{{algo}}/seed{{seed}}.log",
    threads: 1
    resources:
        mem_mb=train_mem_mb,
        runtime=train_runtime_min,
    shell:
        "OMP_NUM_THREADS={threads} {params.mbbench} run --task {wildcards.task}"
        " --seed {wildcards.seed} {params.args} --out {params.run_dir} --extend > {log} 2>&1"
        " && status=0 || status=$?;"
        " if [ $status -le 1 ]; then echo $status > {output}; else exit $status; fi"
