# The two commands of the README: `make demo` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
export KUBECONFIG ?= $(CURDIR)/.e2e/kubeconfig

.PHONY: test lint unit e2e demo bench image chart install cluster-up cluster-down venv mutate cli-zipapp

venv: $(STAMP)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,bench,lint]'
	touch $@

## A real migration on the local cluster: counter on worker-1 -> worker-2, state continued.
demo: venv install
	bash e2e/demo.sh

## Migration benchmark on the local cluster: our tool against three baselines; writes docs/benchmarks.md and .png.
bench: venv install
	PYTHONPATH=e2e:e2e/tests $(VENV)/bin/python -m bench

## Build the project image from the Containerfile (operator + node-helper) and load it into every node.
image: cluster-up
	bash e2e/cluster/project-image.sh

## The chart as a package a platform team installs: dist/podmigration-<version>.tgz (after helm lint --strict).
chart:
	helm=$$(bash e2e/cluster/build-helm.sh) && $$helm lint --strict charts/podmigration && \
		$$helm package charts/podmigration -d dist

## Install the packaged chart (operator, node-helpers, CRD, RBAC) on the local cluster with that image.
install: image chart
	bash e2e/install.sh

## Lint, unit tests and end-to-end tests (brings the local cluster up when needed).
test: lint unit e2e

## ruff (lint and format) over the whole tree; types (mypy) and the import order (import-linter contracts in
## operator/.importlinter and node-helper/.importlinter) of the operator, the node-helper and their contract package.
lint: venv
	$(VENV)/bin/ruff check operator node-helper contract tests e2e
	$(VENV)/bin/ruff format --check operator node-helper contract tests e2e
	$(VENV)/bin/mypy operator/podmigration
	$(VENV)/bin/mypy node-helper/nodehelper contract/pmcontract
	$(VENV)/bin/lint-imports operator/.importlinter
	$(VENV)/bin/lint-imports node-helper/.importlinter

# The fault suite needs the operator's test-only fault points; only this target's install turns them on.
e2e: export PM_FAULT_INJECTION = true
unit: venv
	$(VENV)/bin/python -m pytest -q tests

e2e: venv install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/python -m pytest -q --durations=30 e2e/tests

## Plant each bug of tests/mutations/mutations.txt in turn and run its tests: every one must be caught (not in `test`).
mutate: venv
	$(VENV)/bin/python tests/mutations/mutate.py

## The local multi-node cluster (kubeconfig: .e2e/kubeconfig).
cluster-up:
	bash e2e/cluster/up.sh

cluster-down:
	bash e2e/cluster/down.sh

## The CLI alone, as one file (not part of `make test`): dist/kubectl-migrate, a shiv zipapp of the podmigration
## package and only the CLI's dependencies (kubernetes, argcomplete; no kopf, cryptography or zstandard), unpacked
## into ~/.shiv on its first run (the client's compiled dependencies cannot load from a zip), so it is built for the
## platform and Python it is built on; also installed as kubectl_complete-migrate; dist/kubectl-migrate.tar.gz holds
## both, dist/migrate.yaml is its krew manifest (krew/migrate.yaml.in).
CLI_DEPS := kubernetes argcomplete durationpy pyyaml
cli-zipapp: venv
	rm -rf dist/cli && mkdir -p dist/cli
	$(VENV)/bin/pip install -q shiv
	$(VENV)/bin/pip install -q --target dist/cli --no-deps .
	$(VENV)/bin/pip install -q --target dist/cli $(CLI_DEPS)
	rm -rf dist/cli/bin dist/cli/nodehelper
	$(VENV)/bin/shiv --site-packages dist/cli -p '/usr/bin/env python3' -e podmigration.cli.__main__:run \
		--reproducible -o dist/kubectl-migrate
	cp dist/kubectl-migrate dist/kubectl_complete-migrate
	tar -C dist -czf dist/kubectl-migrate.tar.gz kubectl-migrate kubectl_complete-migrate
	version=$$($(VENV)/bin/python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])'); \
	sha=$$(sha256sum dist/kubectl-migrate.tar.gz | cut -d' ' -f1); \
	sed -e "s/@VERSION@/$$version/" -e "s/@SHA256@/$$sha/" krew/migrate.yaml.in > dist/migrate.yaml
	SHIV_ROOT=$(CURDIR)/dist/shiv dist/kubectl-migrate --help > /dev/null
	@echo "dist/kubectl-migrate, dist/kubectl_complete-migrate, dist/kubectl-migrate.tar.gz, dist/migrate.yaml"
