"""Throwaway PostgreSQL clusters for q4pg's tests, demo and benchmarks.

A thin layer over testing.postgresql that adds what this project needs:

* PostgreSQL refuses to run as root.  When we are root, initdb and the server
  run as the unprivileged ``postgres`` user (through ``setpriv``, which execs,
  so the server keeps the pid we signal); otherwise as the current user.
* Ports are taken below 32768, where outgoing connections never land; or,
  on a machine shared with others, from those the environment variable
  Q4PG_TEST_PORTS names ("20000-20999", "5433", or several, comma-separated),
  which every cluster and PgBouncer of the tests, demo and bench honours.

As a library::

    with Cluster() as pg:
        psycopg2.connect(**pg.dsn())

As a command, ``python -m tools.pgcluster run -- CMD ...`` (from the repository
root) starts a cluster, runs CMD with libpq's PGHOST, PGPORT, PGUSER and
PGDATABASE pointing at it, stops the cluster and exits with CMD's status.
"""

import argparse
import os
import pwd
import random
import shutil
import signal
import socket
import subprocess
import sys
import uuid

import testing.postgresql

RUN_AS = 'postgres'  # the unprivileged user that runs the server when we are root
PORT_RANGE = (20000, 32000)
# The ports clusters and PgBouncers may take, for a machine shared with others:
# "20000-20999", "5433", or several of these separated by commas.
PORTS_VARIABLE = 'Q4PG_TEST_PORTS'


def ports():
    """The ports to choose from: those Q4PG_TEST_PORTS names, else PORT_RANGE.
    ValueError (naming the variable) when it does not parse."""
    text = os.environ.get(PORTS_VARIABLE, '').strip()
    if not text:
        return range(PORT_RANGE[0], PORT_RANGE[1] + 1)
    chosen = []
    for item in text.split(','):
        low, dash, high = item.strip().partition('-')
        try:
            first, last = int(low), int(high if dash else low)
        except ValueError:
            first = last = 0
        if not 1 <= first <= last <= 65535:
            raise ValueError('%s=%r: give a port (5433) or a range (20000-20999) from 1 to '
                             '65535, or several separated by commas' % (PORTS_VARIABLE, text))
        chosen.extend(range(first, last + 1))
    return chosen


def _free_port():
    """A port that nothing listens on now: from Q4PG_TEST_PORTS when set, else
    below 32768 (PORT_RANGE)."""
    candidates = ports()
    tries = list(candidates) if len(candidates) <= 200 else [
        random.choice(candidates) for _ in range(200)]
    random.shuffle(tries)
    for port in tries:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(('127.0.0.1', port))
            except OSError:
                continue
            return port
    where = (os.environ[PORTS_VARIABLE] + ' (%s)' % PORTS_VARIABLE
             if os.environ.get(PORTS_VARIABLE, '').strip() else '%d-%d' % PORT_RANGE)
    raise RuntimeError('no free port in %s' % where)


