# One entry point for people and CI. Every target creates the virtual environment it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: help install run test lint fuzz browser fhir-validate reliability pgbouncer typescript-client k8s docs docs-assets bench bench-service clean

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

# Two installs into the one .venv, each remembered by a stamp file: what running carelevel
# needs (make run), and that plus the tools for testing, linting and benchmarks (everything else).
RUNTIME    := $(VENV)/.installed-runtime
DEV        := $(VENV)/.installed-dev
DEV_EXTRAS := [dev,bench]

# $(call install_carelevel,EXTRAS): create .venv if missing, install carelevel[EXTRAS] editable.
define install_carelevel
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.$(1)'
endef

$(RUNTIME): pyproject.toml
	$(call install_carelevel,)
	@touch $@

# The full install holds the runtime one: make run needs no second install after it.
$(DEV): pyproject.toml
	$(call install_carelevel,$(DEV_EXTRAS))
	@touch $@ $(RUNTIME)

install: $(DEV)  ## create .venv and install carelevel with its dev tools

run: $(RUNTIME)  ## serve the API on http://127.0.0.1:8000 (embedded SQLite unless CARELEVEL_DATABASE_URL is set), installing only what running needs
	$(BIN)/carelevel serve

lint: install  ## ruff (complexity capped at 10), mypy and the layering contracts (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The suite's database: CARELEVEL_TEST_DATABASE_URL when set (empty: a SQLite file), otherwise
# the local PostgreSQL when it answers, otherwise SQLite (scripts/test_database.py).
test: install  ## lint, check the default rule set, run the test suite (PostgreSQL when reachable)
	$(MAKE) --no-print-directory lint
	$(BIN)/carelevel rules check app/engine/default_rules/iop-level-of-care.yaml
	CARELEVEL_TEST_DATABASE_URL="$$($(BIN)/python scripts/test_database.py)" $(BIN)/pytest

fuzz: install  ## schemathesis against the running service (every check, fixed seed; see README)
	tests/fuzz/run

# The pages' third-party code (LHC-Forms, axe-core) comes from npm, pinned in tests/browser.
tests/browser/node_modules/.package-lock.json: tests/browser/package-lock.json
	cd tests/browser && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

browser: install tests/browser/node_modules/.package-lock.json  ## the docs, the intake form (LHC-Forms) and the readable views in headless Chromium, offline (screenshots in reports/browser/)
	timeout 300 $(BIN)/pytest tests/browser

# The validators (ajv with HL7's R4 JSON Schema, @medplum/core, fhirpath.js) are pinned in
# tests/fhir_validation/package-lock.json.
tests/fhir_validation/node_modules/.package-lock.json: tests/fhir_validation/package-lock.json
	cd tests/fhir_validation && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error

fhir-validate: install tests/fhir_validation/node_modules/.package-lock.json  ## every kind of FHIR resource the service serves, validated offline by HL7's R4 JSON Schema (ajv) and by Medplum's validator, with every R4 invariant (fhirpath.js); the resources in reports/fhir-validation/
	timeout 300 $(BIN)/pytest tests/fhir_validation

reliability: install  ## real servers: logs, workers, shutdown; crash, outage, pool exhaustion, concurrency on a private Postgres
	timeout 600 $(BIN)/pytest tests/reliability

pgbouncer: install  ## the API specifications that lean on the database most, through a private PgBouncer in transaction mode (docs/deployment.md)
	tests/pgbouncer/run

# The generator and the compiler are pinned in scripts/typescript_client/package-lock.json.
typescript-client: install  ## TypeScript types generated from the OpenAPI document (openapi-typescript), type-checked (tsc, strict) with the API's own examples
	cd scripts/typescript_client && npm ci --no-audit --no-fund --ignore-scripts --silent
	$(BIN)/python scripts/typescript_client/dump.py
	cd scripts/typescript_client && npm run --silent generate && npm run --silent check

# kubernetes-validate carries the API schemas: no cluster, no download. 1.30: the oldest
# Kubernetes release the manifests are for. The kustomization is kustomize's, not the API's.
K8S_MANIFESTS := $(filter-out %/kustomization.yaml,$(wildcard deploy/kubernetes/*.yaml))

k8s: install  ## validate deploy/kubernetes against the Kubernetes 1.30 API schemas (strict, offline), and what ties the manifests to each other and to the service
	$(BIN)/kubernetes-validate --strict --quiet --kubernetes-version 1.30 $(K8S_MANIFESTS)
	$(BIN)/pytest -q tests/unit/test_kubernetes_manifests.py

docs: install  ## regenerate docs/rule-sets.md's fact catalogue and the examples in examples/fhir/
	$(BIN)/python -c "import pathlib, re; from app.engine.catalogue import BEGIN_MARKER as b, END_MARKER as e, render_catalogue; p = pathlib.Path('docs/rule-sets.md'); t = p.read_text(); p.write_text(t[: t.index(b)] + render_catalogue() + t[t.index(e) + len(e):])"
	$(BIN)/python -c "import json, pathlib; from app.fhir.examples import example_response as r; from app.cds_hooks.examples import example_hook_request as h; from app.fhir.terminology import Vocabulary; v = Vocabulary('https://carelevel.dev/fhir'); [pathlib.Path('examples/fhir', n).write_text(json.dumps(f(v), indent=2) + chr(10)) for n, f in (('questionnaire-response.json', r), ('patient-view-request.json', h))]"

docs-assets: install  ## re-download the pinned Swagger UI and ReDoc releases into app/static/docs
	$(BIN)/python scripts/vendor_docs_assets.py

bench: install  ## engine micro-benchmark (µs per evaluation)
	$(BIN)/python bench/engine.py

bench-service: install  ## HTTP benchmark against bare FastAPI baselines with wrk on PostgreSQL (docs/performance.md)
	$(BIN)/python bench/service.py

clean:  ## remove the virtual environment and caches
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis .schemathesis reports
