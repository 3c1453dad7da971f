# The two commands of the README: `make demo` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
export KUBECONFIG ?= $(CURDIR)/.e2e/kubeconfig

.PHONY: test unit e2e demo bench image install cluster-up cluster-down venv

venv: $(STAMP)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,bench]'
	touch $@

## A real migration on the local cluster: counter on worker-1 -> worker-2, state continued.
demo: venv install
	bash e2e/demo.sh

## Migration benchmark on the local cluster: our tool against three baselines; writes docs/benchmarks.md and .png.
bench: venv install
	PYTHONPATH=e2e:e2e/tests $(VENV)/bin/python -m bench

## Build the project image (operator + node-helper) and load it into every node.
image: cluster-up
	bash e2e/cluster/project-image.sh

## Install the chart (operator, node-helpers, CRD, RBAC, TLS) on the local cluster with that image.
install: image
	bash e2e/install.sh

## Unit tests and end-to-end tests (brings the local cluster up when needed).
test: unit e2e

# The fault suite needs the operator's test-only fault points; only this target's install turns them on.
e2e: export PM_FAULT_INJECTION = true
unit: venv
	$(VENV)/bin/python -m pytest -q tests

e2e: venv install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/python -m pytest -q e2e/tests

## The local multi-node cluster (kubeconfig: .e2e/kubeconfig).
cluster-up:
	bash e2e/cluster/up.sh

cluster-down:
	bash e2e/cluster/down.sh
