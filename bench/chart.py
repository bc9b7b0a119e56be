"""chart.png: a run's results (bench/run.py) as a picture."""

import matplotlib
import matplotlib.ticker

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

from bench.report import KIND_NOTE, unique  # noqa: E402

CLIENT_COLORS = {1: '#4c72b0', 4: '#dd8452', 16: '#55a868'}


def draw(results, path):
    """chart.png: ratios, batches, wake-up latency, soak; one panel for each the run has."""
    rows = [r for r in results['rows'] if r['section'] != 'anatomy']
    batch = [r for r in rows if r['section'] == 'batch']
    panels = [p for p, present in (('ratios', rows), ('batch', batch),
                                   ('latency', results['latency']), ('soak', results['soak']))
              if present]
    if not panels:
        return
    heights = {'ratios': max(4.0, 0.5 * len(unique(_label(r) for r in rows)) + 1.5),
               'batch': 4.5, 'latency': 4.0, 'soak': 4.0}
    fig, axes = plt.subplots(len(panels), 1, figsize=(13, sum(heights[p] for p in panels)),
                             gridspec_kw={'height_ratios': [heights[p] for p in panels]},
                             squeeze=False)
    m = results['machine']
    fig.suptitle('q4pg vs plain SQL and peers — %s, %s cores, %s\n%s'
                 % (m['date'], m['nproc'], m['memory'], m['postgres'].split(' on ')[0]),
                 fontsize=11)
    for ax, panel in zip(axes[:, 0], panels):
        {'ratios': _ratios, 'batch': _batch, 'latency': _latency, 'soak': _soak}[panel](
            ax, results, rows if panel == 'ratios' else batch)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _label(r):
    return '%s: %s%s' % (r['measurement'], r['subject'], KIND_NOTE.get(r['kind'], ''))


def _ratios(ax, results, rows):
    labels = unique(_label(r) for r in rows)
    clients = sorted({r['clients'] for r in rows})
    height = 0.8 / len(clients)
    for i, c in enumerate(clients):
        ys, xs = [], []
        for j, label in enumerate(labels):
            hit = [r for r in rows if _label(r) == label and r['clients'] == c]
            if hit:
                ys.append(j + (i - (len(clients) - 1) / 2) * height)
                xs.append(hit[0]['ratio'])
        ax.barh(ys, xs, height=height, color=CLIENT_COLORS.get(c, None),
                label='%d client%s' % (c, 's' if c > 1 else ''))
        for y, x in zip(ys, xs):
            ax.text(x + 0.01, y, '%.2f' % x, va='center', fontsize=7)
    ax.axvline(0.90, color='red', linestyle='--', linewidth=1.2, label='target 0.90×')
    ax.axvline(1.0, color='grey', linewidth=0.8)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel('rate / baseline rate (median of rounds; higher is better)')
    top = min(2.5, max(1.25, max(r['ratio'] for r in rows) + 0.2))
    ax.set_xlim(0, top)
    for j, label in enumerate(labels):        # bars cut at the edge: say how far they go
        for r in rows:
            if _label(r) == label and r['ratio'] > top:
                ax.text(top * 0.98, j, '%.2f →' % r['ratio'], ha='right', va='center', fontsize=7)
    ax.set_title('Throughput relative to the same work in plain SQL / plain psycopg2', fontsize=10)
    ax.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis='x', alpha=0.3)


def _batch(ax, results, rows):
    groups = unique((r['measurement'], r['clients']) for r in rows)
    subjects = unique([r['baseline'] for r in rows] + [r['subject'] for r in rows])
    width = 0.8 / len(subjects)
    colors = plt.get_cmap('tab10')
    for k, subject in enumerate(subjects):
        xs, hs = [], []
        for g, (measurement, c) in enumerate(groups):
            hit = [r for r in rows if r['measurement'] == measurement and r['clients'] == c]
            rate = None
            for r in hit:
                if r['subject'] == subject:
                    rate = r['rate']
                elif r['baseline'] == subject:
                    rate = r['baseline_rate']
            if rate is not None:
                xs.append(g + (k - (len(subjects) - 1) / 2) * width)
                hs.append(rate)
        ax.bar(xs, hs, width=width, label=subject, color=colors(k % 10))
    ax.axhline(100000, color='red', linestyle='--', linewidth=1.2, label='target 100,000 msg/s')
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(['%s\n%d client%s' % (m.replace('batch ', '').split(' x')[0], c,
                                               's' if c > 1 else '') for m, c in groups],
                       fontsize=8)
    ax.set_ylabel('messages / s')
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: '{:,.0f}'.format(v)))
    ax.set_title('Batches (SQL level, pgbench)', fontsize=10)
    ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis='y', alpha=0.3)


def _latency(ax, results, _rows):
    lat = results['latency']
    subjects = unique(r['subject'] for r in lat)
    listeners = sorted({r['listeners'] for r in lat})
    width = 0.8 / (2 * len(subjects))
    colors = plt.get_cmap('tab10')
    k = 0
    for s_i, subject in enumerate(subjects):
        for p_i, (p, alpha) in enumerate((('p50', 0.55), ('p99', 1.0))):
            xs, hs = [], []
            for g, n in enumerate(listeners):
                hit = [r for r in lat if r['subject'] == subject and r['listeners'] == n]
                if hit and hit[0][p] is not None:
                    xs.append(g + (k - (2 * len(subjects) - 1) / 2) * width)
                    hs.append(hit[0][p] * 1e3)
            ax.bar(xs, hs, width=width, color=colors(s_i), alpha=alpha, label='%s %s' % (subject, p))
            for x, h in zip(xs, hs):
                ax.text(x, h, '%.1f' % h, ha='center', va='bottom', fontsize=7)
            k += 1
    ax.axhline(10, color='red', linestyle='--', linewidth=1.2, label='target p99 10 ms')
    ax.set_xticks(range(len(listeners)))
    ax.set_xticklabels(['%d idle listener%s' % (n, 's' if n > 1 else '') for n in listeners],
                       fontsize=8)
    ax.set_ylabel('ms, COMMIT -> listener holds it')
    ax.set_title('Wake-up latency', fontsize=10)
    ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis='y', alpha=0.3)


def _soak(ax, results, _rows):
    ax2 = ax.twinx()
    colors = {'q4pg': '#4c72b0', 'raw': '#999999'}
    for run in results['soak']:
        s = run['samples']
        xs, rates = [], []
        for a, b in zip(s, s[1:]):
            if b['t'] > a['t']:
                xs.append(b['consumed'] / 1e6)
                rates.append((b['consumed'] - a['consumed']) / (b['t'] - a['t']))
        name = 'q4pg' if run['kind'] == 'q4pg' else 'raw'
        name += ', naptime %s' % run.get('naptime', '1min')
        color = colors[run['kind']] if run.get('naptime', '1min') == '1min' else (
            '#c44e52' if run['kind'] == 'q4pg' else '#8c8c3c')
        ax.plot(xs, rates, color=color, linewidth=1, label='%s msg/s' % name)
        ax2.plot([p['consumed'] / 1e6 for p in s], [p['size'] / 2**20 for p in s],
                 color=color, linestyle=':', linewidth=1.5, label='%s size' % name)
    ax.set_xlabel('million messages through')
    ax.set_ylabel('msg/s (solid)')
    ax2.set_ylabel('table + indexes, MB (dotted)')
    ax.set_ylim(bottom=0)
    ax2.set_ylim(bottom=0)
    ax.set_title('Churn soak: rate and size over the run', fontsize=10)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7, loc='upper left',
              bbox_to_anchor=(1.08, 1.0))
    ax.grid(alpha=0.3)
