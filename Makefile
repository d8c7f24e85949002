# Two commands do all set-up on a fresh machine:
#   make app    -> installs into .venv and serves the app on http://127.0.0.1:7860
#   make test   -> installs into .venv (plus Chromium for the browser test), runs ruff and every test
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip -q --disable-pip-version-check

.PHONY: app test install install-dev browser bench

$(VENV)/.installed: requirements.txt constraints-cpu.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -c constraints-cpu.txt -r requirements.txt
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PIP) install -c constraints-cpu.txt -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Debian's Chromium for the Playwright test (Playwright's own browser download cannot work offline).
browser:
	@command -v chromium >/dev/null || (apt-get update -q && apt-get install -y -q chromium)

app: install
	$(PY) app.py

test: install-dev browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

bench: install-dev
	$(PY) bench/bench_pairs.py --repeat 3
