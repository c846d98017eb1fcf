# Two commands for a newcomer: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test install test-deps lint bench eval clean faults fuzz

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/saygoodbye demo

test-deps: $(STAMP)
	bash tools/install_test_deps.sh
	bash tools/ensure_postgres.sh

test: test-deps
	$(VENV)/bin/ruff check service tests eval bench tools
	$(PY) -m pytest -q

faults: test-deps
	SAYGOODBYE_FAULTS=full $(PY) -m pytest -q tests/faults

fuzz: $(STAMP)
	SAYGOODBYE_FUZZ=1 $(PY) -m pytest -q tests/unit/test_parse_fuzz.py

lint: $(STAMP)
	$(VENV)/bin/ruff check service tests eval bench tools

bench: test-deps
	$(PY) -m bench.run $(BENCH_ARGS)

eval: $(STAMP)
	$(PY) -m eval.ucc
	$(PY) -m eval.threads_eval --set all

clean:
	rm -rf $(VENV) demo-state build *.egg-info .pytest_cache
