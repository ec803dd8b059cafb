# The README's commands. Everything installs inside the checkout: .venv, node_modules, .cache.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ENV ?= dev
PYTHON_BOOTSTRAP ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
CDK := node_modules/.bin/cdk

# Keep every tool cache inside the checkout (git-ignored); no AWS network calls at synth.
export CDK_HOME := $(CURDIR)/.cache/cdk
export JSII_RUNTIME_PACKAGE_CACHE_ROOT := $(CURDIR)/.cache/jsii
export XDG_CACHE_HOME := $(CURDIR)/.cache
export PIP_CACHE_DIR := $(CURDIR)/.cache/pip
export npm_config_cache := $(CURDIR)/.cache/npm
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := 1
export AWS_EC2_METADATA_DISABLED := true
# XGBoost's OpenMP threads spin while idle: on a small shared machine that costs 10x.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: help install install-dev synth test lint format schema templates-exist cfn-lint checkov checkov-variants local-run local-approve bench mutate diff deploy bootstrap clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.runtime: requirements.txt requirements.lock
	@echo "==> creating $(VENV) and installing the CDK app's dependencies (first run: ~2 min)"
	@test -x $(PY) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt -c requirements.lock
	@touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt requirements.lock pyproject.toml
	@echo "==> installing test and step-script dependencies into $(VENV), and the mlops CLI"
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c requirements.lock
	@$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

node_modules/.installed: package.json package-lock.json
	@echo "==> installing the pinned AWS CDK CLI into node_modules (npm ci)"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV)/.runtime node_modules/.installed ## venv + pinned CDK CLI (what synth needs)
install-dev: install $(VENV)/.dev ## plus test, lint and step-script dependencies

synth: install ## synthesize every stack of ENV (dev|staging|prod|all|delivery) into cdk.out/, no credentials (GUARD=1: also Control Tower rules)
	@echo "==> cdk synth -c env=$(ENV)"
	@rm -rf cdk.out
	@$(CDK) synth --quiet -c env=$(ENV) $(if $(GUARD),-c guard=true)
	@echo "==> templates in cdk.out/: $$(ls cdk.out/*.template.json | wc -l)"

test: install-dev ## run the whole test suite (both cores; the CDK tests share one worker; COVERAGE=1: branch coverage with its floor, as CI runs it)
	@$(PY) -m pytest -n 2 --dist loadgroup $(if $(COVERAGE),-p pytest_cov --cov --cov-report=term)

