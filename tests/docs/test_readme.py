"""The README's first example runs as written (the database name aside), with
a message waiting and with an empty queue."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]  # the repository


def first_example():
    """The code of the README's first ```python block."""
    text = (ROOT / 'README.md').read_text()
    return re.search(r'```python\n(.*?)```', text, re.S).group(1)


@pytest.fixture
def example(dsn):
    code = first_example()
    assert "dsn='dbname=app'" in code
    return code.replace("dsn='dbname=app'", 'dsn=%r' % dsn)


def test_the_first_example_sends_the_message(example):
    sent = []
    namespace = {'send': sent.append}
    exec(example, namespace)
    assert sent == [{'to': 'ann@example.com'}]
    assert namespace['q'].count() == 0
    namespace['q'].close()


def test_the_first_example_sends_nothing_from_an_empty_queue(example):
    sent = []
    namespace = {'send': sent.append}
    exec(example, namespace)
    # the same dequeue again: the queue is empty now
    exec(example[example.index('with q.dequeue'):], namespace)
    assert sent == [{'to': 'ann@example.com'}]
    namespace['q'].close()
