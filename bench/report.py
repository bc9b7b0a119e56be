"""results.md: a run's results (bench/run.py) as Markdown tables."""

import statistics

COST_TARGET = 1.10    # issue 17: unpinned, no path of 1.2 costs more than 10 % over 1.1
KIND_NOTE = {'q4pg': '', 'peer': ' (peer)', 'diagnostic': ' (diagnostic)', 'anatomy': ''}


def _rate(value):
    if value is None:
        return '—'
    return '{:,.0f}'.format(value)


def _ms(seconds):
    return '—' if seconds is None else '%.2f' % (seconds * 1e3)


def _target(row):
    t = row.get('target')
    if not t:
        return ''
    verdict = 'pass' if row.get('pass') else '**FAIL**'
    if t[0] == 'ratio':
        return '≥ %.2f×: %s' % (t[1], verdict)
    return '≥ {:,.0f} msg/s: {}'.format(t[1], verdict)


def _subject(row):
    return row['subject'] + KIND_NOTE.get(row['kind'], '')


def markdown(results):
    m, cfg = results['machine'], results['config']
    out = ['# q4pg benchmark results', '']
    out += ['- **Date**: %s' % m['date'],
            '- **Machine**: %s cores (%s), %s memory, Linux %s'
            % (m['nproc'], m['cpu'], m['memory'], m['kernel']),
            '- **PostgreSQL**: %s' % m['postgres'],
            '- **Settings**: %s' % ', '.join(m['settings']),
            '- **Server args**: `%s` (fsync and synchronous_commit on: every commit waits for its '
            'WAL flush)' % cfg['postgres_args'],
            '- **Run**: sections %s; %d round(s); pgbench runs of %g s (`-M prepared`), Python '
            'runs of %g s; clients %s; batches of %d; %s%s'
            % (', '.join(cfg['sections']), cfg['rounds'], cfg['seconds'], cfg['py_seconds'],
               '/'.join(map(str, cfg['clients'])), cfg['batch'],
               'quick run' if cfg['quick'] else 'full run',
               '; took %.0f s' % results['elapsed'] if results.get('elapsed') else ''),
            '- **Code**: commit %s; installed %s; %s; Python %s, psycopg2 %s'
            % (m['commit'], m.get('installed', '?'), m['client'], m['python'], m['psycopg2'])]
    for name, version in sorted(m.get('peers', {}).items()):
        out.append('- **%s**: %s' % (name, version))
    out += ['',
            'Rates are medians over the rounds; **ratio** is the median of the per-round ratios '
            'subject / baseline (each round runs the baseline and every subject back to back, '
            'in rotating order), so machine noise mostly cancels. Baselines are the same work '
            'in plain SQL on a table of the queue\'s shape (`raw`: id identity primary key, tag, '
            'json data, created_at, index (tag, id)): `INSERT`, and `DELETE ... WHERE id = '
            '(SELECT id ... ORDER BY id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING *`; for leases, '
            '`UPDATE ... SET run_at = now() + lease, attempts = attempts + 1, lease_token = '
            'gen_random_uuid() WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1)` then '
            '`DELETE ... WHERE id = $1 AND lease_token = $2` on `raw_lease`, of a 1.1 queue\'s '
            'shape. Takers drain a prefilled table and never find it empty.', '']

    rows = results['rows']
    if any(r['section'] != 'versions' for r in rows):
        out += ['## Throughput', '',
                '| measurement | clients | subject | rate | baseline | baseline rate | ratio | target |',
                '|---|---:|---|---:|---|---:|---:|---|']
        for r in (r for r in rows if r['section'] != 'versions'):     # (their own table below)
            out.append('| %s | %d | %s | %s %s | %s | %s | %.3f | %s |'
                       % (r['measurement'], r['clients'], _subject(r), _rate(r['rate']), r['unit'],
                          r['baseline'], _rate(r['baseline_rate']), r['ratio'], _target(r)))
        out.append('')

    if results['latency']:
        out += ['## Wake-up latency (listener idle)', '',
                'From the producer sending COMMIT (after `q4pg_enqueue`) to a listener holding the '
                'message (its dequeue returned it); one message at a time, 20-50 ms apart, so the '
                'listeners are asleep each time. With several listeners, all LISTEN on the same tag '
                'and the first one to take the message counts. CPU per message: what the '
                'listener processes and their server backends used while the timed messages '
                'went through, divided by their number.', '',
                '| listener | listeners | samples | p50 ms | p90 ms | p99 ms | max ms | lost | '
                'CPU ms/msg (client + server) | target |',
                '|---|---:|---:|---:|---:|---:|---:|---:|---:|---|']
        for r in results['latency']:
            target = ''
            if r['kind'] == 'q4pg':
                target = 'p99 < 10 ms: %s' % ('pass' if r.get('pass') else '**FAIL**')
            cpu = ('%s + %s' % (_ms(r['cpu_client']), _ms(r['cpu_server']))
                   if 'cpu_client' in r else '')
            out.append('| %s | %d | %d | %s | %s | %s | %s | %d | %s | %s |'
                       % (r['subject'], r['listeners'], r['samples'], _ms(r['p50']), _ms(r['p90']),
                          _ms(r['p99']), _ms(r['max']), r['lost'], cpu, target))
        out.append('')

    if results['soak']:
        s0 = results['soak'][0]
        out += ['## Churn soak', '',
                '%s messages through the table: 2 producers (batches of %d) and 2 consumers (batches '
                'of %d) at once, producers never more than %s messages ahead; with autovacuum_naptime 1s, '
                'as the README advises for a cluster that carries busy queues (the target), then '
                'again with PostgreSQL\'s default of 1 min (a diagnostic: no VACUUM comes in time). Start rate: while messages 2-12%% went through; end rate: 85-95%% (producers still running). '
                'Bounded: the size at the end at most 1.25x the size at half-way, plus 2 MB (it has levelled off).'
                % ('{:,}'.format(s0['messages']), s0['batch'], s0['batch'],
                   '{:,}'.format(s0['backlog'])), '',
                '| table | autovacuum_naptime | messages | seconds | msg/s | start msg/s | end msg/s | '
                'end/start | size at 50% | max size | end size | autovacuum runs | target |',
                '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|']
        for r in results['soak']:
            target = ''
            if r['kind'] == 'q4pg' and r.get('pass') is not None:
                target = 'end ≥ 0.80× start, bounded: %s' % ('pass' if r['pass'] else '**FAIL**')
            autovacuums = r['samples'][-1]['autovacuums'] - r['samples'][0]['autovacuums']
            out.append('| %s | %s | %s | %.0f | %s | %s | %s | %s | %.1f MB | %.1f MB | %.1f MB | %d | %s |'
                       % ('q4pg queue' if r['kind'] == 'q4pg' else 'raw (baseline)',
                          r.get('naptime', '1min') + ('' if r.get('pass') is not None
                                                      or r['kind'] != 'q4pg' else ' (diagnostic)'),
                          '{:,}'.format(r['messages']), r['seconds'], _rate(r['rate']),
                          _rate(r['start_rate']), _rate(r['end_rate']),
                          '%.2f' % r['end_over_start'] if r['end_over_start'] else '—',
                          r['size_at_half'] / 2**20, r['max_size'] / 2**20,
                          r['end_size'] / 2**20, autovacuums, target))
        out.append('')

    if results.get('horizon'):
        out += horizon(results['horizon'])

    out += versions(rows)

    anatomy = [r for r in rows if r['section'] == 'anatomy']
    if anatomy or results.get('cpu'):
        out += ['## Anatomy: q4pg_enqueue and q4pg_dequeue piece by piece', '',
                'Scratch variants (bench/anatomy/setup.sql), each adding one piece to the plain '
                'statement; ratios to the plain INSERT / DELETE on `raw`, durable commits, as above.',
                '']
        if anatomy:
            clients = sorted({r['clients'] for r in anatomy})
            out += ['| variant | ' + ' | '.join('ratio, %d client%s' % (c, 's' if c > 1 else '')
                                                 for c in clients) + ' |',
                    '|---|' + '---:|' * len(clients)]
            for measurement in unique(r['measurement'] for r in anatomy):
                out.append('| **%s** |%s' % (measurement, ' |' * len(clients)))
                for subject in unique(r['subject'] for r in anatomy
                                       if r['measurement'] == measurement):
                    cells = []
                    for c in clients:
                        hit = [r for r in anatomy if r['measurement'] == measurement
                               and r['subject'] == subject and r['clients'] == c]
                        cells.append('%.3f' % hit[0]['ratio'] if hit else '—')
                    out.append('| %s | %s |' % (subject, ' | '.join(cells)))
            out.append('')
        if results.get('cpu'):
            out += ['Cost per call, 1 client, `synchronous_commit=off` (no wait for the WAL flush, '
                    'so this is the CPU path): microseconds per transaction, median of the rounds, '
                    'and the extra over the plain statement.', '',
                    '| variant | µs per call | extra µs over plain |', '|---|---:|---:|']
            for measurement in unique(r['measurement'] for r in results['cpu']):
                first = [r for r in results['cpu'] if r['measurement'] == measurement][0]
                base_us = 1e6 / first['baseline_rate']
                out.append('| **%s**: plain %s | %.1f | |' % (measurement, first['baseline'], base_us))
                for r in results['cpu']:
                    if r['measurement'] == measurement:
                        us = 1e6 / r['rate']
                        out.append('| %s | %.1f | %+.1f |' % (r['subject'], us, us - base_us))
            out.append('')

    out += ['## Targets (issues #3, #11 and #17)', '']
    for line in targets(results):
        out.append('- ' + line)
    if results['notes']:
        out += ['', '## Notes', '']
        out += ['- ' + n for n in results['notes']]
    out.append('')
    return '\n'.join(out)


