"""Every relative link of README.md and docs/*.md leads somewhere: the file
exists, and an #anchor names a heading of the page it points to."""

import pytest

from tests.docs import markdown


@pytest.mark.parametrize('page', markdown.pages(), ids=markdown.relative)
def test_relative_links_resolve(page):
    broken = []
    for target in markdown.links(page):
        if '://' in target or target.startswith('mailto:'):
            continue
        path, _, anchor = target.partition('#')
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            broken.append('%s (no such file)' % target)
        elif anchor and dest.suffix == '.md' and anchor not in markdown.anchors(dest):
            broken.append('%s (no such heading in %s)' % (target, markdown.relative(dest)))
    assert broken == [], '%s: broken links: %s' % (markdown.relative(page), broken)


def test_the_index_lists_every_page():
    index = markdown.ROOT / 'docs' / 'README.md'
    listed = {t.partition('#')[0] for t in markdown.links(index)}
    pages = {p.name for p in (markdown.ROOT / 'docs').glob('*.md')} - {'README.md'}
    assert pages - listed == set(), 'docs/README.md does not link to %s' % (pages - listed)


def test_the_readme_is_short():
    assert len((markdown.ROOT / 'README.md').read_text().split('\n')) <= 250
