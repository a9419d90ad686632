# Two entry points: `make demo` and `make test`. Both create or reuse .venv and
# install what they need, so a fresh machine needs only Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test test-browser lint clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[cpu,dev]"
	touch $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/facefusion-ray demo --output out/demo_swap.mp4

test: $(INSTALLED)
	$(BIN)/python -m pytest -q

# The A/B page in headless Chromium alone (skipped without it; .ci/run installs it).
test-browser: $(INSTALLED)
	$(BIN)/python -m pytest -q -m browser

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf out .pytest_cache .ruff_cache
