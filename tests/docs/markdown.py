"""The pieces of the project's Markdown pages the docs tests look at: fenced
code blocks (with their info strings) and relative links.

The pages: README.md and docs/*.md.  A fenced block's info string is its
language, then optional flags (GitHub shows only the language):

    ```sql            runs (psql, against the page's database `app`)
    ```python         runs (exec, top-level await allowed; doctest when it holds >>> lines)
    ```sh             runs (bash -e, with q4pg, psql and jq on PATH)
    ```console        runs each `$ ` line with bash and checks what follows it
                      against the output (`...` matches anything, as in doctest;
                      a last line `[exit N]` when the command exits N, not 0)
    ```text           never runs: an output sample, a table's shape, a diagram
    ```LANG norun     never runs: a fragment, or a command that cannot run in a
                      test (make, pip, a remote host); any language
    ```LANG fresh     runs on a new database `app` with q4pg installed
    ```LANG bare      runs on a new database `app` without q4pg

Any other block (no language, or a language that cannot run, without
`norun`) is refused by tests/docs/test_examples.py.
"""

import pathlib
import re
from typing import List, NamedTuple

ROOT = pathlib.Path(__file__).resolve().parents[2]

RUNNABLE = ('sql', 'python', 'sh', 'console')
NEVER_RUN = ('text',)
FLAGS = ('norun', 'fresh', 'bare')

_FENCE = re.compile(r'^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>.*)$')
# [text](target) and [text]: target, outside code; images too.
_LINK = re.compile(r'\]\((?P<target>[^)\s]+)(?:\s+"[^"]*")?\)')
_HEADING = re.compile(r'^#{1,6}\s+(?P<title>.+?)\s*#*\s*$')


class Block(NamedTuple):
    page: str        # path relative to the repository, e.g. 'docs/sql.md'
    line: int        # line number of the opening fence
    language: str    # first word of the info string ('' when none)
    flags: tuple     # the other words
    code: str

    @property
    def name(self):
        return '%s:%d' % (self.page, self.line)

    @property
    def runs(self):
        return (self.language in RUNNABLE and 'norun' not in self.flags)


def pages() -> List[pathlib.Path]:
    """README.md, then docs/*.md in name order."""
    return [ROOT / 'README.md'] + sorted((ROOT / 'docs').glob('*.md'))


def relative(path: pathlib.Path) -> str:
    return str(path.relative_to(ROOT))


def blocks(path: pathlib.Path) -> List[Block]:
    """The fenced code blocks of a page, in order (indented fences too, as in lists)."""
    found = []
    lines = path.read_text().split('\n')
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence = len(m.group('indent')), m.group('fence')
        words = m.group('info').split()
        body = []
        j = i + 1
        while j < len(lines) and not re.match(r'^ *%s%s*\s*$' % (re.escape(fence), fence[0]),
                                              lines[j]):
            body.append(lines[j][indent:] if lines[j][:indent].strip() == '' else lines[j])
            j += 1
        if j == len(lines):
            raise AssertionError('%s:%d: a code block is never closed' % (relative(path), i + 1))
        found.append(Block(relative(path), i + 1, words[0] if words else '', tuple(words[1:]),
                           '\n'.join(body) + '\n'))
        i = j + 1
    return found


def _without_fences(path: pathlib.Path) -> str:
    return re.sub(r'(?ms)^ *(```+|~~~+).*?^ *\1\s*$', '', path.read_text())


def prose(path: pathlib.Path) -> str:
    """The page without its fenced blocks and inline code (links in code are no links)."""
    return re.sub(r'`[^`\n]*`', '', _without_fences(path))


def links(path: pathlib.Path) -> List[str]:
    """The link targets of a page's prose."""
    return [m.group('target') for m in _LINK.finditer(prose(path))]


def anchors(path: pathlib.Path) -> set:
    """The anchors GitHub makes of a page's headings (lower case, punctuation
    dropped, spaces made hyphens; a repeated one gets -1, -2...)."""
    seen = {}
    result = set()
    for line in _without_fences(path).split('\n'):
        m = _HEADING.match(line)
        if not m:
            continue
        title = re.sub(r'\[([^]]*)\]\([^)]*\)', r'\1', m.group('title'))   # a link: its text
        slug = re.sub(r'[^\w\- ]', '', title.strip().lower()).replace(' ', '-')
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        result.add(slug if n == 0 else '%s-%d' % (slug, n))
    return result
