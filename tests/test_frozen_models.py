"""More MB-MPO meta steps in a run's frozen models (``mbbench frozen-models``)."""

from __future__ import annotations

import csv

import pytest

from benchmark.cli import main
from benchmark.errors import ConfigError
from benchmark.frozen_models import optimise_in_frozen_models


def test_frozen_model_steps_start_from_the_runs_last_evaluation_and_improve(quick_mbmpo_run):
    with open(quick_mbmpo_run / "progress.csv", newline="") as handle:
        last = list(csv.DictReader(handle))[-1]
    rows = optimise_in_frozen_models(quick_mbmpo_run, meta_steps=4, eval_every=2)
    assert [r["meta_step"] for r in rows] == [0, 1, 2, 3, 4]
    # step 0 is the run's last evaluation again: same policy, episodes and noise
    assert rows[0]["return_mean"] == pytest.approx(float(last["return_mean"]), abs=1e-9)
    assert rows[0]["paper_return"] == pytest.approx(float(last["paper_return"]), abs=1e-9)
    assert "paper_return" in rows[2] and "paper_return" not in rows[1]
    assert all(r["meta_step_accepted"] == 1.0 and r["meta_kl"] <= 0.01 for r in rows[1:])
    # the quick run is far from converged: four more steps in its models raise the imagined
    # return of the pre-update policy
    assert rows[4]["imagined_return_pre"] > rows[1]["imagined_return_pre"]
    # deterministic, and another setting changes the steps
    again = optimise_in_frozen_models(quick_mbmpo_run, meta_steps=4, eval_every=2)
    assert again[4]["paper_return"] == rows[4]["paper_return"]
    other = optimise_in_frozen_models(
        quick_mbmpo_run, 4, 2, {"fisher_product": "finite_difference", "fisher_subsample": 1}
    )
    assert other[0]["paper_return"] == rows[0]["paper_return"]
    assert other[4]["paper_return"] != rows[4]["paper_return"]


def test_frozen_models_cli_writes_a_row_per_step_and_refuses_bad_input(
    quick_mbmpo_run, tmp_path, capsys
):
    out = tmp_path / "steps.csv"
    args = ["frozen-models", str(quick_mbmpo_run), "--meta-steps", "2", "--eval-every", "2"]
    assert main([*args, "--out", str(out)]) == 0
    with open(out, newline="") as handle:
        assert [r["meta_step"] for r in csv.DictReader(handle)] == ["0", "1", "2"]
    assert "meta step 2:" in capsys.readouterr().err
    assert main([*args, "--set", "fisher_prodcut=exact", "--out", str(tmp_path / "x")]) == 2
    assert "fisher_prodcut" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        optimise_in_frozen_models(quick_mbmpo_run, meta_steps=0, eval_every=1)
    assert not (tmp_path / "x").exists()
