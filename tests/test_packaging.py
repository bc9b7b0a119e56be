"""The Python package: one version everywhere, a wheel that builds and installs
offline from a clone, and builds that print no warnings.

The builds are real pip and setuptools runs (the venv's, as `make venv` and
`make wheel` use them), on a copy of the files git knows, so the checkout
itself gets no build/ or dist/ from the tests.
"""

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import q4pg
from tools import sqlbuild

try:
    import tomllib
except ImportError:  # Python < 3.11: the test extra installs tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
WARNING = re.compile(r'warn|deprecat', re.IGNORECASE)


def control_version():
    control = (ROOT / 'q4pg.control').read_text()
    return re.search(r"^default_version\s*=\s*'([^']+)'", control, re.MULTILINE).group(1)


def pyproject():
    with open(ROOT / 'pyproject.toml', 'rb') as f:
        return tomllib.load(f)


def run(args, cwd, timeout=300):
    """Runs args to completion: its stdout and stderr together, after checking it exited 0.

    pip reads no configuration file and no PIP_* variable, and Python no
    PYTHONWARNINGS or PYTHONPATH: the run sees what a fresh clone would see.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('PIP_') and k not in ('PYTHONWARNINGS', 'PYTHONPATH')}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK='1')
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)
    assert proc.returncode == 0, (args, proc.stdout)
    return proc.stdout


def assert_no_warning(output):
    assert not [line for line in output.splitlines() if WARNING.search(line)], output


# ------------------------------------------------------------------ the version

def test_one_version_in_the_control_file_pyproject_and_the_package():
    version = control_version()
    assert version
    assert pyproject()['project']['version'] == version
    assert q4pg.__version__ == version


def test_pyproject_holds_the_metadata_and_setup_py_none():
    project = pyproject()['project']
    assert project['license'] == 'MIT'
    assert not [c for c in project.get('classifiers', []) if c.startswith('License ::')]
    assert set(project['optional-dependencies']) == {'test', 'bench', 'async', 'metrics', 'top'}
    assert project['scripts'] == {'q4pg': 'q4pg.cli:main'}
    setup_code = [line for line in (ROOT / 'setup.py').read_text().splitlines()
                  if line.strip() and not line.lstrip().startswith('#')]
    assert setup_code == ['from setuptools import setup', 'setup()']


# ------------------------------------------------------------------ builds

@pytest.fixture(scope='module')
def clone(tmp_path_factory):
    """A copy of the checkout's files that git knows (tracked, or new and not ignored)."""
    listed = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                            cwd=ROOT, stdout=subprocess.PIPE, check=True).stdout
    dest = tmp_path_factory.mktemp('clone')
    # The current version's install script, while unreleased, is built (make),
    # never committed: a fresh clone has none.
    built = 'sql/q4pg--%s.sql' % control_version()
    tracked = subprocess.run(['git', 'ls-files', '--error-unmatch', built], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    for name in sorted(set(listed.decode().split('\0')) - {''}):
        if (ROOT / name).is_file() and (tracked or name != built):  # a tracked file deleted
            (dest / name).parent.mkdir(parents=True, exist_ok=True)  # in the checkout is not
            shutil.copy2(ROOT / name, dest / name)
    return dest


def test_wheel_builds_and_installs_offline(clone, tmp_path):
    version = control_version()
    dist = tmp_path / 'dist'
    # make wheel's command.
    output = run([VENV_BIN / 'pip', 'wheel', '--no-deps', '--no-build-isolation',
                  '--check-build-dependencies', '--no-index', '-w', dist, '.'], cwd=clone)
    assert_no_warning(output)
    wheels = list(dist.iterdir())
    assert [w.name for w in wheels] == ['q4pg-%s-py3-none-any.whl' % version]

    with zipfile.ZipFile(wheels[0]) as whl:
        names = whl.namelist()
        metadata = whl.read('q4pg-%s.dist-info/METADATA' % version).decode()
        entry_points = whl.read('q4pg-%s.dist-info/entry_points.txt' % version).decode()
    package = {'q4pg/' + p.name for p in (clone / 'q4pg').iterdir() if p.suffix == '.py'}
    # the extension's scripts (q4pg install), the current one built from sql/src/
    scripts = dict(sqlbuild.scripts(clone), **{'q4pg.control': (clone / 'q4pg.control').read_bytes()})
    assert 'q4pg--%s.sql' % version in scripts
    assert {n for n in names if n.startswith('q4pg/')} == package | {'q4pg/py.typed'} | {
        'q4pg/sql/' + name for name in scripts}
    with zipfile.ZipFile(wheels[0]) as whl:
        for name, content in scripts.items():
            assert whl.read('q4pg/sql/' + name) == content, name
    assert {n.split('/')[0] for n in names} == {'q4pg', 'q4pg-%s.dist-info' % version}
    headers = metadata.split('\n\n')[0].splitlines()
    assert 'Version: ' + version in headers
    assert 'License-Expression: MIT' in headers
    assert not [h for h in headers if h.startswith('Classifier: License ::')]
    assert 'Requires-Dist: psycopg2-binary>=2.8' in headers
    assert {'Provides-Extra: test', 'Provides-Extra: bench', 'Provides-Extra: metrics',
            'Provides-Extra: top'} <= set(headers)
    assert 'q4pg = q4pg.cli:main' in entry_points

    # A fresh venv (its pip from ensurepip, offline), the wheel alone, no index.
    venv = tmp_path / 'venv'
    run([sys.executable, '-m', 'venv', venv], cwd=tmp_path)
    python = venv / 'bin' / 'python'
    assert_no_warning(run([python, '-m', 'pip', 'install', '--no-index', '--no-deps', wheels[0]],
                          cwd=tmp_path))
    # --no-deps left psycopg2 out: lend the one of this venv, after the fresh
    # venv's own site-packages (a .pth line adds a path, runs no .pth found there).
    import psycopg2
    site = run([python, '-c', 'import sysconfig; print(sysconfig.get_path("purelib"))'],
               cwd=tmp_path).strip()
    Path(site, 'q4pg_test_psycopg2.pth').write_text(str(Path(psycopg2.__file__).parent.parent)
                                                    + '\n')

    # From a directory with no q4pg in it: python -m puts the current directory first.
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    found = run([python, '-c', 'import importlib.resources, q4pg; print(q4pg.__file__); '
                 'print(importlib.resources.files("q4pg").joinpath("py.typed").is_file()); '
                 'from q4pg import install; s = install.scripts(); '
                 'print(s.where.replace(" ", "_"), s.default_version, *s.versions)'],
                cwd=elsewhere).split()
    assert found == [site + '/q4pg/__init__.py', 'True', 'the_q4pg_package', version] + sorted(
        (n[len('q4pg--'):-len('.sql')] for n in scripts if n.count('--') == 1),
        key=lambda v: tuple(map(int, v.split('.'))))
    for cmd in ([python, '-m', 'q4pg'], [venv / 'bin' / 'q4pg']):
        assert run(cmd + ['--help'], cwd=elsewhere).startswith('usage: q4pg ')
        assert run(cmd + ['--version'], cwd=elsewhere) == 'q4pg %s\n' % version


EDITABLE_BUILD = '''
import sys, warnings
from setuptools import build_meta
with warnings.catch_warnings(record=True) as caught:
    build_meta.build_editable(sys.argv[1])
for w in caught:
    print("warning:", w.category.__name__, w.message)
'''


def test_editable_install_prints_no_warnings(clone, tmp_path):
    """`pip install -e .` (make venv) runs this hook of setuptools in a
    subprocess and prints every warning it raises (pip's BuildBackendWarning)."""
    output = run([sys.executable, '-c', EDITABLE_BUILD, tmp_path], cwd=clone)
    assert_no_warning(output)
    assert [p.name for p in tmp_path.iterdir()] == ['q4pg-%s-0.editable-py3-none-any.whl'
                                                    % control_version()]


def test_a_checkout_reads_the_scripts_of_its_sql_folder():
    """pip install -e . (make venv) ships nothing: q4pg install reads sql/, and
    builds the current version's script from sql/src/ when make has not."""
    from q4pg import install
    found = install.scripts()
    assert found.where == str(ROOT / 'sql')
    assert found.default_version == control_version()
    assert found.files == {name: text.decode() for name, text in sqlbuild.scripts(ROOT).items()}
    assert set(found.files) >= {p.name for p in (ROOT / 'sql').glob('q4pg--*.sql')}


SDIST_BUILD = '''
import sys
from setuptools import build_meta
print(build_meta.build_sdist(sys.argv[1]))
'''


def test_a_wheel_built_from_the_source_distribution_carries_the_scripts(clone, tmp_path):
    """MANIFEST.in puts sql/ and the build step into the sdist: pip install of
    the sdist alone builds a wheel with every script."""
    sdist_dir, dist = tmp_path / 'sdist', tmp_path / 'dist'
    name = run([sys.executable, '-c', SDIST_BUILD, sdist_dir], cwd=clone).split()[-1]
    run([VENV_BIN / 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-index', '-w',
         dist, sdist_dir / name], cwd=tmp_path)
    [wheel] = list(dist.iterdir())
    with zipfile.ZipFile(wheel) as whl:
        carried = {n[len('q4pg/sql/'):]: whl.read(n) for n in whl.namelist()
                   if n.startswith('q4pg/sql/')}
    assert carried == dict(sqlbuild.scripts(clone),
                           **{'q4pg.control': (clone / 'q4pg.control').read_bytes()})
