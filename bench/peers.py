"""q4pg's peers on the bench cluster: PgQ from Debian, PGMQ from PyPI.

PgQ's package is installed with apt-get when it is missing and we are root
(otherwise the command goes into the notes); PGMQ's SQL-only install script is
taken from PyPI's `pgmq` package (`pip download` into bench/work/, not
installed into the venv).  A peer that cannot be had is left out, with a note.
"""

import os
import shutil
import subprocess
import sys
import zipfile

from bench.harness import BENCH, MESSAGE, Store, log

PGQ_PACKAGE = 'postgresql-15-pgq3'
PGMQ_PYPI = 'pgmq==1.1.4'          # ships PGMQ's own SQL-only install script (pgmq/sql/pgmq.sql)


def install(bench):
    """Installs PgQ (queue pq) and PGMQ (queue pm) in the bench cluster, where
    they can be had; sets bench.has_pgq / has_pgmq, their stores and versions."""
    bench.has_pgq = _install_pgq(bench)
    bench.has_pgmq = _install_pgmq(bench)


def _install_pgq(bench):
    if not _pgq_available(bench):
        bench.notes.append('PgQ not measured: its extension is not installed; install it with '
                           '`sudo apt-get install -y %s`.' % PGQ_PACKAGE)
        return False
    bench.execute('CREATE EXTENSION pgq')
    bench.execute("SELECT pgq.create_queue('pq')")
    version = bench.query('SELECT pgq.version()')[0][0]
    bench.stores['pq'] = Store(bench, 'pq', "SELECT pgq.drop_queue('pq', true), pgq.create_queue('pq')")
    bench.peer_versions['PgQ'] = '%s (Debian %s)' % (version, PGQ_PACKAGE)
    return True


def _pgq_available(bench):
    """True when the bench server has PgQ's extension files (apt-get installs
    them when root)."""
    def available():
        return bench.query("SELECT count(*) FROM pg_available_extensions WHERE name = 'pgq'")[0][0]
    if available():
        return True
    if os.geteuid() == 0 and shutil.which('apt-get'):
        log('installing %s with apt-get' % PGQ_PACKAGE)
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        subprocess.run(['apt-get', 'update', '-qq'], env=env)
        subprocess.run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', PGQ_PACKAGE],
                       env=env)
        return bool(available())
    return False


def _install_pgmq(bench):
    script = _pgmq_script(bench.notes)
    if not script:
        return False
    try:
        bench.psql_file(script, single_transaction=True)
    except RuntimeError as e:
        bench.notes.append('PGMQ not measured: its install script failed: %s' % str(e)[-300:])
        return False
    bench.execute("SELECT pgmq.create('pm')")
    bench.stores['pm'] = Store(
        bench, 'pm', 'TRUNCATE pgmq.q_pm RESTART IDENTITY',
        prefill="SELECT count(*) FROM pgmq.send_batch('pm', array_fill('%s'::jsonb, ARRAY[%%s]))"
                % MESSAGE,
        count='SELECT count(*) FROM pgmq.q_pm', vacuum='pgmq.q_pm')
    with open(os.path.join(os.path.dirname(script), 'VERSION')) as f:
        version = f.read().strip()
    bench.peer_versions['PGMQ'] = '%s (SQL-only install shipped in PyPI %s)' % (version, PGMQ_PYPI)
    return True


def _pgmq_script(notes):
    """The path of PGMQ's SQL install script, taken from PyPI's `pgmq` package
    (downloaded into bench/work/pgmq/ once), or None."""
    workdir = os.path.join(BENCH, 'work', 'pgmq')
    script = os.path.join(workdir, 'pgmq.sql')
    if os.path.exists(script):
        return script
    os.makedirs(workdir, exist_ok=True)
    proc = subprocess.run([sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps',
                           '--only-binary', ':all:', '-d', workdir, PGMQ_PYPI],
                          capture_output=True, text=True)
    wheels = [f for f in os.listdir(workdir) if f.endswith('.whl')]
    if proc.returncode != 0 or not wheels:
        notes.append('PGMQ not measured: `pip download %s` failed: %s'
                     % (PGMQ_PYPI, (proc.stderr.strip().splitlines() or ['?'])[-1]))
        return None
    with zipfile.ZipFile(os.path.join(workdir, wheels[0])) as whl:
        try:
            sql = whl.read('pgmq/sql/pgmq.sql')
            version = whl.read('pgmq/sql/VERSION').decode().strip()
        except KeyError:
            notes.append('PGMQ not measured: %s carries no pgmq/sql/pgmq.sql' % wheels[0])
            return None
    with open(script, 'wb') as f:
        f.write(sql)
    with open(os.path.join(workdir, 'VERSION'), 'w') as f:
        f.write(version + '\n')
    return script
