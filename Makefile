# Every target sets up .venv itself: on a fresh machine with Python 3.11 and pip,
# `make demo` and `make test` are all it takes.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: help install demo test lint format bench bench-record bench-console clean fuzz

help:
	@echo "make demo    attest three software sites (one tampered) and show the verdicts;"
	@echo "             a dashboard follows it live (its URL is printed); SERVE=1 keeps it all"
	@echo "             running until Ctrl-C"
	@echo "make test    run the test suite with coverage (sets up .venv first)"
	@echo "make lint    ruff"
	@echo "make fuzz    atheris harnesses (fuzz/), FUZZ_RUNS inputs each (default 100000), one"
	@echo "             at a time; FUZZ_TARGETS=\"snp_report rim\" picks some; finds in .fuzz/"
	@echo "make bench   benchmarks beside their baselines, written to .bench/results.json"
	@echo "make bench-record  only the record's growth: 30 days of a 200-site federation (~3 min)"
	@echo "make bench-console only the console's routes on a 200-site federation, 30 days of record"
	@echo "                   (p50/p95/max beside the goals; its data is built once: ~2 min)"

$(INSTALLED): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,nvflare,gpu]'
	@touch $@

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/ccattest demo $(if $(SERVE),--serve)

test: $(INSTALLED)
	$(BIN)/python -m pytest --cov --cov-branch --cov-report=term \
		--cov-report=json:.coverage-report.json
	$(BIN)/python tools/check_coverage.py .coverage-report.json

lint: $(INSTALLED)
	$(BIN)/ruff check src tests benchmarks tools fuzz

format: $(INSTALLED)
	$(BIN)/ruff check --fix src tests benchmarks tools fuzz

# NVIDIA's nv-local-gpu-verifier pins cryptography 43 and signxml 3.2, which ccattest and
# nvflare cannot share a venv with: it gets its own (benchmarks/bench_nvidia.py).
NV_VENV := .bench/nv-venv
bench: $(INSTALLED)
	@$(NV_VENV)/bin/python -c "from importlib.metadata import version as v; \
		assert v('nv-local-gpu-verifier') == '2.7.3'" 2>/dev/null || \
		{ $(PYTHON) -m venv $(NV_VENV) && $(NV_VENV)/bin/python -m pip install --quiet \
		nv-local-gpu-verifier==2.7.3; } || echo "no nv-local-gpu-verifier: its rows are skipped"
	$(BIN)/python -m benchmarks

bench-record: $(INSTALLED)
	$(BIN)/python -m benchmarks.bench_record

bench-console: $(INSTALLED)
	$(BIN)/python -m benchmarks.bench_console

# Coverage-guided fuzzing of every parser that takes outside bytes (see
# fuzz/common.py): any exception other than a CCAttestError, any input over 1 s or over
# 2 GiB RSS is a finding, written to .fuzz/crashes/<target>/.
FUZZ_RUNS ?= 100000
FUZZ_TARGETS ?=
fuzz: $(INSTALLED)
	@$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[fuzz]'
	nice -n 10 $(BIN)/python fuzz/run.py --runs $(FUZZ_RUNS) $(FUZZ_TARGETS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .coverage .coverage-report.json .bench .demo .fuzz .artifacts
