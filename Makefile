# All set-up on a fresh machine is done by these two commands (see README.md):
#   make demo   train the course CNN on the embedded MNIST, evaluate, write plots and VisualDL logs
#   make test   run the whole test suite (notebooks included, in smoke mode)
#
# Both create the virtual environment $(VENV) when it is missing.
# PADDLE picks the Paddle build:  cpu (default) | gpu | none (keep the Paddle already in $(VENV)).
# paddlepaddle and paddlepaddle-gpu both provide `import paddle`, so the package itself
# never depends on either: only this choice installs one.

PYTHON ?= python3
VENV ?= .venv
PADDLE ?= cpu
ARGS ?=
PYTEST_ARGS ?=
PY := $(VENV)/bin/python

ifeq ($(PADDLE),none)
EXTRAS := test,notebook,rebuild,grade,site
else
EXTRAS := $(PADDLE),test,notebook,rebuild,grade,site
endif

.PHONY: demo test clean

$(VENV)/.installed-$(PADDLE): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

demo: $(VENV)/.installed-$(PADDLE)
	$(PY) -m course train $(ARGS)

test: $(VENV)/.installed-$(PADDLE)
	$(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks -> docs/benchmarks.md (bench/run_all.py); `make bench ARGS=--quick` checks the scripts.
.PHONY: bench
bench: $(VENV)/.installed-$(PADDLE)
	$(PY) bench/run_all.py $(ARGS)

# Every notebook in a real kernel, full mode, two at a time -> build/notebooks/full/ and docs/notebooks.md
# (scripts/run_notebooks.py). `make notebooks ARGS=--smoke` for smoke mode; ARGS=2.8.1 for one notebook.
.PHONY: notebooks site
notebooks: $(VENV)/.installed-$(PADDLE)
	$(PY) scripts/run_notebooks.py $(ARGS)

# The course as a static HTML site -> build/site/ (scripts/build_site.py, MkDocs + mkdocs-jupyter).
site: $(VENV)/.installed-$(PADDLE)
	$(PY) scripts/build_site.py $(ARGS)

clean:
	rm -rf $(VENV) test-output .pytest_cache *.egg-info build