lint: install-dev ## ruff (lint + format check) and mypy
	@$(PY) -m ruff check .
	@$(PY) -m ruff format --check .
	@$(PY) -m mypy app.py mlops_config stacks constructs lambdas pipeline_code cli
	@# Each function again as the runtime sees it (its folder and lambdas/shared/ on the path),
	@# so its bare imports (`import dataset_ledger`) are checked, not taken for Any.
	@for fn in $(filter-out lambdas/shared/,$(wildcard lambdas/*/)); do \
	  MYPYPATH=$${fn%/}:lambdas/shared $(PY) -m mypy --follow-imports=silent \
	    --cache-dir .mypy_cache/$$(basename $$fn) $$fn || exit 1; done

# A check over no templates would pass without checking anything: fail instead.
templates-exist:
	@n=$$(ls cdk.out/*.template.json 2>/dev/null | wc -l); \
	  if [ "$$n" -eq 0 ]; then echo "no templates in cdk.out/: run make synth first" >&2; exit 1; fi

cfn-lint: templates-exist install-dev ## cfn-lint every template in cdk.out/ (run make synth first)
	@$(VENV)/bin/cfn-lint --ignore-checks W3005 -- cdk.out/*.template.json
	@echo "cfn-lint: no findings in $$(ls cdk.out/*.template.json | wc -l) templates"

.checkov-venv/.installed: requirements-checkov.txt
	@echo "==> installing checkov into its own venv (.checkov-venv)"
	@test -x .checkov-venv/bin/python || $(PYTHON_BOOTSTRAP) -m venv .checkov-venv
	@.checkov-venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

checkov: templates-exist .checkov-venv/.installed ## checkov on every template in cdk.out/ (skips only with a reason in metadata)
	@.checkov-venv/bin/checkov --config-file .checkov.yaml
	@echo "checkov: no findings in $$(ls cdk.out/*.template.json | wc -l) templates"

checkov-variants: install-dev .checkov-venv/.installed ## checkov on the variants only the tests build (both vpc forms, Model Monitor, serverless, the delivery pipeline; see tests/variants.py)
	@for dir in $$($(PY) -m tests.variants); do \
	  echo "==> checkov $$dir"; \
	  .checkov-venv/bin/checkov --config-file .checkov.yaml -d $$dir || exit 1; done
	@echo "checkov: no findings in the variants"

schema: install ## regenerate cdk.schema.json (what editors check cdk.json against) from mlops_config
	@$(PY) -m mlops_config.json_schema

format: install-dev ## apply ruff's fixes and formatting
	@$(PY) -m ruff check --fix .
	@$(PY) -m ruff format .

# PARAM_Name=value make variables become --param Name=value (a pipeline parameter's value).
LOCAL_RUN_PARAMS = $(foreach v,$(filter PARAM_%,$(.VARIABLES)),--param "$(patsubst PARAM_%,%,$(v))=$($(v))")

local-run: install-dev ## execute the pipeline definition locally (PIPELINE=evaluation DEFINITION=file DATA=file TARGET=col POSITIVE=value PROBLEM=binary|multiclass|regression TRAINER=xgboost|sklearn|custom MIN_POSITIVES=n ROWS=n PARAM_Name=value NO_CACHE=1 WORKERS=n PROCESSORS=n MLFLOW=0 (no run in mlruns/); RUNNER=scripts or FAST=1: the step scripts only, CHAMPION=model folder, TUNE=n: a random search of n trials first; SCORE=file: batch-score a file with the scripts run's model, MODEL=model folder or model.tar.gz)
ifneq ($(SCORE),)
	@$(PY) -m pipeline_code.local_score --file "$(SCORE)" $(if $(MODEL),--model-dir "$(MODEL)")
else ifneq ($(filter scripts,$(RUNNER))$(FAST)$(TUNE),)
	@$(PY) -m pipeline_code.local_run --workdir .build/local-run-scripts $(if $(DATA),--data "$(DATA)") $(if $(TARGET),--target "$(TARGET)") $(if $(POSITIVE),--positive-class "$(POSITIVE)") $(if $(PROBLEM),--problem "$(PROBLEM)") $(if $(MIN_POSITIVES),--min-positives $(MIN_POSITIVES)) $(if $(TRAINER),--trainer $(TRAINER)) $(if $(ROWS),--rows $(ROWS)) $(if $(CHAMPION),--champion-model-dir "$(CHAMPION)") $(if $(TUNE),--tune $(TUNE) --env $(ENV)) $(if $(filter 0,$(MLFLOW)),,--mlflow-store mlruns)
else
	@$(PY) -m pipeline_code.local_pipeline --env $(ENV) run $(if $(PIPELINE),--pipeline $(PIPELINE)) $(if $(DEFINITION),--definition "$(DEFINITION)") $(if $(DATA),--data "$(DATA)") $(if $(TARGET),--target "$(TARGET)") $(if $(POSITIVE),--positive-class "$(POSITIVE)") $(if $(PROBLEM),--problem "$(PROBLEM)") $(if $(MIN_POSITIVES),--min-positives $(MIN_POSITIVES)) $(if $(TRAINER),--trainer $(TRAINER)) $(if $(ROWS),--rows $(ROWS)) $(if $(NO_CACHE),--no-cache) $(if $(WORKERS),--workers $(WORKERS)) $(if $(PROCESSORS),--processors $(PROCESSORS)) $(if $(filter 0,$(MLFLOW)),,--mlflow-store mlruns) $(LOCAL_RUN_PARAMS)
endif

local-approve: install-dev ## approve the newest package of the local run's registry (VERSION=n for another)
	@$(PY) -m pipeline_code.local_pipeline --env $(ENV) approve $(if $(VERSION),--version $(VERSION))

bench: install-dev ## run the benchmarks and print a table
	@$(PY) -m benchmarks.run

mutate: install-dev ## mutation testing of one critical module, niced (MODULE=ledger|completion|gate|deployer|config|errors; CPU-heavy)
	@nice $(PY) -m benchmarks.mutate $(or $(MODULE),ledger)

diff: install ## cdk diff against the deployed ENV (needs AWS credentials)
	@$(CDK) diff -c env=$(ENV)

deploy: install ## cdk deploy every stack of ENV (needs AWS credentials)
	@$(CDK) deploy --all -c env=$(ENV)

bootstrap: install ## cdk bootstrap the account/region of ENV (needs AWS credentials)
	@$(CDK) bootstrap -c env=$(ENV)

clean: ## remove build output (keeps .venv and node_modules)
	rm -rf cdk.out .build
