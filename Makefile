# The two commands: `make run` (server + worker on the embedded defaults) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# `make run` and `make worker` are for a laptop: Django's settings refuse to serve without a
# SECRET_KEY when DEBUG is off, so these two pass a development key unless one is set.
DEV_SECRET_KEY := insecure-local-development-key-change-me

.PHONY: run test lint check venv worker clean chromium

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

run worker: export SECRET_KEY ?= $(DEV_SECRET_KEY)

run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py bootstrap_demo
	@echo "starting the Celery worker and the web server on http://$(HOST):$(PORT)/admin/"
	trap 'trap - TERM; kill 0' INT TERM EXIT; \
	$(VENV)/bin/celery -A profiles_site worker --loglevel=INFO & \
	$(PY) manage.py runserver $(HOST):$(PORT)

worker: venv
	$(VENV)/bin/celery -A profiles_site worker --loglevel=INFO

# The browser tests drive Debian's Chromium (Playwright's own browser download is not used):
# installed here when missing and we may (root with apt-get); otherwise those tests skip and say how.
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
			|| echo "could not install chromium: the browser tests will be skipped"; \
	fi

test: venv chromium
	$(PY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(PY) manage.py makemigrations --check --dry-run

clean:
	rm -rf var
