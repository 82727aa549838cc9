# Every target sets up .venv itself: on a fresh machine with Python 3.11 and pip,
# `make demo` and `make test` are all it takes.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: help install demo test lint format bench bench-record bench-console bench-seal clean fuzz \
	scale soak

help:
	@echo "make demo           attest three software sites (one tampered), show verdicts;"
	@echo "                    a dashboard follows live (URL printed); SERVE=1 keeps it"
	@echo "                    all running until Ctrl-C"
	@echo "make test           the test suite with coverage (sets up .venv first)"
	@echo "make lint           ruff"
	@echo "make fuzz           atheris harnesses (fuzz/), FUZZ_RUNS inputs each (100000),"
	@echo "                    one at a time; FUZZ_TARGETS=\"snp_report rim\" picks some;"
	@echo "                    findings in .fuzz/"
	@echo "make bench          benchmarks beside their baselines -> .bench/results.json"
	@echo "make bench-record   only the record's growth: 30 days, 200 sites (~3 min)"
	@echo "make bench-console  only the console's routes: 200 sites, 30 days of record"
	@echo "                    (p50/p95/max beside the goals; data built once: ~2 min)"
	@echo "make bench-seal     only sealing: 1 MB to 1 GB beside bare AES-GCM; a sealed"
	@echo "                    job beside an unsealed one"
	@echo "make scale          a real NVFlare POC of SCALE_CLIENTS (30) clients, stock vs"
	@echo "                    ccattest: registration, attestation rounds, a job; and"
	@echo "                    stock importing pydantic and sqlalchemy, registration only"
	@echo "                    (~6 min; not in CI)"
	@echo "make soak           a 50-site in-process federation, a round a second for"
	@echo "                    SOAK_MINUTES (30): memory, threads, fds, missed rounds"
	@echo "                    (not in CI)"

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

bench-seal: $(INSTALLED)
	$(BIN)/python -m benchmarks.bench_seal
	$(BIN)/python -m benchmarks.bench_seal_job

SCALE_CLIENTS ?= 30
scale: $(INSTALLED)
	SCALE_CLIENTS=$(SCALE_CLIENTS) $(BIN)/python -m benchmarks.bench_scale

SOAK_MINUTES ?= 30
soak: $(INSTALLED)
	SOAK_MINUTES=$(SOAK_MINUTES) $(BIN)/python -m benchmarks.soak

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
