"""results/report.md: the figures, tables and failed runs of a workflow, in one page."""

from __future__ import annotations

import html
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


HTML_STYLE = (
    "body{font-family:sans-serif;margin:1.5em;color:#222}"
    "table{border-collapse:collapse;font-size:0.9em}"
    "th,td{border:1px solid #ccc;padding:0.3em 0.6em;text-align:left;vertical-align:top}"
    "th{background:#f0f0f0}tr:nth-child(even){background:#fafafa}"
    "p{max-width:60em}"
)


def html_table_page(title: str, frame: pd.DataFrame, preamble: str = "") -> str:
    """A self-contained HTML page of one table (what the HTML report shows inline): a title,
    the preamble's paragraphs, the table."""
    paragraphs = "".join(
        f"<p>{html.escape(part.strip())}</p>" for part in preamble.split("\n\n") if part.strip()
    )
    body = frame.to_html(index=False, na_rep="", border=0, escape=True)
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{HTML_STYLE}</style></head><body><h2>{html.escape(title)}</h2>"
        f"{paragraphs}{body}</body></html>\n"
    )
