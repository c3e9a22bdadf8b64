"""results/report.md: the figures, tables and failed runs of a workflow, in one page."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from benchmark.rundir import atomic_write_text


def build_report(
    runs_csv: Path, figures: list[Path], tables: list[Path], out: Path, profile_note: str = ""
) -> str:
    """Assemble the report; paths in it are relative to the report's folder."""
    table = pd.read_csv(runs_csv)
    per_run = table.drop_duplicates("run_dir")
    counts = per_run["status"].value_counts().to_dict()
    lines = ["# MB-MPO reproduction report", ""]
    if profile_note:
        lines += [profile_note, ""]
    lines += [
        f"{len(per_run)} runs: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
        "",
    ]
    failed = per_run[per_run["status"] != "done"]
    if len(failed):
        lines += [
            "## Runs that did not finish",
            "",
            "| run | status | error |",
            "| --- | --- | --- |",
        ]
        for _, row in failed.iterrows():
            lines.append(f"| {row['run_dir']} | {row['status']} | {row['error']} |")
        lines.append("")
    lines += ["## Figures", ""]
    for figure in figures:
        rel = os.path.relpath(Path(figure).resolve(), out.parent.resolve())
        lines += [f"### {Path(figure).stem}", "", f"![{Path(figure).stem}]({rel})", ""]
    lines += ["## Tables", ""]
    for path in tables:
        lines += [f"### {Path(path).stem}", "", Path(path).read_text().strip(), ""]
    text = "\n".join(lines) + "\n"
    atomic_write_text(out, text)
    return text
