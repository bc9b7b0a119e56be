"""q4pg: a message queue that lives inside PostgreSQL (the Python client).

    import q4pg
    q = q4pg.QueueManager('dbname=app', table_name='mq')
    q.create_table()
    q.enqueue('tag', {'any': 'json'})
    with q.dequeue('tag') as data:
        ...

    q = q4pg.AsyncQueueManager('dbname=app', table_name='mq')   # asyncio: pip install 'q4pg[async]'
    await q.enqueue('tag', {'any': 'json'})
    async with q.dequeue('tag') as data:
        ...

Layers, each using the one below through its public interface only:
cli.py (the q4pg command; cli_commands.py, cli_admin.py) -> client.py
(QueueManager: held.py, lease.py) -> listener.py (Listener) -> db.py (psycopg2);
and aio.py (AsyncQueueManager) -> aio_listen.py -> aio_db.py (psycopg 3).
Both front ends share the core: core.py (messages, encoding, checks, the
lifecycle) and calls.py (each SQL call, statements.py's text); errors.py
holds the exceptions of all of them.
"""

import logging

from .client import LeasedMessage, Message, QueueManager
from .errors import (ConnectionLost, ExtensionNotInstalled, InvalidArgument, InvalidDsn,
                     InvalidMessage, LeaseLost, PermissionDenied, Q4pgError, QueueExists,
                     QueueNotFound, UndecodableMessage, UpgradeNeeded)
from .listener import Listener

# The version of this code, also in pyproject.toml and q4pg.control (tests/test_packaging.py).
__version__ = '1.2'

__all__ = ['QueueManager', 'AsyncQueueManager', 'Message', 'LeasedMessage', 'Listener', 'Q4pgError',
           'ExtensionNotInstalled', 'QueueNotFound', 'QueueExists', 'InvalidMessage',
           'InvalidArgument', 'PermissionDenied', 'ConnectionLost', 'InvalidDsn',
           'UndecodableMessage', 'LeaseLost', 'UpgradeNeeded', '__version__']

logging.getLogger('q4pg').addHandler(logging.NullHandler())


def __getattr__(name: str) -> object:
    # AsyncQueueManager is imported when first asked for: the sync client needs
    # no psycopg 3 (pip install 'q4pg[async]' brings it).
    if name == 'AsyncQueueManager':
        from .aio import AsyncQueueManager
        return AsyncQueueManager
    raise AttributeError('module %r has no attribute %r' % (__name__, name))