def targets(results):
    lines = []
    for r in results['rows']:
        if r.get('target'):
            lines.append('%s %s, %d client%s: %s'
                         % ('✅' if r['pass'] else '❌', r['measurement'], r['clients'],
                            's' if r['clients'] > 1 else '',
                            ('ratio %.3f (≥ %.2f)' % (r['ratio'], r['target'][1])
                             if r['target'][0] == 'ratio' else
                             '{:,.0f} msg/s (≥ {:,.0f})'.format(r['rate'], r['target'][1]))))
    for r in results['rows']:
        if r['section'] == 'versions':
            lines.append('%s %s against %s, %s, %d client%s: a message costs %.3f× (≤ %.2f)'
                         % ('✅' if cost(r) <= COST_TARGET else '❌', r['subject'], r['baseline'],
                            r['measurement'], r['clients'], 's' if r['clients'] > 1 else '',
                            cost(r), COST_TARGET))
    for r in results['latency']:
        if r['kind'] == 'q4pg':
            lines.append('%s wake-up p99, %d listener%s: %s ms (< 10 ms)%s'
                         % ('✅' if r['pass'] else '❌', r['listeners'],
                            's' if r['listeners'] > 1 else '', _ms(r['p99']),
                            ', %d lost' % r['lost'] if r['lost'] else ''))
    for r in results['soak']:
        if r['kind'] == 'q4pg' and r.get('pass') is not None:
            lines.append('%s soak: end rate %s× the start rate (≥ 0.80), size %.1f MB at 50%%, '
                         '%.1f MB max, %.1f MB at the end'
                         % ('✅' if r['pass'] else '❌',
                            '%.2f' % r['end_over_start'] if r['end_over_start'] else '?',
                            r['size_at_half'] / 2**20, r['max_size'] / 2**20, r['end_size'] / 2**20))
    for r in results.get('horizon', []):
        if r.get('ratio') is not None:
            lines.append('%s horizon %s: last minute %.2f× unpinned (≥ 0.80), CPU %.2f× (≤ 1.50)'
                         % ('✅' if r['ratio'] >= 0.8 and r['cpu_ratio'] <= 1.5 else '❌',
                            r['name'], r['ratio'], r['cpu_ratio']))
    return lines or ['(no targeted measurement in this run)']


