# Build, test and lint the lifeboat.backup collection. `make help` lists the targets;
# docs/development.md explains them.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
SANITY_PYTHON := 3.11
BINDEP ?= bindep.txt
UNIT_ARGS ?= -n auto tests/unit

ROOT := $(CURDIR)
VENV := $(ROOT)/.venv
BIN := $(VENV)/bin
VENV_STAMP := $(VENV)/.requirements.stamp
BUILD := $(ROOT)/build
COLLECTIONS := $(BUILD)/collections
COLLECTION_DIR := $(COLLECTIONS)/ansible_collections/lifeboat/backup
DIST := $(BUILD)/dist
CORE_COMPAT := $(BUILD)/core-compat
CORE_COMPAT_STAMP := $(CORE_COMPAT)/.requirements.stamp
CORE_COMPAT_TESTS := tests/integration/ecosystem/test_awx_project.py tests/integration/playbooks/test_demo_keys.py
# Each test stage writes there how many tests it skipped and why, for the closing summary of `make test`.
SUMMARY := $(BUILD)/test-summary
# ansible-test keeps its sanity virtual environments and pip bootstrap script under ~/.ansible/test:
# it runs with HOME here.
ANSIBLE_TEST_HOME := $(BUILD)/ansible-test-home

# Ansible refuses to start without a UTF-8 locale, and CI may set none.
export LC_ALL := C.UTF-8
export LANG := C.UTF-8
export PATH := $(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# Keep everything Ansible writes inside build/, never in the user's home.
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_HOME := $(BUILD)/ansible-home
export ANSIBLE_LOCAL_TEMP := $(BUILD)/ansible-tmp

# LIFEBOAT_PARTIAL=1 asks for a partial run: tests and stages that lack a part (a server, a tool, root...) skip
# instead of failing, and missing system packages are reported instead of stopping the run.
ifneq ($(filter-out 0 1,$(LIFEBOAT_PARTIAL)),)
$(error LIFEBOAT_PARTIAL='$(LIFEBOAT_PARTIAL)': set it to 1 for a partial run, or leave it unset (or 0) for a full run)
endif
export LIFEBOAT_PARTIAL
PARTIAL := $(filter 1,$(LIFEBOAT_PARTIAL))

TEST_STAGES := deps venv unit integration core-compat sanity lint molecule
FLEET_CHECK = $(BIN)/python tests/fleet/fleet.py check
MOLECULE_TEST = molecule test --all

.PHONY: help deps venv test unit integration core-compat collection sanity lint molecule demo changelog clean distclean

help:
	@echo 'make test         deps, then unit, integration, core-compat, sanity, lint, molecule (stops at the first failure);'
	@echo '                  LIFEBOAT_PARTIAL=1 make test: a partial run, where what lacks a part skips'
	@echo 'make deps         install the missing system packages of $(BINDEP) (as root), or list them'
	@echo 'make unit         pytest tests/unit in parallel (pytest-xdist)'
	@echo 'make integration  pytest tests/integration against real servers and tools'
	@echo 'make core-compat  the AWX project and the demo under the lowest ansible-core meta/runtime.yml admits'
	@echo 'make collection   copy the checkout to $(COLLECTION_DIR)'
	@echo 'make sanity       ansible-test sanity on Python $(SANITY_PYTHON), no ignore file'
	@echo 'make lint         ansible-lint with the production profile'
	@echo 'make molecule     molecule test --all (needs scenarios, root and systemd-nspawn)'
	@echo 'make demo         build and install the collection, run demo/demo.yml'
	@echo 'make changelog    lint the changelog fragments, then release the version in galaxy.yml'
	@echo 'make clean        remove build output and test caches; distclean also removes .venv'

# Runs with the system's Python: python3-venv may be among the packages it installs.
deps:
	$(PYTHON) tests/system_deps.py $(if $(PARTIAL),--partial )$(BINDEP)

venv: $(VENV_STAMP)

# Reinstalled whenever the requirements change; `make distclean` for a venv from scratch.
$(VENV_STAMP): requirements.txt requirements-test.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

# Each stage runs in its own make so that its duration is printed, and the first failure stops the run. The
# closing summary gives each stage's outcome and what it skipped (the file the stage wrote in $(SUMMARY)).
test:
	@rm -rf $(SUMMARY); mkdir -p $(SUMMARY); failed=; \
	for stage in $(TEST_STAGES); do \
		if [ -n "$$failed" ]; then echo "$$stage: not run" >> $(SUMMARY)/all; continue; fi; \
		start=$$(date +%s); \
		echo "==> $$stage"; \
		if $(MAKE) $$stage; then outcome=passed; else outcome=FAILED; failed=$$stage; fi; \
		echo "==> $$stage $$outcome after $$(( $$(date +%s) - start ))s"; \
		{ printf '%s: %s after %ss' $$stage $$outcome $$(( $$(date +%s) - start )); \
		  if [ -s $(SUMMARY)/$$stage ]; then printf ', '; cat $(SUMMARY)/$$stage; else echo; fi; } >> $(SUMMARY)/all; \
	done; \
	echo "==> summary$(if $(PARTIAL), of a partial run (LIFEBOAT_PARTIAL=1))"; \
	cat $(SUMMARY)/all; \
	[ -z "$$failed" ]

# pytest exits 5 when it collects nothing: reported, not a failure, while a suite is still empty. The fourth
# argument is another Python to run pytest with.
define run_pytest
	mkdir -p $(SUMMARY); rc=0; LIFEBOAT_SUMMARY=$(SUMMARY)/$(2) $(or $(4),$(BIN)/python) -m pytest $(1) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "$(2): no tests collected in $(3)"; elif [ $$rc -ne 0 ]; then exit $$rc; fi
endef

unit: $(VENV_STAMP)
	@$(call run_pytest,$(UNIT_ARGS),unit,tests/unit)

integration: $(VENV_STAMP)
	@$(call run_pytest,tests/integration,integration,tests/integration)

# The oldest ansible-core that meta/runtime.yml's requires_ansible admits (>=2.16.0: any 2.16), in a virtual
# environment of its own with the collection's requirements and pytest: the AWX example project's test builds,
# installs and runs the playbooks with it, as does the demo's.
$(CORE_COMPAT_STAMP): requirements.txt requirements-test.txt meta/runtime.yml | $(VENV_STAMP)
	lowest=$$($(BIN)/python -c 'import re, sys, yaml; \
		spec = yaml.safe_load(open("meta/runtime.yml"))["requires_ansible"]; found = re.fullmatch(r">=(\d+\.\d+)\.0", spec); \
		print(found.group(1)) if found else sys.exit("meta/runtime.yml: requires_ansible %r is not >=X.Y.0" % spec)'); \
	rm -rf $(CORE_COMPAT); $(PYTHON) -m venv $(CORE_COMPAT); \
	$(CORE_COMPAT)/bin/python -m pip install --quiet -r requirements.txt "ansible-core~=$$lowest.0" \
		"$$(grep -x 'pytest[<>=,0-9.]*' requirements-test.txt)"
	touch $@

core-compat: $(CORE_COMPAT_STAMP)
	@$(call run_pytest,$(CORE_COMPAT_TESTS),core-compat,$(CORE_COMPAT_TESTS),$(CORE_COMPAT)/bin/python)

# ansible-test needs the collection under ansible_collections/NAMESPACE/NAME. The copy leaves out what
# galaxy.yml's build_ignore leaves out of a release (anchored at the top, `*` may cross directories,
# as in ansible-galaxy). It gets a git repository of its own: otherwise ansible-test would find the
# checkout's, in which build/ is ignored, and see no files at all.
collection: $(VENV_STAMP)
	mkdir -p $(COLLECTION_DIR)
	$(BIN)/python -c 'import yaml; print("\n".join("/" + p.replace("*", "**") \
		for p in yaml.safe_load(open("galaxy.yml"))["build_ignore"]))' > $(BUILD)/collection.exclude
	rsync -a --delete --exclude-from=$(BUILD)/collection.exclude --exclude=__pycache__ --exclude='*.pyc' \
		./ $(COLLECTION_DIR)/
	if [ ! -d $(COLLECTION_DIR)/.git ]; then \
		git -C $(COLLECTION_DIR) init --quiet; \
		printf '%s\n' /tests/output/ __pycache__/ '*.pyc' > $(COLLECTION_DIR)/.git/info/exclude; \
	fi

# ansible-test downloads its get-pip script from a host outside the package index, which CI cannot
# reach: tests/sanity/pip_bootstrap.py takes its place in ansible-test's cache. ansible-test skips a
# test quietly when it sees no file to check: tests/sanity/check_results.py fails the target when a
# test that has files to check did not run, and prints what passed, failed and was skipped.
sanity: collection
	pip_version=$$($(BIN)/python -c 'from ansible_test._internal.python_requirements import get_venv_packages; \
		from ansible_test._internal.host_configs import NativePythonConfig; \
		print(get_venv_packages(NativePythonConfig(version="$(SANITY_PYTHON)"))["pip"])'); \
	install -D -m 0644 tests/sanity/pip_bootstrap.py \
		$(ANSIBLE_TEST_HOME)/.ansible/test/cache/get_pip_$${pip_version//./_}.py
	rm -rf $(COLLECTION_DIR)/tests/output/junit
	rc=0; \
	(cd $(COLLECTION_DIR) && HOME=$(ANSIBLE_TEST_HOME) \
		ansible-test sanity --local --python $(SANITY_PYTHON) --color no --junit) || rc=$$?; \
	mkdir -p $(SUMMARY); \
	$(BIN)/python tests/sanity/check_results.py $(COLLECTION_DIR)/tests/output/junit $(COLLECTION_DIR) $(SUMMARY)/sanity; \
	exit $$rc

lint: $(VENV_STAMP)
	ansible-lint --profile production

# tests/fleet/fleet.py check says why the fleet cannot start here (not root, no systemd-nspawn, ...): exit 77.
# That fails the stage, unless the run is partial.
molecule: $(VENV_STAMP) collection
	@mkdir -p $(SUMMARY); \
	scenarios=$$(ls molecule/*/molecule.yml 2>/dev/null | wc -l); \
	rc=0; reason=$$($(FLEET_CHECK) 2>&1) || rc=$$?; \
	if [ $$rc -eq 77 ]; then \
		reason=$${reason#fleet: unavailable: }; \
		if [ -n "$(PARTIAL)" ]; then \
			skipped="$$scenarios scenarios skipped (partial run, LIFEBOAT_PARTIAL=1): $$reason"; \
			echo "molecule: $$skipped"; echo "$$skipped" > $(SUMMARY)/molecule; \
		else \
			echo "molecule: missing part: $$reason; a full run needs the fleet (see tests/fleet/README.md)," \
				"or set LIFEBOAT_PARTIAL=1 for a partial run" >&2; \
			echo "$$scenarios scenarios not run, missing part: $$reason" > $(SUMMARY)/molecule; \
			exit 1; \
		fi; \
	elif [ $$rc -ne 0 ]; then echo "$$reason"; exit $$rc; \
	else \
		echo "0 skipped" > $(SUMMARY)/molecule; \
		$(MOLECULE_TEST); \
	fi

demo: $(VENV_STAMP)
	rm -rf $(DIST)
	ansible-galaxy collection build --output-path $(DIST) .
	ansible-galaxy collection install --force -p $(COLLECTIONS) $(DIST)/lifeboat-backup-*.tar.gz
	ansible-playbook -i demo/inventory.yml demo/demo.yml

changelog: $(VENV_STAMP)
	antsibull-changelog lint
	antsibull-changelog release

clean:
	[ ! -f $(BUILD)/fleet/state.json ] || $(PYTHON) tests/fleet/fleet.py down
	rm -rf $(BUILD) tests/output .pytest_cache .hypothesis lifeboat-backup-*.tar.gz
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
