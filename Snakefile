# Thin entry point: configuration, rule files, and the final targets.
# `snakemake --cores 2` runs the embedded default (workflow/config/default.yaml);
# `--configfile workflow/config/paper.yaml` the full reproduction.
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")


# The default applies only when no --configfile is given: Snakemake would otherwise merge the
# default's experiments into the chosen config's.
if not config:

    configfile: "workflow/config/default.yaml"



try:
    validate(config, "workflow/schemas/config.schema.yaml")
except WorkflowError as error:  # one line saying where and what, not the schema dump
    from benchmark.jobs import schema_error_line

    sys.exit(schema_error_line(error))


# `snakemake --report results/report.html` (make run ends with it): the figures, tables and
# verdicts marked with report(...) in the rules, with captions from workflow/report/.
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/analysis.smk"


# The run markers are targets too: a run lost after the report was made is redone, and
# everything downstream of it follows.
rule all:
    input:
        done_markers(),
        f"{RESULTS}/report.md",
        f"{RESULTS}/claims.md",
        figure_files(),
        TABLES,
