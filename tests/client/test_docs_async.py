"""docs/async.md's examples run as written: every ```python block, in order,
in one database (DSN its connection string), printing what its comments say
(the comment after a print() is the line it prints)."""

import contextlib
import io
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGE = ROOT / 'docs' / 'async.md'


def examples():
    """The code of every ```python block of the page."""
    return re.findall(r'```python\n(.*?)```', PAGE.read_text(), re.S)


def expected_output(code):
    """The lines the example's print() calls say they print, in order."""
    return [m.group(1).strip() for m in re.finditer(r'print\(.*\)\s+#\s*(.*)$', code, re.M)]


def test_the_page_has_examples():
    assert len(examples()) >= 5


def test_every_example_runs_and_prints_what_it_says(dsn):
    for n, code in enumerate(examples()):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, '%s, example %d' % (PAGE.name, n + 1), 'exec'), {'DSN': dsn})
        printed = [line.strip() for line in out.getvalue().splitlines()]
        assert printed == expected_output(code), (n + 1, code)