def _horizon_verdict(r):
    if r.get('ratio') is None:
        return ''
    ok = r['ratio'] >= 0.8 and r['cpu_ratio'] <= 1.5
    return '≥ 0.80× rate, ≤ 1.50× CPU: %s' % ('pass' if ok else '**FAIL**')


def horizon(runs):
    """The horizon section (bench/sections/horizon.py) as a table."""
    out = ['## A pinned xmin horizon', '',
           'Each transaction enqueues one message and dequeues one (2 clients, durable commits) '
           'while an idle REPEATABLE READ transaction holds its snapshot (pinned), or while one '
           'consumer holds one message in an open transaction with 100,000 messages due tomorrow '
           'in the queue (held); then the pin ends. Last minute: the rate of the pin\'s last '
           'minute; ratio and CPU ratio against the unpinned run (the server\'s CPU time a '
           'message, autovacuum included); size: the queue on disk at the end of the pin; '
           'after: the rate of each 10 s once the pin ended. The plain SKIP LOCKED table and '
           'PGMQ run pinned for contrast (fall: last minute over first 10 s).', '',
           '| run | pinned | msg/s, last minute | ratio | CPU µs/msg | CPU ratio | size | after (msg/s per 10 s) | target |',
           '|---|---|---:|---:|---:|---:|---:|---|---|']
    for r in runs:
        out.append('| %s %s | %s | %s | %s | %.0f | %s | %s | %s | %s |'
                   % (r['kind'], r['name'], '%d min' % r['minutes'] if r['pin'] else '—',
                      _rate(r['last_minute']),
                      '%.2f' % r['ratio'] if r.get('ratio') is not None else
                      ('fall %.2f' % r['fall'] if r.get('pin') and r.get('fall') else '—'),
                      r['cpu_per_message_us'],
                      '%.2f' % r['cpu_ratio'] if r.get('cpu_ratio') is not None else '—',
                      '%.1f MB' % (r['size_pinned'] / 2**20) if r.get('size_pinned') else '—',
                      ', '.join('%.0f' % x for x in r['recovery']) or '—', _horizon_verdict(r)))
    out.append('')
    return out


