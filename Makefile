# MIS Sync — quick start: `make demo` then `make test`. Everything lives inside this folder:
# the virtualenv in .venv/, the Airflow home (SQLite) in .airflow/ — both git-ignored.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES := False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS := admin:admin
DEMO_ID := demo-academy
DEMO_DROP := $(AIRFLOW_HOME)/mis-drop/$(DEMO_ID)
DEMO_DIRECTORY := $(AIRFLOW_HOME)/misync-directory.db
DEMO_LOG := $(AIRFLOW_HOME)/demo-run.log
EMULATOR_PORT := 18765
EMULATOR_CONN_EXTRA := {"tenant_id": "00000000-0000-0000-0000-000000000000", "allowed_hosts": \
	"graph.microsoft.com", "base_url": "http://127.0.0.1:$(EMULATOR_PORT)/v1.0/"}
EMULATOR_CONN := {"conn_type": "msgraph", "login": "demo-client-id", "password": "demo-secret", \
	"extra": $(EMULATOR_CONN_EXTRA)}
CLASSROOM_PORT := 18766
CLASSROOM_CONN_EXTRA := {"api_endpoint": "http://127.0.0.1:$(CLASSROOM_PORT)/", \
	"subject": "it.admin@demo-academy.example"}
CLASSROOM_CONN := {"conn_type": "generic", "extra": $(CLASSROOM_CONN_EXTRA)}
# Both emulators in the background, stopped together (each saves its state on SIGTERM); a busy port
# stops the demo at once. Ports: make demo EMULATOR_PORT=… CLASSROOM_PORT=…
export BIN EMULATOR_PORT CLASSROOM_PORT
export DEMO_DOMAIN := demo-academy.example
export DEMO_ADMIN := it.admin@demo-academy.example
START_EMULATORS := tools/demo-emulators.sh start
STOP_EMULATORS := tools/demo-emulators.sh stop
# The UI listens on this machine only unless you say otherwise (make ui AIRFLOW__API__HOST=0.0.0.0).
export AIRFLOW__API__HOST ?= 127.0.0.1
# The simple auth manager's password file, made by airflow-init so the demo can name it at once.
PASSWORDS_FILE := $(AIRFLOW_HOME)/simple_auth_manager_passwords.json.generated

.PHONY: install airflow-init demo ui test lint format benchmark clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt constraints.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip wheel
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

# The Airflow metadata DB (SQLite) and the demo's two Connections: the MIS file drop and the directory.
airflow-init: install
	mkdir -p -m 700 $(AIRFLOW_HOME)  # holds the demo directory DB and run folders: owner-only
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (cat $(AIRFLOW_HOME)/db-migrate.log; exit 1)
	$(BIN)/airflow connections delete mis_demo_academy > /dev/null 2>&1 || true
	$(BIN)/airflow connections delete misync_directory > /dev/null 2>&1 || true
	$(BIN)/airflow connections get misync_credentials_key > /dev/null 2>&1 || \
		$(BIN)/airflow connections add misync_credentials_key --conn-type generic \
		--conn-password="$$($(BIN)/python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')" > /dev/null
	$(BIN)/airflow connections add mis_demo_academy --conn-type fs \
		--conn-extra '{"path": "$(DEMO_DROP)"}' > /dev/null
	$(BIN)/airflow connections add misync_directory --conn-type generic \
		--conn-extra '{"sqlalchemy_url": "sqlite:///$(DEMO_DIRECTORY)"}' > /dev/null
	$(BIN)/airflow connections delete msgraph_demo > /dev/null 2>&1 || true
	$(BIN)/airflow connections add msgraph_demo --conn-type msgraph --conn-login demo-client-id \
		--conn-password demo-secret --conn-extra '$(EMULATOR_CONN_EXTRA)' > /dev/null
	$(BIN)/airflow pools set misync_graph 4 "Concurrent Microsoft Graph sync tasks" > /dev/null
	$(BIN)/airflow connections delete google_demo > /dev/null 2>&1 || true
	$(BIN)/airflow connections add google_demo --conn-type generic \
		--conn-extra '$(CLASSROOM_CONN_EXTRA)' > /dev/null
	$(BIN)/airflow pools set misync_google 1 "Google Classroom sync tasks (one per impersonated admin)" > /dev/null
	test -s $(PASSWORDS_FILE) || (umask 077; $(BIN)/python -c \
		'import json, secrets; print(json.dumps({"admin": secrets.token_urlsafe(12)}))' > $(PASSWORDS_FILE))

demo: airflow-init
	$(BIN)/misync generate --profile secondary --seed 42 --out $(DEMO_DROP) \
		--establishment-id $(DEMO_ID) --laestab 8814001
	@echo "Starting LOCAL EMULATORS of Microsoft Graph (port $(EMULATOR_PORT)) and Google Classroom"
	@echo "(port $(CLASSROOM_PORT)): not a real tenant ..."
	$(START_EMULATORS)
	@echo "Running DAG mis_sync__demo_academy end to end through the Airflow CLI (log: $(DEMO_LOG)) ..."
	AIRFLOW_CONN_MSGRAPH_DEMO='$(EMULATOR_CONN)' AIRFLOW_CONN_GOOGLE_DEMO='$(CLASSROOM_CONN)' \
		$(BIN)/airflow dags test mis_sync__demo_academy > $(DEMO_LOG) 2>&1 \
		|| ($(STOP_EMULATORS); tail -n 40 $(DEMO_LOG); exit 1)
	$(STOP_EMULATORS)
	@echo
	$(BIN)/misync report $(DEMO_ID)
	@echo
	@echo "See it in the Airflow UI: make ui, then open http://localhost:8080 (user admin;"
	@echo "password in $(PASSWORDS_FILE))."
	@echo
	@echo "The demo school's data as a OneRoster 1.2 API for apps (docs/oneroster-api.md). The demo app:"
	@$(BIN)/misync apps list --directory-url sqlite:///$(DEMO_DIRECTORY) | grep "  active   Demo app  " \
		|| $(BIN)/misync apps add 'Demo app' --schools $(DEMO_ID) --directory-url sqlite:///$(DEMO_DIRECTORY)
	@echo "Serve it: $(BIN)/misync serve-oneroster --directory-url sqlite:///$(DEMO_DIRECTORY)"

# airflow standalone: scheduler, DAG processor, API server and triggerer on SQLite, this repo's DAGs.
ui: airflow-init
	$(START_EMULATORS); trap '$(STOP_EMULATORS)' EXIT; \
		PATH="$(BIN):$$PATH" $(BIN)/airflow standalone

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

benchmark: install
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(AIRFLOW_HOME) .pytest_cache .ruff_cache
