"""The extension's SQL scripts: the rules that build the version being made
from sql/src/, and the list of scripts the Python package ships.

    python3 tools/sqlbuild.py sql/q4pg--1.2.sql        the install script
    python3 tools/sqlbuild.py sql/q4pg--1.1--1.2.sql   an upgrade script into it

The install script is sql/src/*.sql concatenated in name order.  An upgrade
script is sql/src/upgrade/<from>--<to>.sql, where a line "-- @include <file>"
is replaced by that file of sql/src/ (state new in the version) and the line
"-- @functions@" by every function of sql/src/ (the files not named 0*) as
CREATE OR REPLACE: one source for both scripts.

The Makefile builds them with it (through tools/sqlbuild.py) while the version
is unreleased; the wheel's build (tools/build_py.py) and q4pg install in a
checkout (q4pg/install.py) build those that are missing.  It lives in the
package so that q4pg install depends on no developer tool.  Standard library
only, and importing nothing of q4pg: the Makefile and the wheel's build load
it by its path with the system's python3, before psycopg2 is there.
"""

import re
import sys
from pathlib import Path

# The checkout this file is in (q4pg/..); in an installed package the caller gives root.
ROOT = Path(__file__).resolve().parent.parent
EXTENSION = 'q4pg'
# q4pg--1.0.sql (an install script), q4pg--1.0--1.1.sql (an upgrade script)
SCRIPT_NAME = re.compile(r'^%s--(\d+(?:\.\d+)*)(?:--(\d+(?:\.\d+)*))?\.sql$' % EXTENSION)
FUNCTIONS_MARK = '-- @functions@'
INCLUDE = re.compile(r'^-- @include\s+(\S+)')


def default_version(root=ROOT):
    """default_version of the control file."""
    control = (Path(root) / ('%s.control' % EXTENSION)).read_text(encoding='utf-8')
    return re.search(r"^default_version\s*=\s*'([^']+)'", control, re.M).group(1)


def _sources(root):
    return sorted((Path(root) / 'sql' / 'src').glob('*.sql'))


def _lines(data):
    """The lines of data, each with its \\n (the last one given one if it lacks it)."""
    pieces = data.split(b'\n')
    if pieces[-1] == b'':
        pieces.pop()
    return [piece + b'\n' for piece in pieces]


def build(root=ROOT):
    """The current version's install script: sql/src/*.sql concatenated in name order."""
    return b''.join(p.read_bytes() for p in _sources(root))


def build_upgrade(name, root=ROOT):
    """The upgrade script `name` (q4pg--<from>--<to>.sql) from sql/src/upgrade/<from>--<to>.sql."""
    src = Path(root) / 'sql' / 'src'
    template = _lines((src / 'upgrade' / name[len(EXTENSION) + 2:]).read_bytes())
    marks = [n for n, line in enumerate(template) if line == (FUNCTIONS_MARK + '\n').encode()]
    if not marks:
        raise ValueError('%s has no line %s' % (name, FUNCTIONS_MARK))
    out = []
    for line in template[:marks[0]]:
        included = INCLUDE.match(line.decode('utf-8'))
        out += _lines((src / included.group(1)).read_bytes()) if included else [line]
    for source in _sources(root):
        if not source.name.startswith('0'):
            out += [re.sub(rb'^CREATE FUNCTION ', b'CREATE OR REPLACE FUNCTION ', line)
                    for line in _lines(source.read_bytes())]
    out += template[marks[0] + 1:]
    return b''.join(out)


def upgrades_into(version, root=ROOT):
    """Names of the upgrade scripts into `version` that sql/src/upgrade/ builds."""
    return sorted('%s--%s' % (EXTENSION, p.name) for p in
                  (Path(root) / 'sql' / 'src' / 'upgrade').glob('*--%s.sql' % version))


def scripts(root=ROOT):
    """{file name: contents} of every script of sql/, those of the current
    version (its install script, the upgrade scripts into it) built from
    sql/src/ when they are missing."""
    sql = Path(root) / 'sql'
    found = {p.name: p.read_bytes() for p in sorted(sql.glob('%s--*.sql' % EXTENSION))
             if SCRIPT_NAME.match(p.name)}
    version = default_version(root)
    current = '%s--%s.sql' % (EXTENSION, version)
    if current not in found:
        found[current] = build(root)
    for name in upgrades_into(version, root):
        if name not in found:
            found[name] = build_upgrade(name, root)
    return found


def main(argv):
    if len(argv) != 2 or not SCRIPT_NAME.match(Path(argv[1]).name):
        sys.stderr.write('usage: %s sql/q4pg--VERSION.sql | sql/q4pg--FROM--TO.sql\n' % argv[0])
        return 2
    out = Path(argv[1])
    upgrade = SCRIPT_NAME.match(out.name).group(2) is not None
    out.write_bytes(build_upgrade(out.name) if upgrade else build())
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
