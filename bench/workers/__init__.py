"""The code that runs in the benchmark's worker processes.

The sections start these in processes of their own (multiprocessing, spawn),
so 16 clients are 16 interpreters, as 16 application processes would be, and
no worker shares the GIL or a connection with another.  Every job exists
twice: through the q4pg client (q4pg.QueueManager) and as the same work in
plain psycopg2 against the baseline table "raw" (one connection per process,
reused, as QueueManager's pool reuses its own).

loops: throughput loops (section python); listeners: idle listeners (section
listen); soak: producers and consumers of the churn soak (section soak).
"""

import json

QUEUE = 'q'      # the q4pg queue (bench/setup.sql)
TAG = 't'
MESSAGE = {'n': 1}


def dumps(data):
    """JSON text as the q4pg client writes it (the spec's separators)."""
    return json.dumps(data, separators=(',', ':'), ensure_ascii=False)
