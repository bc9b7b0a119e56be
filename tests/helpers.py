"""Small helpers shared by the test modules of tests/ (import helpers)."""

import time

WAIT = 10  # seconds: a generous liveness timeout, never a speed requirement


def wait_until(predicate, timeout=WAIT):
    """Calls predicate until it is true or timeout seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()
