"""The fingerprint of a run: machine, server settings, code; results.md's header."""

import datetime
import hashlib
import os
import platform
import re
import subprocess

import psycopg2

from bench.harness import ROOT

SETTINGS = ('fsync', 'synchronous_commit', 'full_page_writes', 'wal_sync_method', 'shared_buffers',
            'max_wal_size', 'checkpoint_timeout', 'autovacuum', 'max_connections', 'wal_level')


def fingerprint(bench):
    """What ran where: a dict of strings for results.json and results.md."""
    meminfo = open('/proc/meminfo').read()
    mem_kb = int(re.search(r'MemTotal:\s+(\d+)', meminfo).group(1))
    cpu = re.search(r'model name\s*:\s*(.*)', open('/proc/cpuinfo').read())
    settings = bench.query('SELECT name, setting, unit FROM pg_settings WHERE name = ANY (%s) '
                           'ORDER BY name', (list(SETTINGS),))
    return dict(
        date=datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z'),
        host=platform.node(), nproc=os.cpu_count(), cpu=cpu.group(1) if cpu else '?',
        memory='%.1f GiB' % (mem_kb / 2**20), kernel=platform.release(),
        postgres=bench.query('SELECT version()')[0][0],
        settings=['%s=%s%s' % (n, s, u or '') for n, s, u in settings],
        python=platform.python_version(), psycopg2=psycopg2.__version__.split()[0],
        commit=_commit(),
        installed=_installed_script(bench),
        peers=bench.peer_versions,
        client=bench.client_problem and 'q4pg client not importable: ' + bench.client_problem
        or 'q4pg client importable')


def _commit():
    """The checkout's commit, and whether sql/ or q4pg/ differ from it."""
    commit = subprocess.run(['git', '-C', ROOT, 'rev-parse', '--short', 'HEAD'],
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(['git', '--no-optional-locks', '-C', ROOT, 'status', '--porcelain',
                            '--', 'sql', 'q4pg'], capture_output=True, text=True).stdout.strip()
    return commit + (' (sql/ or q4pg/ modified)' if dirty else '')


def _installed_script(bench):
    """The script of the q4pg version the bench database runs, and the first 12 hex
    digits of its sha1 ('?' when the file cannot be read)."""
    sharedir = bench.query("SELECT setting FROM pg_config() WHERE name = 'SHAREDIR'")[0][0]
    version = bench.query("SELECT extversion FROM pg_extension WHERE extname = 'q4pg'")
    name = 'q4pg--%s.sql' % (version[0][0] if version else '?')
    script = os.path.join(sharedir, 'extension', name)
    if not os.path.exists(script):
        return name + ' sha1 ?'
    with open(script, 'rb') as f:
        return '%s sha1 %s' % (name, hashlib.sha1(f.read()).hexdigest()[:12])
