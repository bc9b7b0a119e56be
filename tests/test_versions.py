"""Released scripts never change, and sql/src/ builds the current one.

A version is released when CHANGELOG.md gives it a date ("## 1.0 — 2026-12-01");
sql/released.sha256 holds the checksum of each released script: its install
script and the upgrade scripts into it (sql/q4pg--<from>--<version>.sql).
On release, commit them (git add -f: .gitignore hides built scripts) and add
their checksums.
"""

import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def released_versions():
    return re.findall(r'^## (\d+(?:\.\d+)+) — \d{4}-\d{2}-\d{2}',
                      (ROOT / 'CHANGELOG.md').read_text(encoding='utf-8'), re.M)


def recorded_checksums():
    lines = (ROOT / 'sql' / 'released.sha256').read_text().split('\n')
    return dict(reversed(line.split()) for line in lines if line.strip())


def released_scripts():
    scripts = set()
    for version in released_versions():
        scripts.add('sql/q4pg--%s.sql' % version)
        scripts.update('sql/' + p.name for p in (ROOT / 'sql').glob('q4pg--*--%s.sql' % version))
    return scripts


def test_every_released_script_is_recorded_and_unchanged():
    checksums = recorded_checksums()
    for script in sorted(released_scripts()):
        assert script in checksums, '%s is released but has no checksum' % script
        digest = hashlib.sha256((ROOT / script).read_bytes()).hexdigest()
        assert digest == checksums[script], '%s changed after its release' % script
    assert set(checksums) == released_scripts()


def test_the_sources_build_the_current_script():
    control = (ROOT / 'q4pg.control').read_text()
    version = re.search(r"default_version\s*=\s*'([^']+)'", control).group(1)
    built = b''.join(p.read_bytes() for p in sorted((ROOT / 'sql' / 'src').glob('*.sql')))
    assert (ROOT / 'sql' / ('q4pg--%s.sql' % version)).read_bytes() == built, (
        'sql/src/ does not build sql/q4pg--%s.sql: run make, or, if %s is released, '
        'start the next version' % (version, version))
