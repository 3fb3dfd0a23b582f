# Two commands matter: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck browser audit lock migrate bench clean

# requirements.lock pins every package to the versions the suite last passed with.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/flask --app wsgi db upgrade
	$(BIN)/flask --app wsgi serve

test: $(STAMP) lint typecheck
	$(BIN)/python -m pytest -q

# The console's browser tests drive Debian's chromium; without it they skip and say how to
# get it. `make test` installs nothing on the system; this does (.ci/run calls it).
browser:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy bot

# Known vulnerabilities in the locked set; says so plainly when no advisory service answers.
audit: $(STAMP)
	$(BIN)/python -m pip install --quiet pip-audit
	$(BIN)/python .ci/audit.py requirements.lock

# Re-pin after changing dependencies in pyproject.toml.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^smartrr-sms-bot' > requirements.lock

migrate: $(STAMP)
	$(BIN)/flask --app wsgi db upgrade

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) instance/*.sqlite3 .pytest_cache .mypy_cache .ruff_cache
