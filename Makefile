# Two commands do all set-up on a fresh machine:
#   make app    -> installs into .venv and serves the app on http://127.0.0.1:7860
#   make test   -> installs into .venv (plus Chromium for the browser test), runs ruff and every test
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip -q --disable-pip-version-check

.PHONY: app test install install-dev browser bench mutation

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

# The mutation run over the core (docs/development.md): the article's rule, score parsing, the split, the
# tokenised pairs and their margins, the accuracy and its interval, against tests/test_core.py and test_pairs.py.
CORE_MUTANTS := "rm_demo.pairs.x__best_worst__mutmut_*" "rm_demo.pairs.x_parse_scores__mutmut_*" \
	"rm_demo.pairs.x_split_by_question__mutmut_*" "rm_demo.train.x_tokenize_pairs__mutmut_*" \
	"rm_demo.train.x_loss_margins__mutmut_*" "rm_demo.evaluate.x_summarize__mutmut_*" \
	"rm_demo.text.x_wilson_interval__mutmut_*"

mutation: install-dev
	$(PIP) install "mutmut>=3.3,<4"
	rm -rf mutants
	$(VENV)/bin/mutmut run $(CORE_MUTANTS)
	$(VENV)/bin/mutmut results
