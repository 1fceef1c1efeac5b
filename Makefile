# Two commands: `make run` (the embedded stack) and `make test`. Each creates .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
# Four on two cores: most of the suite waits on servers and timers (real outages of 30-60 s), not
# the CPU (a run with three used 46% of the two cores); four passed whole with other test runs
# loading the machine (load ~8).
PYTEST_WORKERS ?= 4

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	# Byte-code, as `pip install .` leaves in the deploy image: with PYTHONDONTWRITEBYTECODE set
	# (this machine, CI) the workflow sandbox would compile workflows/org.py for every run.
	$(PY) -m compileall -q domain db services workflows activities workers
	touch $@

.PHONY: install run clean-var test bench
install: $(VENV)/.installed

run: $(VENV)/.installed
	$(PY) -m workers.stack.embedded

# Start `make run` afresh: its databases (Temporal's histories, billing), logs and e-mails go.
clean-var:
	rm -rf var

# Whole files to each process, in the order tests/conftest.py gives them: the longest first.
test: $(VENV)/.installed
	$(PY) -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: $(VENV)/.installed
	$(PY) bench/simulate_speed.py
