"""setuptools' build_py, plus the extension's SQL scripts into the package.

pyproject.toml names this class as build_py ([tool.setuptools.cmdclass]).  A
wheel (make wheel, pip install .) gets q4pg/sql/: q4pg.control and every
sql/q4pg--*.sql, the current version's built from sql/src/ when it is missing
(q4pg/sqlbuild.py).  git holds no second copy: the files are copied at build
time.  An editable install (pip install -e .) gets nothing here: q4pg reads
the checkout's sql/ (q4pg/install.py, scripts()).
"""

import importlib.util
from pathlib import Path

from setuptools.command.build_py import build_py

# setuptools loads this file by its path, with no tools package on sys.path
# (a fresh clone's build), and the q4pg package cannot be imported yet (its
# dependencies may be missing): the builder is loaded by its path too.
_spec = importlib.util.spec_from_file_location(
    'q4pg_sqlbuild', Path(__file__).resolve().parent.parent / 'q4pg' / 'sqlbuild.py')
sqlbuild = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sqlbuild)


class BuildPy(build_py):
    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            return
        target = Path(self.build_lib) / 'q4pg' / 'sql'
        target.mkdir(parents=True, exist_ok=True)
        for old in target.iterdir():            # a build/ left by an older tree
            old.unlink()
        files = dict(sqlbuild.scripts())
        files['%s.control' % sqlbuild.EXTENSION] = (
            sqlbuild.ROOT / ('%s.control' % sqlbuild.EXTENSION)).read_bytes()
        for name, content in files.items():
            (target / name).write_bytes(content)

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [
            str(Path(self.build_lib) / 'q4pg' / 'sql' / name)
            for name in list(sqlbuild.scripts()) + ['%s.control' % sqlbuild.EXTENSION]]