def cost(row):
    """What a message costs the subject over the baseline: the median of the
    per-round inverse ratios (baseline rate / subject rate)."""
    return statistics.median([1 / r for r in row['ratios']])


def version_rows(rows):
    """The versions section's rows, and the versions they compare: (rows, new,
    old), or None when there are none."""
    rows = [r for r in rows if r['section'] == 'versions']
    if not rows:
        return None
    return (rows,) + tuple(rows[0][k].replace('q4pg ', '') for k in ('subject', 'baseline'))


def versions(rows):
    """The versions section (bench/sections/versions.py): 1.2 against 1.1, unpinned."""
    found = version_rows(rows)
    if not found:
        return []
    rows, new, old = found
    out = ['## %s against %s' % (new, old), '',
           'The same pgbench scripts on two databases of the bench cluster, one with q4pg %s '
           '(the baseline), one with %s, each with a queue of the same shape, nothing pinning '
           'the xmin horizon, in the same rounds. Rate ratio: the median of the per-round ratios '
           '%s / %s; cost: the median of the per-round inverse ratios, what a message costs in '
           '%s over %s (issue 17: at most %.2f on every path, unpinned). What the server spent '
           'a message while pgbench ran (medians of the rounds): CPU (every process of the '
           'cluster, autovacuum included) and WAL, %s → %s, and the median of the per-round '
           'ratios: the cost apart from the machine\'s noise.'
           % (old, new, new, old, new, old, COST_TARGET, old, new), '',
           '| path | clients | %s msg/s | %s msg/s | rate ratio | cost | target | CPU µs/msg | '
           'CPU ratio | WAL bytes/msg | WAL ratio |' % (old, new),
           '|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|']
    for r in rows:
        out.append('| %s | %d | %s | %s | %.3f | %.3f | ≤ %.2f: %s | %s | %s |'
                   % (r['measurement'], r['clients'], _rate(r['baseline_rate']), _rate(r['rate']),
                      r['ratio'], cost(r), COST_TARGET,
                      'pass' if cost(r) <= COST_TARGET else '**FAIL**',
                      _spent(r, 'cpu_us', '%.1f'), _spent(r, 'wal_bytes', '%.0f')))
    return out + ['']


def _spent(row, what, fmt):
    """'old → new | ratio' of a row's per-message CPU or WAL ('— | —' when not measured)."""
    if what not in row:
        return '— | —'
    return '%s → %s | %.3f' % (fmt % statistics.median(row['baseline_' + what]),
                                fmt % statistics.median(row[what]),
                                row[what.split('_')[0] + '_ratio'])


def unique(items):
    """items without repeats, in the order they first come."""
    seen = []
    for i in items:
        if i not in seen:
            seen.append(i)
    return seen
