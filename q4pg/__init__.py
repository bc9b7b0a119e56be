"""q4pg: a message queue that lives inside PostgreSQL (the Python client).

    import q4pg
    q = q4pg.QueueManager('dbname=app', table_name='mq')
    q.create_table()
    q.enqueue('tag', {'any': 'json'})
    with q.dequeue('tag') as data:
        ...
"""

import logging

from .client import Listener, Message, QueueManager
from .errors import (ConnectionLost, ExtensionNotInstalled, InvalidArgument, InvalidMessage,
                     PermissionDenied, Q4pgError, QueueExists, QueueNotFound)

# The version of this code, also in pyproject.toml and q4pg.control (tests/test_packaging.py).
__version__ = '1.0'

__all__ = ['QueueManager', 'Message', 'Listener', 'Q4pgError', 'ExtensionNotInstalled',
           'QueueNotFound', 'QueueExists', 'InvalidMessage', 'InvalidArgument',
           'PermissionDenied', 'ConnectionLost', '__version__']

logging.getLogger('q4pg').addHandler(logging.NullHandler())