def _as_server_user():
    """The command prefix that runs a program as the server's user."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        raise RuntimeError('running as root and there is no %r user to run PostgreSQL as' % RUN_AS)
    return ['setpriv', '--reuid=' + RUN_AS, '--regid=' + RUN_AS, '--init-groups', '--']


class Cluster(testing.postgresql.Postgresql):
    """A testing.postgresql cluster that also starts when we are root."""

    DEFAULT_SETTINGS = dict(
        testing.postgresql.Postgresql.DEFAULT_SETTINGS,
        # -F: no fsync; tests and demos don't need durability.  Benchmarks
        # pass postgres_args of their own.
        postgres_args='-h 127.0.0.1 -F -c logging_collector=off -c max_connections=200',
        boot_timeout=60.0,
    )

    def prestart(self):
        if self.settings['port'] is None:
            self.settings['port'] = _free_port()

    def initialize_database(self):
        if os.path.exists(os.path.join(self.get_data_directory(), 'PG_VERSION')):
            return
        if os.geteuid() == 0:
            owner = pwd.getpwnam(RUN_AS)
            for root, dirs, files in os.walk(self.base_dir):
                os.chown(root, owner.pw_uid, owner.pw_gid)
                for name in files:
                    os.chown(os.path.join(root, name), owner.pw_uid, owner.pw_gid)
        args = (_as_server_user() +
                [self.initdb, '-D', self.get_data_directory(), '--lc-messages=C',
                 '--encoding=UTF8', '--locale=C'] +
                self.settings['initdb_args'].split())
        proc = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise RuntimeError('initdb failed: %s' % proc.stderr.decode(errors='replace'))

    def get_server_commandline(self):
        return _as_server_user() + super().get_server_commandline()

    def env(self):
        """libpq environment variables that point at this cluster."""
        dsn = self.dsn()
        return {'PGHOST': dsn['host'], 'PGPORT': str(dsn['port']),
                'PGUSER': dsn['user'], 'PGDATABASE': dsn['database']}

    def dsn_string(self, **kwargs):
        """The cluster's DSN as a libpq connection string."""
        return ' '.join('%s=%s' % (k if k != 'database' else 'dbname', v)
                        for k, v in self.dsn(**kwargs).items())

    def admin(self, database='postgres'):
        """An autocommit psycopg2 connection to `database` (postgres), for set-up."""
        import psycopg2  # the venv's; the `run` command needs none
        conn = psycopg2.connect(**self.dsn(database=database))
        conn.autocommit = True
        return conn

    def create_database(self, template='template0', prefix='q4pg_'):
        """A new database, a copy of `template`, named `prefix` + a random suffix;
        returns its name."""
        name = prefix + uuid.uuid4().hex[:12]
        self._admin_command('CREATE DATABASE %s TEMPLATE %s' % (name, template))
        return name

    def drop_database(self, name):
        """Drops database `name`, if it exists, disconnecting its sessions."""
        self._admin_command('DROP DATABASE IF EXISTS %s WITH (FORCE)' % name)

    def _admin_command(self, command):
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                cur.execute(command)
        finally:
            conn.close()

    def stop_immediately(self):
        """Crash-stops the server, as pg_ctl stop -m immediate does: SIGQUIT to the
        postmaster.  (testing.postgresql's terminate() always sends SIGINT, a
        clean shutdown, whatever signal it is given.)  start() brings it back
        through crash recovery.  Raises RuntimeError (after killing it) when
        the postmaster outlives SIGQUIT by 60 s."""
        proc = self.child_process
        if proc is None:
            return
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError('the postmaster did not exit within 60 s of SIGQUIT')
        finally:
            self.child_process = None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='command', required=True)
    run = sub.add_parser('run', help='start a throwaway cluster, run a command against it, stop it')
    run.add_argument('--port', type=int, help='port to listen on (default: a free one of '
                     'Q4PG_TEST_PORTS, else below 32768)')
    run.add_argument('--postgres-args', help='extra server options, as for postgres(1)')
    run.add_argument('cmd', nargs=argparse.REMAINDER, help='the command, after --')
    args = parser.parse_args(argv)

    cmd = args.cmd[1:] if args.cmd[:1] == ['--'] else args.cmd
    if not cmd:
        parser.error('run needs a command after --')
    try:
        ports()
    except ValueError as e:
        parser.error(str(e))
    settings = {}
    if args.port:
        settings['port'] = args.port
    if args.postgres_args:
        settings['postgres_args'] = Cluster.DEFAULT_SETTINGS['postgres_args'] + ' ' + args.postgres_args
    if shutil.which('setpriv') is None and os.geteuid() == 0:
        parser.error('setpriv (util-linux) is needed to run PostgreSQL as %r' % RUN_AS)
    with Cluster(**settings) as pg:
        env = dict(os.environ, **pg.env())
        print('pgcluster: PostgreSQL at %(PGHOST)s:%(PGPORT)s, user %(PGUSER)s, database %(PGDATABASE)s'
              % pg.env(), file=sys.stderr)
        status = subprocess.call(cmd, env=env)
    return status


if __name__ == '__main__':
    sys.exit(main())
