"""The harness of the MB-MPO reproducibility suite: tasks, run directories, analysis, CLI."""
