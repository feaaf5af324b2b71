# Two set-up commands: `make demo` (a demo district on http://127.0.0.1:8000) and `make test`.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test lint format run worker beat migrate install clean bench check-deploy

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py seed_demo
	@echo "Serving the demo district on http://$(HOST):$(PORT)/ (Celery tasks run in process)."
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

run: migrate
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: install
	MASTERY_ENV=test $(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	MASTERY_ENV=test $(BIN)/python manage.py check
	MASTERY_ENV=test $(BIN)/python manage.py makemigrations --check --dry-run

# The production settings pass Django's deployment checklist (a CI gate). The key is random and thrown away.
check-deploy: install
	MASTERY_ENV=production DJANGO_ALLOWED_HOSTS=mastery.example.org \
	DJANGO_SECRET_KEY="$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
	$(BIN)/python manage.py check --deploy --fail-level WARNING

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

worker: install
	$(BIN)/celery -A mastery worker --queues live,bulk,nightly --loglevel INFO

beat: install
	$(BIN)/celery -A mastery beat --loglevel INFO

# The district-scale suite (issue #6): generate_district at three sizes, every scenario beside its floor,
# one table, bench/results.json. BENCH_ARGS="--quick" runs only the two small sizes. It never writes into
# the database it is pointed at: it works in <name>_bench (and <name>_bench_rescore, _load, _template),
# created on the same server. Defaults: the machine's PostgreSQL and Redis (DATABASE_URL / REDIS_URL from
# the environment when set).
BENCH_DATABASE_URL ?= $(or $(DATABASE_URL),postgres://root@127.0.0.1:5432/test)
BENCH_REDIS_URL ?= $(or $(REDIS_URL),redis://127.0.0.1:6379/0)
bench: install
	DATABASE_URL="$(BENCH_DATABASE_URL)" REDIS_URL="$(BENCH_REDIS_URL)" $(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
