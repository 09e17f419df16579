# Loupe: two commands do all the setup on a fresh machine.
#   make run    installs what it needs, then runs the main job on the embedded default
#   make test   installs what it needs, then runs the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# Debian's Chromium for the studio's browser tests (tests/studio); Playwright's own download needs the internet
CHROMIUM_STAMP := $(VENV)/.chromium
# TensorFlow / TFLite / CoreML converters (trainer.packages.tf_package): their own venv, their pins clash with Loupe's
CONVERT_VENV := .venv-convert
CONVERT_STAMP := $(CONVERT_VENV)/.installed

.PHONY: run serve test bench install clean help

help:
	@echo "make run    - drop the sample datasets, register, train, evaluate, predict (local, no cloud)"
	@echo "make serve  - start Azurite + the API on http://127.0.0.1:7071 and keep them up"
	@echo "make test   - run the test suite"
	@echo "make bench  - run the benchmarks (reads ../shared/datasets where present)"

install: $(PY_STAMP) $(NODE_STAMP) $(CHROMIUM_STAMP) $(CONVERT_STAMP)

$(PY_STAMP): requirements-core.txt requirements.txt requirements-dev.txt trainer_image/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(CONVERT_STAMP): trainer_image/convert/requirements.txt trainer_image/convert/install.sh
	sh trainer_image/convert/install.sh $(CONVERT_VENV) $(PYTHON)
	touch $@

$(CHROMIUM_STAMP): $(PY_STAMP)
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ]; then \
		apt-get install -y --no-install-recommends chromium || (apt-get update && apt-get install -y --no-install-recommends chromium); fi
	@test -x /usr/bin/chromium || echo "warning: /usr/bin/chromium is missing (install Debian's chromium): tests/studio will fail"
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: install
	$(PY) -m loupe.local run

serve: install
	$(PY) -m loupe.local serve

test: install
	$(PY) -m pytest

bench: install
	$(PY) benchmarks/run_all.py

clean:
	rm -rf .loupe .pytest_cache
