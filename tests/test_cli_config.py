"""`mbbench config`: every setting of an algorithm with its value, type, bounds and
docstring; its YAML form is a file `mbbench run --config` accepts."""

from __future__ import annotations

import yaml

from benchmark.cli import main
from benchmark.rundir import RunDir


def test_config_lists_every_setting_with_default_bounds_and_docstring(capsys):
    assert main(["config", "mbmpo"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    [i] = [k for k, line in enumerate(lines) if line.strip().startswith("inner_lr ")]
    assert "= 0.001" in lines[i] and "(float)" in lines[i] and ">= 0" in lines[i]
    assert "Inner policy-gradient step size alpha" in lines[i + 1]
    assert "run.eval_every" in out and "Real env steps between evaluation points" in out
    assert main(["config", "mbmpo", "--preset", "quick"]) == 0
    assert "meta_steps" in (quick := capsys.readouterr().out) and "= 10 " in quick
    assert main(["config", "mbmpo", "--preset", "nope"]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


def test_yaml_form_round_trips_through_run_config(tmp_path, capsys):
    assert main(["config", "mbmpc", "--preset", "quick", "--format", "yaml"]) == 0
    text = capsys.readouterr().out
    settings = yaml.safe_load(text)
    assert settings["num_candidates"] == 500 and settings["run.eval_every"] == 5000
    assert "# Random action sequences evaluated per real step. (>= 1)" in text
    path = tmp_path / "mbmpc.yaml"
    path.write_text(text)
    small = ["initial_random_steps=200", "model_max_epochs=2", "model_hidden_sizes=[16,16]"]
    small += ["num_candidates=50", "run.eval_every=200", "run.eval_episodes=1"]
    base = ["run", "--algo", "mbmpc", "--task", "point2d", "--steps", "200", "--quiet"]
    for item in small:
        base += ["--set", item]
    assert main([*base, "--config", str(path), "--out", str(tmp_path / "run")]) == 0
    config = RunDir(tmp_path / "run").read_config()
    assert config["algorithm"]["num_candidates"] == 50  # --set wins over the file
    assert config["algorithm"]["planning_horizon"] == 10  # from the file (quick = default)
    (tmp_path / "bad.yaml").write_text("- a list\n")
    assert main([*base, "--config", str(tmp_path / "bad.yaml"), "--out", "x"]) == 2
    assert "expected a mapping" in capsys.readouterr().err
    assert main([*base, "--config", str(tmp_path / "none.yaml"), "--out", "x"]) == 2
    assert "cannot read it" in capsys.readouterr().err
