# Two entry points: `make report` (install, train, render) and `make test` (install, test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= results

.PHONY: report test install clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[cpu,test]"
	touch $@

install: $(VENV)/.installed

report: install
	$(BIN)/mnist-report build --out $(OUT)

test: install
	$(BIN)/python -m pytest

clean-venv:
	rm -rf $(VENV)
