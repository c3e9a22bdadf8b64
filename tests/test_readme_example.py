"""The worked example of adding an algorithm (docs/guide.md, linked from the README) runs as
written."""

from __future__ import annotations

import csv
import re
import sys
import types
from pathlib import Path

from benchmark.cli import main

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide.md"


def test_readme_algorithm_example_registers_and_runs(tmp_path, monkeypatch, scratch_registry):
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    example = next(b for b in blocks if '@register("zero_action")' in b)
    module = types.ModuleType("readme_example")
    monkeypatch.setitem(sys.modules, "readme_example", module)
    exec(compile(example, "docs/guide.md", "exec"), module.__dict__)
    out = tmp_path / "run"
    args = ["run", "--algo", "zero_action", "--task", "hopper", "--steps", "400"]
    assert (
        main([*args, "--set", "scale=0.1", "--set", "eval_every=200", "--quiet", "--out", str(out)])
        == 0
    )
    with open(out / "progress.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["env_steps"]) for r in rows] == [200, 400]
    assert float(rows[-1]["return_mean"]) > 0  # Hopper pays the healthy bonus while upright
