# Set-up is part of every target: `make run` and `make test` build .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: run test test-all test-learning test-slurm check-report rehearse lint perf clean-venv

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: an unpinned torch pulls a several-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $@

## The main job on the embedded default (quick profile).
run: $(BIN)/.installed
	$(BIN)/snakemake --cores $(CORES) --workflow-profile workflow/profiles/local
	$(BIN)/snakemake --workflow-profile workflow/profiles/local --report results/report.html

## The default test suite (slow tests excluded): the wall-time check alone on the machine first,
## then the rest on every core (one worker per core; a module's tests stay on one worker, so
## its module-scoped fixtures are built once).
test: $(BIN)/.installed
	$(BIN)/python -m pytest -q -m timing
	$(BIN)/python -m pytest -q -n auto --dist loadscope --durations=15

## Learning evidence: every algorithm beats random actions on HalfCheetah (2 seeds each).
test-learning: $(BIN)/.installed
	$(BIN)/python -m pytest -q -s -m learning tests/test_learning.py

## Every test, including the ones marked slow.
test-all: $(BIN)/.installed
	$(BIN)/python -m pytest -q -m ''

## The workflow on a real one-node SLURM cluster (root: installs and starts slurm-wlm, munge).
test-slurm: $(BIN)/.installed
	$(BIN)/python -m pytest -q -m slurm tests/slurm

## The HTML report as a person sees it: the smoke workflow and its report, opened in headless
## Chromium (Debian's package, installed here when missing and root), screenshot in
## results/report_check/. Needs the `browser` extra (playwright, driving the system Chromium).
check-report: $(BIN)/.installed
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev,browser]'
	$(BIN)/python -m pytest -q -m browser tests/test_report_browser.py

## Rehearse a big profile before running it (PROFILE=claims or paper): every distinct job
## briefly through the real workflow, a kill and resume per algorithm, every rule, and one
## full-size iteration per algorithm against its scheduler requests. Summary:
## results/rehearsal/$(PROFILE)/rehearsal.md (the project's: results/reference/rehearsal/).
PROFILE ?= claims
rehearse: $(BIN)/.installed
	$(BIN)/mbbench rehearse --configfile workflow/config/$(PROFILE).yaml --cores $(CORES) \
		--out results/rehearsal/$(PROFILE)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean-venv:
	rm -rf $(VENV)
