"""Fixtures of the command line's tests: the q4pg command run as a subprocess
against the test's database (helpers in tests/cli/helpers.py)."""

import subprocess

import pytest

from tests.cli.helpers import PYTHON_M, ROOT, clean_env, run_command


@pytest.fixture
def env(pg_env):
    """Environment whose PG* variables point at the test's database."""
    return clean_env(pg_env)


@pytest.fixture
def q4pg(env):
    """q4pg(*args, input=None) -> CompletedProcess of `python -m q4pg ARGS`."""
    def run(*args, input=None, env_extra=None, timeout=60):
        e = dict(env, **(env_extra or {}))
        return run_command(PYTHON_M, e, args, input=input, timeout=timeout)
    return run


@pytest.fixture
def mq(psql):
    """The default queue mq (json, 1023 characters), made with plain SQL."""
    psql("SELECT q4pg_create_queue('mq')")
    return 'mq'


@pytest.fixture
def spawn(env):
    """spawn(*args) -> Popen of `python -m q4pg ARGS` (binary pipes); killed at the end."""
    procs = []

    def start(*args, stdout=subprocess.PIPE):
        proc = subprocess.Popen(PYTHON_M + list(args), env=env, stdout=stdout,
                                stderr=subprocess.PIPE, cwd=ROOT)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
