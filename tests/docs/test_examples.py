"""Every code example of README.md and docs/*.md runs, in page order, so the
docs cannot drift from the code (tests/docs/markdown.py says how a block is
marked).

Each page gets a database named `app` (the name the examples use; q4pg
installed in the session's form, a schema `app` for `app.jobs`), made again
for a block marked `fresh` (with q4pg) or `bare` (without).  libpq's PG*
variables point at the test cluster, so `psql -d app`, `dsn='dbname=app'` and
`q4pg --queue app.jobs ...` run as written.  The roles the examples grant to
(`app`, `producer`, `consumer`) exist.  The stand-ins for the reader's own
work: in Python send(), handle() (both record what they got), heartbeat()
and done() (True); in shell, a command `resize`, also as ./resize (exits 0).
"""

import ast
import asyncio
import doctest
import faulthandler
import inspect
import os
import subprocess
import sys

import psycopg2
import pytest

from tests.docs import markdown
from tests.helpers import TEMPLATE

PAGES = markdown.pages()
TIMEOUT = 120         # seconds a block may take before the run is stopped
ROLES = ('app', 'producer', 'consumer')


def test_every_block_is_marked():
    """A block that does not run says so: `text` or `norun`; nothing else is skipped."""
    unmarked = [b.name + ' (```%s)' % ' '.join((b.language,) + b.flags)
                for page in PAGES for b in markdown.blocks(page)
                if not b.runs and b.language not in markdown.NEVER_RUN
                and 'norun' not in b.flags]
    assert unmarked == [], 'blocks neither runnable nor marked text/norun: %s' % unmarked
    unknown = [b.name for page in PAGES for b in markdown.blocks(page)
               if set(b.flags) - set(markdown.FLAGS)]
    assert unknown == [], 'unknown flags in the info strings of %s' % unknown


def test_the_pages_have_examples():
    """A guard on the extraction itself: a page's examples are found."""
    counts = {markdown.relative(p): sum(b.runs for b in markdown.blocks(p)) for p in PAGES}
    assert counts['README.md'] >= 3
    assert sum(counts.values()) >= 25, counts


