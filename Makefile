# q4pg: the PostgreSQL extension (PGXS) and the project's everyday commands.
#
#   make demo     the tutorial end to end on a throwaway cluster
#   make test     make installcheck (pg_regress + isolation) and pytest, in both
#                 install forms (CREATE EXTENSION, and q4pg install's plain SQL)
#   make install  install the extension into the server (root, or sudo)
#   make wheel    the Python package as a wheel in dist/, built offline

EXTENSION    = q4pg
EXTVERSION   = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(EXTENSION).control)
# The install script of the version being made is built from sql/src/ (one
# file per concern, concatenated in name order); the scripts of released
# versions are committed and never change (tests/test_versions.py).
SCRIPT       = sql/$(EXTENSION)--$(EXTVERSION).sql
SOURCES      = $(sort $(wildcard sql/src/*.sql))
# The upgrade script into it likewise: sql/src/upgrade/<from>--<version>.sql
# holds what changes the state (05_state.sql) by hand, and at its line
# "-- @functions@" every function of sql/src/ comes in as CREATE OR REPLACE
# (and at "-- @include <file>" that file of sql/src/, state new in the version).
# Both rules are q4pg/sqlbuild.py's (run through tools/sqlbuild.py), which the
# wheel's build and q4pg install in a checkout use too.
UPGRADES     = $(patsubst sql/src/upgrade/%,sql/$(EXTENSION)--%,$(wildcard sql/src/upgrade/*--$(EXTVERSION).sql))
DATA         = $(sort $(wildcard sql/$(EXTENSION)--*.sql) $(SCRIPT) $(UPGRADES))
REGRESS      = $(patsubst tests/sql/%.sql,%,$(sort $(wildcard tests/sql/*.sql)))
REGRESS_OPTS = --inputdir=tests
ISOLATION    = $(patsubst tests/specs/%.spec,%,$(sort $(wildcard tests/specs/*.spec)))
ISOLATION_OPTS = --inputdir=tests

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifeq ($(PGXS),)
$(info pg_config not found: installing PostgreSQL's packages with tools/deps)
PGXS := $(shell tools/deps >&2 && $(PG_CONFIG) --pgxs)
endif
ifeq ($(PGXS),)
$(error PostgreSQL's server packages are missing; see the line above for the command to install them)
endif
include $(PGXS)

# A version is released once CHANGELOG.md gives it a date: from then on its
# committed script is used as it is, and sql/src/ belongs to the next version.
RELEASED := $(shell grep -qs '^\#\# $(EXTVERSION) — [0-9]' CHANGELOG.md && echo yes)
ifeq ($(RELEASED),)
all: $(SCRIPT) $(UPGRADES)
$(SCRIPT): $(SOURCES) q4pg/sqlbuild.py
	$(PYTHON) tools/sqlbuild.py $@
sql/$(EXTENSION)--%--$(EXTVERSION).sql: sql/src/upgrade/%--$(EXTVERSION).sql $(SOURCES) q4pg/sqlbuild.py
	$(PYTHON) tools/sqlbuild.py $@
endif

PYTHON  ?= python3
VENV     = .venv
SUDO     = $(if $(filter 0,$(shell id -u)),,sudo)
# Runs a command against a throwaway cluster (as user postgres when we are root).
CLUSTER  = $(VENV)/bin/python -m tools.pgcluster run --
# Python builds use the venv's setuptools (make venv installs it), so they need
# no download; pip checks it meets pyproject.toml's [build-system] requires.
PIP_BUILD = --no-build-isolation --check-build-dependencies
EXTRA_CLEAN = build dist

.PHONY: deps venv demo test pytest wheel
deps:
	@tools/deps

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip setuptools
	$(VENV)/bin/pip install --quiet $(PIP_BUILD) -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# build/ goes first: setuptools would put files left there by an older tree
# (a module since deleted) into the wheel.  The wheel carries sql/'s scripts
# (tools/build_py.py): all builds the current one first.
wheel: venv all
	rm -rf build
	$(VENV)/bin/pip wheel --quiet --no-deps $(PIP_BUILD) -w dist .

demo: deps venv
	$(SUDO) $(MAKE) install
	$(CLUSTER) $(VENV)/bin/python tools/demo.py

test: deps venv
	$(SUDO) $(MAKE) install
	$(CLUSTER) $(MAKE) installcheck
	$(MAKE) pytest

# pytest runs twice: against q4pg installed with CREATE EXTENSION, then with
# q4pg install (plain SQL into public, Q4PG_INSTALL=sql), the second time only
# what can differ between the forms: the SQL API, the client (which looks for
# q4pg's schema), membership, upgrades, dumps.  Run once: the fault-injection
# suites (the server and the client, alike in both forms), the hostile-input
# and injection checks of the functions' code (the same code), the command
# line (its install commands make their own installs), packaging.  pg_regress
# runs once too: its scripts begin with CREATE EXTENSION.
SQL_FORM_TESTS = tests/test_harness.py tests/test_upgrades.py tests/extension tests/client tests/docs \
                 tests/reliability/test_dumps.py tests/reliability/test_security.py \
                 --deselect tests/reliability/test_security.py::test_no_injection_through_any_argument
pytest: venv
	$(VENV)/bin/pytest tests
	Q4PG_INSTALL=sql $(VENV)/bin/pytest $(SQL_FORM_TESTS)

.PHONY: bench soak
# Benchmarks: q4pg against plain SQL and its peers, on a cluster of their own.
bench: deps venv
	$(SUDO) $(MAKE) install
	$(VENV)/bin/pip install --quiet $(PIP_BUILD) -e '.[bench]'
	$(VENV)/bin/python -m bench.run

# The long reliability runs (pytest -m soak).
soak: deps venv
	$(SUDO) $(MAKE) install
	$(VENV)/bin/pytest -m soak tests
