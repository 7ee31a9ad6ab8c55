# One-command set-up: `make lab` to work, `make test` to check everything.
# Both create .venv and install the project into it when needed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# nbgrader runs helpers such as alembic by name: the venv goes first on PATH.
export PATH := $(abspath $(BIN)):$(PATH)
STAMP  := $(VENV)/.installed
ASSIGNMENT := week1
WORKSPACE  := work

.PHONY: setup system-packages lab test release release-if-stale workspace bench clean

setup: $(STAMP)

# One line per step; pip's own output goes to $(VENV)/install.log and is shown in full only if it fails.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10+ is needed, found " + sys.version.split()[0])'
	@test -x $(BIN)/python || { echo "setup: creating the virtual environment $(VENV)"; $(PYTHON) -m venv $(VENV); }
	@echo "setup: installing PyTorch 2.13 (CPU) and the course's packages into $(VENV) (a few minutes the first time)"
	@$(BIN)/python -m pip install --disable-pip-version-check "torch==2.13.0" -e ".[dev]" >$(VENV)/install.log 2>&1 \
		|| { cat $(VENV)/install.log; echo "setup: pip failed (its output is above and in $(VENV)/install.log)"; exit 1; }
	@touch $(STAMP)
	@echo "setup: done"

# The grader's sandbox (bubblewrap) and the browser (Chromium), for the tests: installed when root on
# Debian/Ubuntu, else one line says what to run. `make lab` never needs them.
system-packages:
	@scripts/ensure-system-packages.sh

release: $(STAMP)
	$(BIN)/python -m autograder.release

release-if-stale: $(STAMP)
	$(BIN)/python -m autograder.release --if-stale

workspace: release-if-stale
	$(BIN)/python -m autograder.workspace release/$(ASSIGNMENT) $(WORKSPACE)/$(ASSIGNMENT)

# A student's JupyterLab: started inside the workspace, without nbgrader's instructor tools
# (autograder/lab.py; the user's own Jupyter configuration is left alone).
lab: workspace
	$(BIN)/python -m autograder.lab $(WORKSPACE)/$(ASSIGNMENT)

test: system-packages $(STAMP)
	$(BIN)/python -m pytest --durations=15

bench: $(STAMP)
	$(BIN)/python bench/import_time.py
	$(BIN)/python bench/notebook_time.py

clean:
	rm -rf $(VENV) .pytest_cache gradebook.db
