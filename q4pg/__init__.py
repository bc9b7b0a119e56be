"""q4pg: a message queue that lives inside PostgreSQL (the Python client).

    import q4pg
    q = q4pg.QueueManager('dbname=app', table_name='mq')
    q.create_table()
    q.enqueue('tag', {'any': 'json'})
    with q.dequeue('tag') as data:
        ...

Layers, each using the one below through its public interface only:
cli.py (the q4pg command) -> client.py (QueueManager, Message) ->
listener.py (Listener) -> db.py (pool, transactions, SQL text); errors.py
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

__all__ = ['QueueManager', 'Message', 'LeasedMessage', 'Listener', 'Q4pgError',
           'ExtensionNotInstalled', 'QueueNotFound', 'QueueExists', 'InvalidMessage',
           'InvalidArgument', 'PermissionDenied', 'ConnectionLost', 'InvalidDsn',
           'UndecodableMessage', 'LeaseLost', 'UpgradeNeeded', '__version__']

logging.getLogger('q4pg').addHandler(logging.NullHandler())
