# Two entry points: `make report` (install, train, render) and `make test` (install, test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= results

.PHONY: report test install web clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the dependencies change.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[cpu,test]"
	touch $@

install: $(VENV)/.installed

# The browser runtime of the tutorial's drawing widget (onnxruntime-web, pinned in
# package-lock.json), from the npm registry. Without npm the build goes on and the tutorial
# says how to enable the widget.
node_modules/.package-lock.json: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --no-audit --no-fund --ignore-scripts \
	  || echo "npm ci failed: the tutorial's drawing widget is left out"; \
	else echo "npm not found: the tutorial's drawing widget is left out (install Node.js)"; fi

web: node_modules/.package-lock.json

report: install web
	$(BIN)/mnist-report build --out $(OUT)

test: install web
	$(BIN)/python -m pytest

clean-venv:
	rm -rf $(VENV)
