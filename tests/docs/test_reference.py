"""The reference tables of docs/ name what the code has: every SQL function
of docs/sql.md exists with the parameter names given (named notation works),
every public SQL function is in the table; every QueueManager method of
docs/python.md has the signature given, every public one is documented; the
commands of docs/cli.md are the q4pg command's."""

import inspect
import re
import subprocess
import sys

import pytest

import q4pg
from tests.docs import markdown

DOCS = markdown.ROOT / 'docs'


def first_cells(page):
    """The code spans of the first cell of each row of the page's tables."""
    spans = []
    for line in page.read_text().split('\n'):
        if line.startswith('| `'):
            cell = line[1:].split(' | ')[0]
            spans += re.findall(r'`([^`]+)`', cell)
    return spans


def split_args(text):
    """'a, b DEFAULT f(x, y), c' -> ['a', 'b DEFAULT f(x, y)', 'c']"""
    parts, depth, current = [], 0, ''
    for ch in text:
        if ch == ',' and depth == 0:
            parts.append(current.strip())
            current = ''
            continue
        depth += {'(': 1, '[': 1, ')': -1, ']': -1}.get(ch, 0)
        current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def calls(page):
    """[(name, [argument text, ...])] of the calls written in the first cells."""
    found = []
    for span in first_cells(page):
        m = re.match(r'^(\w+)\((.*)\)$', span)
        if m:
            found.append((m.group(1), split_args(m.group(2))))
    return found


@pytest.fixture
def functions(conn):
    """{name: [[input argument names], ...]} of q4pg's functions in the test database."""
    with conn.cursor() as cur:
        cur.execute("""
            SELECT p.proname, coalesce(p.proargnames[1:p.pronargs], '{}')
            FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
            WHERE p.proname LIKE 'q4pg%' AND n.nspname = 'public'
              AND p.prorettype <> 'trigger'::regtype""")
        result = {}
        for name, args in cur.fetchall():
            result.setdefault(name, []).append(args)
        return result


def test_every_sql_function_of_the_table_exists_with_its_parameter_names(functions):
    documented = calls(DOCS / 'sql.md')
    assert len(documented) >= 25
    wrong = []
    for name, args in documented:
        names = [a.split()[0] for a in args if a != '...']
        if name not in functions:
            wrong.append('%s: no such function' % name)
        elif not any(names == have[:len(names)] for have in functions[name]):
            wrong.append('%s(%s): the function has %s' % (name, ', '.join(names), functions[name]))
    assert wrong == []


def test_every_public_sql_function_is_in_the_table(functions):
    """Public functions name their parameters plainly; the internal ones p_*."""
    documented = {name for name, _ in calls(DOCS / 'sql.md')} | {'q4pg_register_idle'}
    public = {name for name, overloads in functions.items()
              if any(args and not any(a.startswith('p_') for a in args) for args in overloads)}
    assert public - documented == set()


def doc_signature(args):
    """['tag', 'other_sess=None', '*', 'raw=False'] -> [('tag', None, False), ...]:
    (name, default text, keyword-only)."""
    result, kwonly = [], False
    for a in args:
        if a == '*':
            kwonly = True
            continue
        if a.startswith('*'):                   # *args: the ones after it are keyword-only
            result.append((a[1:], None, False))
            kwonly = True
            continue
        name, _, default = a.partition('=')
        result.append((name, default or None, kwonly))
    return result


def code_signature(func):
    result = []
    for p in inspect.signature(func).parameters.values():
        if p.name in ('self', 'cls'):
            continue
        default = None if p.default is inspect.Parameter.empty else repr(p.default)
        result.append((p.name, default, p.kind == p.KEYWORD_ONLY))
    return result


def test_every_method_of_the_python_table_has_the_signature_given():
    documented = calls(DOCS / 'python.md')
    assert len(documented) >= 25
    text = (DOCS / 'python.md').read_text()
    ctor = re.search(r'`QueueManager\((.*?)\)`', text).group(1)
    documented.append(('__init__', split_args(ctor)))
    wrong = []
    for name, args in documented:
        method = getattr(q4pg.QueueManager, name, None)
        if method is None:
            wrong.append('%s: no such method' % name)
        elif doc_signature(args) != code_signature(method):
            wrong.append('%s: documented %s, the code has %s'
                         % (name, doc_signature(args), code_signature(method)))
    assert wrong == []


def test_every_public_method_is_documented():
    text = (DOCS / 'python.md').read_text()
    public = [n for n in dir(q4pg.QueueManager) if not n.startswith('_')]
    missing = [n for n in public if not re.search(r'`[^`]*\b%s\b[^`]*`' % n, text)]
    assert missing == []


def test_the_commands_of_the_cli_table_are_the_q4pg_commands():
    usage = subprocess.run([sys.executable, '-m', 'q4pg', '--help'], capture_output=True,
                           text=True, check=True).stdout
    listed = usage[usage.index('commands:'):]
    commands = set(re.findall(r'^  ([a-z][a-z-]*)  ', listed, re.M))
    assert len(commands) >= 15
    documented = {span.split()[0] for span in first_cells(DOCS / 'cli.md')}
    assert documented == commands
