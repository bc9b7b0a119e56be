"""Both front ends behind one awaited API, for tests/client/test_front_ends.py:
AsyncQueueManager as it is, and QueueManager wrapped so that its calls are
awaited, its context managers entered with `async with` and its iterators
walked with `async for`.  The same test body then checks both.
"""

import asyncio
import contextlib

import psycopg
import psycopg2

import q4pg


async def _value(value):
    return value


class _AsyncContext:
    def __init__(self, cm):
        self._cm = cm

    async def __aenter__(self):
        return self._cm.__enter__()

    async def __aexit__(self, *exc_info):
        return self._cm.__exit__(*exc_info)

    def __aiter__(self):
        return _AsyncIterator(iter(self._cm))

    def stop(self):
        self._cm.stop()


class _AsyncIterator:
    def __init__(self, iterator):
        self._it = iterator

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            return next(self._it)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self):
        self._it.close()


class SyncFront:
    """QueueManager, awaited."""

    def __init__(self, q):
        self.q = q

    def __getattr__(self, name):
        attr = getattr(self.q, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            result = attr(*args, **kwargs)
            if name == 'listen':
                return _AsyncIterator(result)
            if hasattr(result, '__enter__') and not isinstance(result, q4pg.QueueManager):
                return _AsyncContext(result)
            return _value(result)
        return call

    async def close(self):
        self.q.close()


@contextlib.asynccontextmanager
async def session(kind, dsn):
    """A session of the caller's own for other_sess (psycopg2 for the sync client,
    psycopg 3 for the async one): yields (session, commit, rollback)."""
    if kind == 'sync':
        conn = psycopg2.connect(dsn)
        try:
            yield conn, _sync(conn.commit), _sync(conn.rollback)
        finally:
            conn.close()
    else:
        conn = await psycopg.AsyncConnection.connect(dsn)
        try:
            yield conn, conn.commit, conn.rollback
        finally:
            await conn.close()


def _sync(fn):
    async def run():
        fn()
    return run


def make(kind, dsn, table_name='mq', **kwargs):
    if kind == 'sync':
        return SyncFront(q4pg.QueueManager(dsn, table_name, **kwargs))
    return q4pg.AsyncQueueManager(dsn, table_name, **kwargs)


def run(coro):
    """Runs a test's coroutine in a new event loop (the sync client blocks in it)."""
    return asyncio.run(coro)