class Page:
    """The state one page's examples share: the database `app`, the Python namespace."""

    def __init__(self, cluster, tmp_path):
        self.cluster = cluster
        self.env = dict(os.environ, **cluster.env())
        self.env.update(PGDATABASE='app',
                        PATH=os.pathsep.join([str(tmp_path / 'bin'), os.path.dirname(sys.executable),
                                              os.environ.get('PATH', '')]))
        self.env.pop('Q4PG_DSN', None)
        self.env.pop('Q4PG_QUEUE', None)
        self.cwd = tmp_path
        (tmp_path / 'bin').mkdir()
        for resize in (tmp_path / 'bin' / 'resize', tmp_path / 'resize'):
            resize.write_text('#!/bin/sh\nexit 0\n')
            resize.chmod(0o755)
        self.received = []
        self.namespace = {'__name__': '__docs__', 'send': self.received.append,
                          'handle': self.received.append, 'heartbeat': lambda: None,
                          'done': lambda: True,
                          # docs/async.md's examples name their database DSN
                          'DSN': 'host=%s port=%s user=%s dbname=app' % (
                              self.env['PGHOST'], self.env['PGPORT'], self.env['PGUSER'])}

    def admin(self, sql):
        conn = self.cluster.admin()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def new_database(self, with_q4pg=True):
        self.admin('DROP DATABASE IF EXISTS app WITH (FORCE)')
        self.admin('CREATE DATABASE app TEMPLATE %s' % (TEMPLATE if with_q4pg else 'template0'))
        conn = psycopg2.connect(self.cluster.dsn_string(database='app'))
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute('CREATE SCHEMA app')
        conn.close()

    def drop(self):
        self.admin('DROP DATABASE IF EXISTS app WITH (FORCE)')

    def run(self, block):
        if 'fresh' in block.flags or 'bare' in block.flags:
            self.new_database(with_q4pg='bare' not in block.flags)
        getattr(self, 'run_' + block.language)(block)

    def _program(self, block, args, stdin):
        try:
            proc = subprocess.run(args, input=stdin, env=self.env, cwd=self.cwd, text=True,
                                  capture_output=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail('%s: still running after %d s:\n%s' % (block.name, TIMEOUT, block.code))
        assert proc.returncode == 0, '%s failed (exit %d):\n%s\n--- stdout:\n%s--- stderr:\n%s' % (
            block.name, proc.returncode, block.code, proc.stdout, proc.stderr)

    def run_sql(self, block):
        self._program(block, ['psql', '-X', '-v', 'ON_ERROR_STOP=1', '-f', '-'], block.code)

    def run_sh(self, block):
        self._program(block, ['bash', '-e', '-o', 'pipefail', '-s'], block.code)

    def run_console(self, block):
        """Each `$ command` runs in bash; its output (stdout and stderr) must match
        the lines after it, with doctest's ELLIPSIS; `[exit N]` ends a failing one's."""
        checker = doctest.OutputChecker()
        flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
        for command, want in console_steps(block.code):
            try:
                proc = subprocess.run(['bash', '-o', 'pipefail', '-c', command], env=self.env,
                                      cwd=self.cwd, text=True, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                pytest.fail('%s: `%s` still running after %d s' % (block.name, command, TIMEOUT))
            got = proc.stdout + ('[exit %d]\n' % proc.returncode if proc.returncode else '')
            assert checker.check_output(want, got, flags), (
                '%s: `%s`\n--- expected:\n%s--- got:\n%s' % (block.name, command, want, got))

    def run_python(self, block):
        faulthandler.dump_traceback_later(TIMEOUT, exit=True)
        saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        try:
            if '>>> ' in block.code:
                self._doctest(block)
            else:
                # top-level await runs too (an example of an asyncio client), in a new loop
                code = compile(block.code, block.name, 'exec', flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
                result = eval(code, self.namespace)
                if code.co_flags & inspect.CO_COROUTINE:
                    asyncio.run(result)
        finally:
            faulthandler.cancel_dump_traceback_later()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def _doctest(self, block):
        test = doctest.DocTestParser().get_doctest(block.code, self.namespace, block.name,
                                                   block.page, block.line)
        report = []
        runner = doctest.DocTestRunner(
            optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        result = runner.run(test, out=report.append, clear_globs=False)
        self.namespace.update(test.globs)       # DocTest ran on a copy: keep what it made
        assert result.failed == 0, ''.join(report)


def console_steps(code):
    """[(command, expected output)] of a console block: `$ ` starts a command."""
    steps = []
    for line in code.rstrip('\n').split('\n'):
        if line.startswith('$ '):
            steps.append([line[2:], ''])
        elif steps:
            steps[-1][1] += line + '\n'
    return [tuple(step) for step in steps]


@pytest.fixture(scope='module')
def roles(cluster):
    conn = cluster.admin()
    conn.autocommit = True
    with conn.cursor() as cur:
        for role in ROLES:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            if cur.fetchone() is None:
                cur.execute('CREATE ROLE %s LOGIN' % role)
    conn.close()


@pytest.mark.parametrize('page', PAGES, ids=markdown.relative)
def test_examples_run(page, cluster, roles, tmp_path):
    runnable = [b for b in markdown.blocks(page) if b.runs]
    if not runnable:
        pytest.skip('no runnable example')
    state = Page(cluster, tmp_path)
    state.new_database()
    try:
        for block in runnable:
            state.run(block)
    finally:
        for value in state.namespace.values():      # the examples' QueueManagers
            if hasattr(value, 'close') and type(value).__module__.startswith('q4pg'):
                value.close()
        state.drop()


@pytest.mark.parametrize('language, code', [
    ('sql', "SELECT q4pg_enqueue('no_such_queue', 'tag', '{}');\n"),
    ('python', "import q4pg\nq4pg.QueueManager(dsn='dbname=app', table_name='mq').count('x')\n"),
    ('python', ">>> 1 + 1\n3\n"),
    ('python', "import asyncio\nawait asyncio.sleep(0)\nassert False, 'reached'\n"),
    ('sh', "q4pg --queue no_such_queue count\necho never reached\n"),
    ('console', "$ echo 1\n2\n"),
    ('console', "$ false\n"),
])
def test_an_example_that_fails_fails_its_page(language, code, cluster, roles, tmp_path):
    """The runner does not swallow a failure (so a passing page means its examples ran)."""
    state = Page(cluster, tmp_path)
    state.new_database()
    try:
        with pytest.raises(Exception):
            state.run(markdown.Block('docs/x.md', 1, language, (), code))
    finally:
        state.drop()
