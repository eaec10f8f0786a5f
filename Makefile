# amo-hub: `make run` starts the hub in the embedded mode, `make test` runs the suite.
# Both set themselves up from a fresh clone: virtualenv, requirements, migrations.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum requirements.txt | cut -c1-12)

.PHONY: run test lint format setup clean chromium production-tools messages bench bench-intake

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	mkdir -p var
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py run_embedded

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The Russian catalogue: collect the marked strings into locale/ru/LC_MESSAGES/django.po,
# then compile it (the .mo is committed, as CI has no gettext tools). Needs GNU gettext.
# The emulator speaks AmoCRM's own words and is left out.
messages: $(STAMP)
	$(PY) manage.py makemessages -l ru --no-location -i ".venv/*" -i "var/*" \
	    -i "integrations/amocrm/emulator/*"
	$(PY) manage.py compilemessages -l ru -i ".venv/*" -i "var/*"

# The admin's browser tests drive Debian's Chromium; install it when it is missing and
# this user may (without it those tests are skipped, and say so; CI requires it).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	        echo "Installing Debian's chromium for the browser tests"; \
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	    else \
	        echo "chromium is not installed and cannot be installed here: browser tests will be skipped"; \
	    fi; \
	}

# The production path's tests (tests/production/) start Debian's nginx on loopback with a
# self-signed certificate (openssl) and validate docker-compose.yml (docker-compose, or the
# docker compose plugin); install what is missing when this user may (without them those
# tests are skipped, and say so; CI requires them).
production-tools:
	@missing=""; \
	{ command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx; } || missing="$$missing nginx-light"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	        echo "Installing Debian's$$missing for the production path's tests"; \
	        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	        case "$$missing" in *nginx*) systemctl disable --now nginx >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true ;; esac; \
	    else \
	        echo "$$missing not installed and cannot be installed here: production path tests will be skipped"; \
	    fi; \
	fi

# pytest-django builds the test database from the migrations; the suite runs in
# TEST_PROCESSES processes (pytest-xdist), each with its own database and Redis keys.
# Screenshots of the browser tests are saved under var/screenshots/.
TEST_PROCESSES ?= 2
test: lint chromium production-tools
	$(PY) -m pytest -n $(TEST_PROCESSES)

# The delivery engine against the emulator at 7 req/s with a real worker (PostgreSQL and
# Redis on 127.0.0.1); prints drain times, requests per update, latency and worker RSS.
bench: $(STAMP)
	mkdir -p var
	$(PY) tests/benchmarks/delivery.py

# The intake over HTTP: gunicorn with hub/gunicorn.conf.py on PostgreSQL and a Celery
# worker, loaded by wrk -t1 -c16 -d20s (Debian's wrk); prints requests/s, p50/p99, 2xx
# answers against stored events and the web processes' memory.
bench-intake: $(STAMP)
	@command -v wrk >/dev/null 2>&1 || { echo "wrk is not installed (apt-get install wrk)"; exit 1; }
	mkdir -p var
	$(PY) tests/benchmarks/intake_wrk.py

clean:
	rm -rf $(VENV) var
