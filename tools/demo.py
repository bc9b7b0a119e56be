"""The tutorial, end to end, against the database libpq's PG* variables name.

`make demo` runs this on a throwaway cluster.  It prints a transcript like the
original tutorial's: each step as typed, then what it returned.  Any step that
does not do what the tutorial says stops the demo with an error.
"""

import os
import pprint
import subprocess
import sys
import threading
import time

import q4pg

NS = {'q4pg': q4pg}


def say(text):
    print('\n##### ' + text, flush=True)


def run(code, expect=None):
    """Prints code as typed at >>>, runs it, prints its value; checks it if asked."""
    lines = code.strip('\n').split('\n')
    print('    >>> ' + lines[0])
    for line in lines[1:]:
        print('    ... ' + line)
    try:
        value = eval(compile(code.strip(), '<demo>', 'eval'), NS)
    except SyntaxError:
        exec(compile(code.strip(), '<demo>', 'exec'), NS)
        value = None
    if value is not None:
        text = pprint.pformat(value, width=100)
        print('        => ' + text.replace('\n', '\n           '))
    if expect is not None and not expect(value):
        raise SystemExit('demo: step gave an unexpected result: %r' % (value,))
    return value


def psql(sql):
    """Runs one SQL command through psql, as a producer in another language would."""
    shown = sql.replace('\\', '\\\\').replace('"', '\\"').replace('$', '\\$')
    print('    $ psql -c "%s"' % shown)
    out = subprocess.run(['psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit('demo: psql failed: ' + out.stderr.strip())
    if out.stdout.strip():
        print('        ' + out.stdout.strip())


def main():
    say('The DBA installs the extension (once per database)')
    psql('CREATE EXTENSION IF NOT EXISTS q4pg')

    say('Connect')
    run("q = q4pg.QueueManager(dsn='', table_name='mq', data_type='json', data_length=1023)")

    say('To create queue table')
    run('q.create_table()')

    say('enqueue')
    run("q.enqueue('tag', {'the_data': 'must_be'})", lambda v: isinstance(v, int))
    run("q.enqueue('tag', {'json': 'serializable_data'})", lambda v: isinstance(v, int))
    run("q.enqueue('tag', {'more': 'data'})", lambda v: isinstance(v, int))

    say('dequeue')
    run("with q.dequeue('tag') as dq:\n    print('        =>', dq)")
    run("with q.dequeue('another-tag') as dq:\n    print('        =>', dq)")

    say('show list')
    run("q.list('tag')", lambda v: [row[2] for row in v] == ['{"json":"serializable_data"}',
                                                             '{"more":"data"}'])

    say('dequeue (guard): an exception inside the with block leaves the message queued')
    run("try:\n"
        "    with q.dequeue('tag') as dq:\n"
        "        print('        =>', dq)\n"
        "        x = 1 / 0\n"
        "except ZeroDivisionError as e:\n"
        "    print('        => !!! %s !!!' % e)")
    run("q.list('tag')", lambda v: len(v) == 2)

    say('dequeue (listen): a producer in another language (psql) wakes a Python listener')
    print('    # in a thread: for i in q.listen(\'tag\', limit=3): print(i)')
    received = []

    def listener():
        for item in NS['q'].listen('tag', limit=3, stop_after_idle=30):
            print('        (listener) => %r' % (item,), flush=True)
            received.append(item)

    thread = threading.Thread(target=listener)
    thread.start()
    time.sleep(1.0)  # the two waiting messages arrive first; then it sleeps on LISTEN
    psql("SELECT q4pg_enqueue('mq', 'tag', '{\"foo\": \"bar\", \"from\": \"psql\"}')")
    thread.join(40)
    if thread.is_alive() or len(received) != 3 or received[-1].get('from') != 'psql':
        raise SystemExit('demo: the listener did not receive the psql message: %r' % received)

    say('dequeue (immediate)')
    run("q.enqueue('tag', {'json': 'serializable_data'})", lambda v: isinstance(v, int))
    run("q.dequeue_immediate('tag')", lambda v: v == {'json': 'serializable_data'})

    say('counting items')
    run("q.enqueue('tag', {'left': 'behind'})", lambda v: isinstance(v, int))
    run("q.count('tag')", lambda v: v == 1)

    say('cancel')
    NS['qid'] = q4pg_id = NS['q'].list('tag')[0][0]
    print('    # qid = %d, the id of the message left' % q4pg_id)
    run('q.cancel(qid)', lambda v: v is True)
    run('q.cancel(qid)', lambda v: v is False)

    say('What a DBA sees')
    psql("SELECT q4pg_enqueue('mq', 'report', '{\"n\": 1}')")
    psql('SELECT queue, tag, waiting FROM q4pg_stats()')
    run('q.close()')
    print('\ndemo: every step of the tutorial did what it shows.')


if __name__ == '__main__':
    if not os.environ.get('PGHOST'):
        sys.exit('demo: run it through make demo (it needs PG* variables naming a database)')
    main()
