"""What a run shows while it trains: a live bar on a terminal, a line per evaluation point
elsewhere, nothing with --quiet."""

from __future__ import annotations

import io
import time

from benchmark.cli import main
from benchmark.progress import ProgressReporter


def test_bar_redraws_by_itself_with_phase_and_last_return():
    stream = io.StringIO()
    reporter = ProgressReporter("mbmpo/halfcheetah/seed0", total=1000, mode="bar", stream=stream)
    steps = {"n": 0}
    reporter.watch(lambda: steps["n"])
    steps["n"] = 400
    reporter.set_phase("iteration 1: fitting the model")
    time.sleep(1.6)  # no call from the run: the bar's own thread redraws it
    drawn = stream.getvalue()
    assert "400/1000" in drawn and "phase=iteration 1: fitting the model" in drawn
    reporter.evaluation(400, -12.5, 1.25)
    reporter.close()
    out = stream.getvalue()
    assert "[mbmpo/halfcheetah/seed0] steps=400/1000 return=-12.50±1.25" in out
    assert "return=-12.5" in out.splitlines()[-1] or "return=-12.5" in out.rsplit("\r", 1)[-1]


def test_lines_mode_writes_one_short_line_per_evaluation_and_no_bar():
    stream = io.StringIO()  # not a terminal: 'auto' means lines
    reporter = ProgressReporter("ppo/hopper/seed1", total=200, initial=100, stream=stream)
    reporter.watch(lambda: 150)
    reporter.evaluation(200, 3.0, 0.5)
    reporter.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "\r" not in stream.getvalue()
    assert lines[0].startswith("[ppo/hopper/seed1] steps=200/200 return=3.00±0.50")
    assert "steps/s" in lines[0] and len(lines[0]) < 120


def test_quiet_run_prints_nothing_but_its_directory(tmp_path, capsys):
    args = ["run", "--algo", "random", "--task", "point2d", "--steps", "200"]
    assert main([*args, "--set", "eval_every=100", "--quiet", "--out", str(tmp_path / "q")]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out.strip() == str(tmp_path / "q")
    assert main([*args, "--set", "eval_every=100", "--out", str(tmp_path / "v")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line.split()[1] for line in err] == ["steps=100/200", "steps=200/200"]
