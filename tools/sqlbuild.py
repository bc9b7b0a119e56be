"""The Makefile's entry to q4pg/sqlbuild.py, which builds the extension's SQL
scripts (see its docstring):

    python3 tools/sqlbuild.py sql/q4pg--1.2.sql        the install script
    python3 tools/sqlbuild.py sql/q4pg--1.1--1.2.sql   an upgrade script into it

It loads that module by its path, so that the system's python3 runs it without
importing the q4pg package (and psycopg2 with it); `from tools import sqlbuild`
gives the same functions.
"""

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    'q4pg_sqlbuild', Path(__file__).resolve().parent.parent / 'q4pg' / 'sqlbuild.py')
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
globals().update({k: v for k, v in vars(_module).items() if not k.startswith('__')})

if __name__ == '__main__':
    sys.exit(_module.main(sys.argv))
