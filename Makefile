# Two commands on a fresh machine with Python 3.11: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUNTIME_STAMP := $(VENV)/.installed-runtime

.PHONY: run test bench load install serve worker clean

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	@touch $(STAMP) $(RUNTIME_STAMP)

# Production targets need the runtime requirements only.
$(RUNTIME_STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	@touch $(RUNTIME_STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python -m config.run

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

serve: $(RUNTIME_STAMP)
	$(BIN)/python -m config.serve

worker: $(RUNTIME_STAMP)
	$(BIN)/python -m config.worker

bench: $(STAMP)
	$(BIN)/python -m tests.benchmarks $(BENCH_ARGS)

load: $(STAMP)
	$(BIN)/python -m tests.load $(LOAD_ARGS)

clean:
	rm -rf $(VENV) var
