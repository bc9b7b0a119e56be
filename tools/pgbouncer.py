"""A throwaway PgBouncer in front of a tools.pgcluster cluster, for q4pg's tests.

Debian's ``pgbouncer`` (tools/deps installs it) with a configuration of its
own in a temporary directory:

* every database of the cluster, reached through the pooler under its own name
  (``* = host=... port=...``), as the cluster's user with ``auth_type = trust``
  (the test clusters trust local connections; PgBouncer still wants the user
  listed in its auth_file);
* ``pool_mode`` (transaction by default) and ``pool_size`` (server connections
  per database and user) as asked;
* a port below 32768 on 127.0.0.1, no Unix socket;
* run as the ``postgres`` user when we are root, as the cluster is.

As a library::

    with Cluster() as pg, PgBouncer(pg, pool_size=2) as bouncer:
        psycopg2.connect(bouncer.dsn_string(database='app'))

start() waits until the port answers and raises, with PgBouncer's log, when it
does not; stop() ends the process (SIGTERM, then SIGKILL) and removes the
directory.
"""

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from tools.pgcluster import RUN_AS, _as_server_user, _free_port

PGBOUNCER = os.environ.get('PGBOUNCER', shutil.which('pgbouncer') or '/usr/sbin/pgbouncer')
BOOT_TIMEOUT = 30.0  # seconds to wait for the port

CONFIG = """\
[databases]
* = host={host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {dir}/userlist.txt
admin_users = {user}
pool_mode = {pool_mode}
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 500
max_db_connections = 0
server_round_robin = 0
logfile = {dir}/pgbouncer.log
pidfile = {dir}/pgbouncer.pid
"""


class PgBouncer:
    """A PgBouncer process in front of `cluster` (a tools.pgcluster.Cluster)."""

    def __init__(self, cluster, pool_mode='transaction', pool_size=2):
        self.cluster = cluster
        self.pool_mode, self.pool_size = pool_mode, pool_size
        self.user = cluster.dsn()['user']
        self.port = None
        self.dir = None
        self.process = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def start(self):
        if not os.path.exists(PGBOUNCER):
            raise RuntimeError('%s not found: tools/deps installs Debian\'s pgbouncer' % PGBOUNCER)
        server = self.cluster.dsn()
        self.dir = tempfile.mkdtemp(prefix='q4pg-pgbouncer-')
        self.port = _free_port()
        with open(os.path.join(self.dir, 'pgbouncer.ini'), 'w') as f:
            f.write(CONFIG.format(host=server['host'], server_port=server['port'],
                                  port=self.port, dir=self.dir, user=self.user,
                                  pool_mode=self.pool_mode, pool_size=self.pool_size))
        with open(os.path.join(self.dir, 'userlist.txt'), 'w') as f:
            f.write('"%s" ""\n' % self.user)
        if os.geteuid() == 0:
            owner = pwd.getpwnam(RUN_AS)
            for name in ('', 'pgbouncer.ini', 'userlist.txt'):
                os.chown(os.path.join(self.dir, name), owner.pw_uid, owner.pw_gid)
        self.process = subprocess.Popen(
            _as_server_user() + [PGBOUNCER, os.path.join(self.dir, 'pgbouncer.ini')],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + BOOT_TIMEOUT
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = self.log()
                self.stop()
                raise RuntimeError('pgbouncer did not start on port %s; its log:\n%s'
                                   % (self.port, log))
            time.sleep(0.05)

    def _answers(self):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            return s.connect_ex(('127.0.0.1', self.port)) == 0

    def log(self):
        """PgBouncer's log so far ('' when there is none)."""
        try:
            with open(os.path.join(self.dir, 'pgbouncer.log'), errors='replace') as f:
                return f.read()
        except (OSError, TypeError):
            return ''

    def stop(self):
        """Ends PgBouncer (SIGTERM: at once, closing every connection) and removes its files."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            self.process = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def dsn(self, **kwargs):
        """The cluster's dsn() (a dict for psycopg2.connect) through PgBouncer."""
        return dict(self.cluster.dsn(**kwargs), host='127.0.0.1', port=self.port)

    def dsn_string(self, **kwargs):
        """The cluster's DSN through PgBouncer, as a libpq connection string."""
        return ' '.join('%s=%s' % (k if k != 'database' else 'dbname', v)
                        for k, v in self.dsn(**kwargs).items())

    def admin(self, command):
        """Runs `command` (SHOW SERVERS...) on PgBouncer's admin console; its rows as dicts."""
        import psycopg2
        conn = psycopg2.connect(**self.dsn(database='pgbouncer'))
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(command)
                if cur.description is None:
                    return []
                names = [c.name for c in cur.description]
                return [dict(zip(names, row)) for row in cur.fetchall()]
        finally:
            conn.close()
