# The two commands a new user needs (see README.md):
#   make demo   run the firmware on the simulator and dose 24 h of morphine
#   make test   run the whole test suite
# Both create .venv and node_modules themselves, with pinned versions.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet
# MicroPython's own API, per board, for pyright (tests/tree/test_typecheck.py): one folder per board file,
# named as the board. The stdlib stubs are pinned beside each port's, which depends on them.
STUBS := $(VENV)/typings
STUBS_STAMP := $(STUBS)/.installed
STDLIB_STUBS := micropython-stdlib-stubs==1.29.0.post2

.PHONY: all setup demo test test-long test-mp test-mp32 torture bench flash manifests clean

all: test

setup: $(PY_STAMP) $(NODE_STAMP) $(STUBS_STAMP)

$(PY_STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $@

$(STUBS_STAMP): Makefile $(PY_STAMP)
	$(PIP) install --no-deps --upgrade --target $(STUBS)/sim micropython-unix-stubs==1.29.0.post1 $(STDLIB_STUBS)
	$(PIP) install --no-deps --upgrade --target $(STUBS)/rp2_pico micropython-rp2-rpi_pico-stubs==1.29.0.post1 $(STDLIB_STUBS)
	$(PIP) install --no-deps --upgrade --target $(STUBS)/esp32_devkit micropython-esp32-stubs==1.29.0.post1 $(STDLIB_STUBS)
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: setup
	$(BIN)/pumpctl demo

# The suite on TEST_JOBS workers (pytest-xdist), each test file on one worker (its module fixtures made once):
# most tests wait on a MicroPython VM or a pty, so two workers on a 2-core machine halve the wall time.
TEST_JOBS ?= 2

test: setup
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile

# Only the tests that run firmware on one MicroPython VM.
test-mp: setup
	$(BIN)/python -m pytest -m micropython

test-mp32: setup
	$(BIN)/python -m pytest -m micropython32

# The default suite plus the long property runs and soaks, a night's run: a test may take an hour, the run 12
# (pyproject.toml's 5 and 25 minutes are the default suite's).
test-long: setup
	PUMP_TEST_PROFILE=long $(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile --timeout=3600 --session-timeout=43200

# The torture test, long form (tests/torture.py): thousands of power cuts at random moments, each followed by a
# restart and every check; prints the figures and fails if any invariant failed. TORTURE_JOBS episodes run at once
# (default: the number of CPUs).
TORTURE_CUTS ?= 2000
TORTURE_SEED ?= 1
TORTURE_POLICY ?= any

torture: setup
	$(BIN)/python tests/torture.py --cuts $(TORTURE_CUTS) --seed $(TORTURE_SEED) --policy $(TORTURE_POLICY)

# Every benchmark figure (bench/run.py): ratios against baselines measured in the same run, and counts that
# noise does not move; writes bench/results.json and prints a table (about 2 min). BENCH_ARGS="--quick" runs
# each measurement briefly, to check the bench rather than to measure.
BENCH_ARGS ?=

bench: setup
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Flash a board (pumpctl flash): compile with mpy-cross, copy with mpremote, verify every file by SHA-256,
# write its config and fresh keys (saved in your pumpctl config file), reset. For example:
#   make flash BOARD=rp2_pico PORT=/dev/ttyACM0
BOARD ?=
PORT ?=

flash: setup
	@test -n "$(BOARD)" -a -n "$(PORT)" || { echo "make flash: give BOARD=NAME (a file in boards/) and PORT=/dev/ttyACM0" >&2; exit 2; }
	$(BIN)/pumpctl --port $(PORT) flash --board $(BOARD)

# The freeze manifests (boards/manifests/BOARD.py) written again from what `pumpctl flash` copies,
# after a module was added or removed; tests/host/test_flash.py says when they are out of date.
manifests: setup
	$(VENV)/bin/python -c "from pumpctl import board_build, frozen; [open(f'boards/manifests/{b}.py', 'w').write(frozen.freeze_manifest(b, [s.relative_to(board_build.ROOT).as_posix() for s, _ in board_build.board_files(b)])) for b in frozen.frozen_boards()]"

clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis
