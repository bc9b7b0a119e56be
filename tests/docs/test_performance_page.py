"""docs/performance.md is what bench/perfpage.py writes from the committed
results (bench/results/*.json): its figures are never pasted by hand."""

import json
import shutil

from bench import perfpage


def test_the_page_is_generated_from_the_committed_results():
    with open(perfpage.PAGE) as f:
        committed = f.read()
    assert committed == perfpage.page(), (
        'docs/performance.md differs from what bench/perfpage.py writes from bench/results/: '
        'run .venv/bin/python -m bench.perfpage')


def test_a_later_run_of_a_section_replaces_its_figures(tmp_path):
    """Each section's figures come from the newest run that measured it."""
    for name in ('results.json', 'python.json'):
        shutil.copy(perfpage.os.path.join(perfpage.RESULTS, name), tmp_path / name)
    later = json.loads((tmp_path / 'python.json').read_text())
    later['machine']['date'] = '2099-01-01 00:00 UTC'
    for row in later['rows']:
        if row['measurement'] == 'Python dequeue':
            row['ratio'] = 0.123
    (tmp_path / 'python.json').write_text(json.dumps(later))
    assert '0.12 / 0.12 / 0.12 of psycopg2' in perfpage.page(str(tmp_path))
    # the same run, older than the full run: the full run's figures
    later['machine']['date'] = '2000-01-01 00:00 UTC'
    (tmp_path / 'python.json').write_text(json.dumps(later))
    assert '0.12 / 0.12 / 0.12' not in perfpage.page(str(tmp_path))
