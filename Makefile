# Two entry points, both self-installing on a fresh machine (Python 3.10+ with venv):
#   make quickstart   train, evaluate and package a tiny Video-Panda on synthetic videos (no Hub access)
#   make test         the test suite (what CI runs)
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

$(VENV)/.installed: setup.py pyproject.toml requirements/*.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e ".[test,eval,demo]" torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet --no-deps -r requirements/lmms-eval.txt -r requirements/test-assets.txt
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

quickstart: install
	$(VENV)/bin/videopanda quickstart

.PHONY: install test quickstart
