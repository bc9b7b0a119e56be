"""The extension's SQL scripts: the one rule that builds the current version's
install script from sql/src/, and the list of scripts the Python package ships.

    python3 tools/sqlbuild.py OUT    writes the concatenation of sql/src/*.sql to OUT

The Makefile builds sql/q4pg--<default_version>.sql with it while that version
is unreleased; the wheel's build (tools/build_py.py) and q4pg's installer in a
checkout (q4pg/scripts.py) use it when that file is missing.  Standard library
only: the Makefile runs it with the system's python3.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTENSION = 'q4pg'
# q4pg--1.0.sql (an install script), q4pg--1.0--1.1.sql (an upgrade script)
SCRIPT_NAME = re.compile(r'^%s--(\d+(?:\.\d+)*)(?:--(\d+(?:\.\d+)*))?\.sql$' % EXTENSION)


def default_version(root=ROOT):
    """default_version of the control file."""
    control = (Path(root) / ('%s.control' % EXTENSION)).read_text(encoding='utf-8')
    return re.search(r"^default_version\s*=\s*'([^']+)'", control, re.M).group(1)


def build(root=ROOT):
    """The current version's install script: sql/src/*.sql concatenated in name order."""
    return b''.join(p.read_bytes() for p in sorted((Path(root) / 'sql' / 'src').glob('*.sql')))


def scripts(root=ROOT):
    """{file name: contents} of every script of sql/, the current version's
    install script built from sql/src/ when it is missing."""
    sql = Path(root) / 'sql'
    found = {p.name: p.read_bytes() for p in sorted(sql.glob('%s--*.sql' % EXTENSION))
             if SCRIPT_NAME.match(p.name)}
    current = '%s--%s.sql' % (EXTENSION, default_version(root))
    if current not in found:
        found[current] = build(root)
    return found


def main(argv):
    if len(argv) != 2:
        sys.stderr.write('usage: %s OUT\n' % argv[0])
        return 2
    Path(argv[1]).write_bytes(build())
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
