"""q4pg top: a live view of the queues, with rich (an optional package: pip
install 'q4pg[top]'; q4pg/monitor.py imports this module only then).

Every --interval seconds a snapshot (monitor.Snapshot) is read and drawn:
the queues (messages by state, those whose lease expired without an ack
or a nack, oldest due age, rows inserted and deleted
per second since the last refresh, listeners, consumers), what holds back
the xmin horizon, and the warnings (q4pg_warnings, and dead letters that grew
since the last refresh).  q quits, and so does Ctrl-C; --once draws one
snapshot and returns.
"""

import datetime
import os
import select
import sys
import termios
import time
import tty
from typing import Any, Callable, Dict, List, Optional

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .cli_admin import _age as cli_age
from .monitor import Snapshot, dead_growth, rates

HORIZON_ROWS = 5        # holders of the horizon shown, oldest first


def _age(seconds: Optional[float]) -> str:
    """Seconds for people, as the other commands write ages (4.2s, 3m05s); '-' for none."""
    return cli_age(None if seconds is None else datetime.timedelta(seconds=seconds))


def _size(n: Optional[int]) -> str:
    if n is None:
        return '-'
    size = float(n)
    for unit in ('B', 'kB', 'MB', 'GB'):
        if size < 1024 or unit == 'GB':
            return ('%d %s' if unit == 'B' else '%.1f %s') % (size, unit)
        size /= 1024
    return '%d B' % n          # not reached


def render(snapshot: Snapshot, previous: Optional[Snapshot], interval: float) -> Group:
    """The view of `snapshot` (rates against `previous`, None at first)."""
    per_second = rates(previous, snapshot)
    title = Text('q4pg top  %s  (every %gs, messages counted %s ago; q quits)'
                 % (time.strftime('%H:%M:%S', time.localtime(snapshot.at)), interval,
                    _age(snapshot.at - snapshot.counted_at)), style='bold')
    queues = Table(title='queues', title_justify='left', expand=False)
    for header in ('queue', 'due', 'scheduled', 'leased', 'dead', 'expired', 'oldest due', 'in/s',
                   'out/s', 'listeners', 'consumers', 'size', 'dead rows', 'autovacuum'):
        queues.add_column(header, justify='left' if header == 'queue' else 'right')
    for row in snapshot.queues:
        rate = per_second.get(row['queue'])
        last_vacuum = row['last_autovacuum']
        queues.add_row(
            row['queue'], str(row['due']), str(row['scheduled']), str(row['leased']),
            Text(str(row['dead']), style='red' if row['dead'] else ''),
            Text(str(row['expired']), style='red' if row['expired'] else ''),
            _age(row['oldest_due_age']),
            '-' if rate is None else '%.1f' % rate[0], '-' if rate is None else '%.1f' % rate[1],
            str(row['idle_listeners']), str(row['consumers']), _size(row['total_bytes']),
            '-' if row['dead_rows'] is None else str(row['dead_rows']),
            'never' if last_vacuum is None else _age(snapshot.at - last_vacuum) + ' ago')
    if not snapshot.horizon:
        return Group(title, queues, Text('xmin horizon: nothing holds it'),
                     _warnings(snapshot, previous))
    horizon = Table(title='xmin horizon (oldest first)', title_justify='left')
    for header in ('holder', 'pid', 'name', 'state', 'age', 'xmin age'):
        horizon.add_column(header, justify='right' if header in ('pid', 'age', 'xmin age')
                           else 'left')
    for h in snapshot.horizon[:HORIZON_ROWS]:
        hidden = h['holder'] == 'backend' and h['detail'].startswith('not visible')
        horizon.add_row(h['holder'], '' if h['pid'] is None else str(h['pid']), h['name'] or '',
                        '(not visible)' if hidden else h['state'] or '', _age(h['age']),
                        str(h['xmin_age']))
    return Group(title, queues, horizon, _warnings(snapshot, previous))


def _warnings(snapshot: Snapshot, previous: Optional[Snapshot]) -> Any:
    lines: List[Text] = []
    for w in snapshot.warnings:
        if w['warning'] == 'leases_expired':        # a queue's messages, no session
            lines.append(Text('! leases_expired on %s: %s, the oldest %s ago'
                              % (w['queue'], w['detail'], _age(w['age'])), style='bold red'))
            continue
        where = ' on %s' % w['queue'] if w['queue'] else ''
        who = ' pid %s' % w['pid'] if w['pid'] is not None else ''
        name = ' (%s)' % w['name'] if w['name'] else ''
        age = ', open %s' % _age(w['age']) if w['age'] is not None else ''
        lines.append(Text('! %s%s:%s%s%s%s; %s' % (w['warning'], where, who, name,
                                                 ' ' + w['state'] if w['state'] else '', age,
                                                 w['detail']), style='bold red'))
    for queue, added in sorted(dead_growth(previous, snapshot).items()):
        lines.append(Text('! dead_letters on %s: %d more since the last refresh'
                          % (queue, added), style='bold red'))
    if not lines:
        return Text('no warnings', style='green')
    return Group(Text('warnings', style='bold'), *lines)


class _Keys:
    """stdin in cbreak mode while the view runs (keys arrive one by one, unechoed;
    Ctrl-C still interrupts), restored on exit; no keys when stdin is no terminal."""

    def __init__(self) -> None:
        self._fd: Optional[int] = None
        self._saved: Any = None

    def __enter__(self) -> '_Keys':
        if sys.stdin is not None and sys.stdin.isatty():
            self._fd = sys.stdin.fileno()
            self._saved = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._fd is not None:
            termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)

    def quit_within(self, seconds: float) -> bool:
        """Waits up to `seconds`; True when q (or Q) was pressed."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._fd is None:
                time.sleep(left)
                return False
            if select.select([self._fd], [], [], left)[0]:
                key = os.read(self._fd, 1)
                if key in (b'q', b'Q'):
                    return True


def run(read: Callable[[], Snapshot], interval: float = 2.0, once: bool = False,
        console: Optional[Console] = None) -> int:
    """Shows snapshots of `read` until q or Ctrl-C (or one, `once`); returns 0."""
    if console is None:
        console = Console()
        if not console.is_terminal:         # a file or a pipe: whole rows, not 80 columns
            console.width = max(console.width, 160)
    if once:
        console.print(render(read(), None, interval))
        return 0
    previous: Optional[Snapshot] = None
    try:
        with _Keys() as keys, Live(console=console, screen=True, auto_refresh=False) as live:
            while True:
                snapshot = read()
                live.update(render(snapshot, previous, interval), refresh=True)
                previous = snapshot
                if keys.quit_within(interval):
                    return 0
    except KeyboardInterrupt:
        return 0
