"""Every command of the README's shell blocks runs as written in a fresh clone, but for the
expensive ones (a whole profile, the test suite) and those that read results `make run` or a
profile makes first (named below): they are run by CI and by hand."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BIN = Path(sys.executable).parent

NOT_RUN_HERE = {
    "make run": "the quick profile itself: CI's fresh clone and the README's own measurement",
    "make test": "the test suite itself",
    "make rehearse": "rehearses a whole profile (the smoke profile's is in test_rehearsal.py)",
    "snakemake --cores": "runs a whole profile",
    "snakemake --workflow-profile workflow/profiles/slurm": "needs a SLURM cluster",
    "mbbench compare results/runs ": "reads the runs `make run` makes",
}


def readme_commands() -> list[str]:
    """The commands of the README's ```bash blocks, continuation lines joined, comments cut."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        text = re.sub(r"\\\n\s*", " ", block)
        for line in text.splitlines():
            command = line.split(" #")[0].strip()
            if command and not command.startswith("#"):
                commands.append(re.sub(r"\s+", " ", command))
    return commands


def skip_reason(command: str) -> str | None:
    bare = command.replace(".venv/bin/", "")
    return next((why for prefix, why in NOT_RUN_HERE.items() if bare.startswith(prefix)), None)


def test_readme_has_the_commands_this_test_expects():
    commands = readme_commands()
    assert commands[:2] == ["make run", "make test"]  # the first screen's two commands
    assert sum(skip_reason(c) is None for c in commands) >= 7


def test_readme_commands_run_as_written(tmp_path):
    """Run in a copy of the repository's workflow and reference results (so nothing is
    written into the work tree), in README order: later commands use earlier ones' runs."""
    shutil.copy(REPO / "Snakefile", tmp_path / "Snakefile")
    shutil.copytree(REPO / "workflow", tmp_path / "workflow")
    shutil.copytree(REPO / "results" / "reference", tmp_path / "results" / "reference")
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    ran = []
    for command in readme_commands():
        if skip_reason(command):
            continue
        args = shlex.split(command.replace(".venv/bin/", f"{BIN}/"))
        result = subprocess.run(
            args, cwd=tmp_path, capture_output=True, text=True, env=env, timeout=900
        )
        assert result.returncode == 0, (command, result.stderr[-2000:])
        ran.append(command)
    run_dir = tmp_path / "results/runs/manual/halfcheetah-rllab/mbmpo/seed0"
    assert (run_dir / "progress.csv").read_text().count("\n") == 1 + 4  # 1000, ..., 4000
    assert any("compare results/reference" in c for c in ran)
