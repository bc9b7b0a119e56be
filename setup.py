"""q4pg: a message queue that lives inside PostgreSQL (the Python client)."""

import re
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).parent
# One version for the extension and the client: the control file's.
VERSION = re.search(r"default_version\s*=\s*'([^']+)'",
                    (HERE / 'q4pg.control').read_text()).group(1)

setup(
    name='q4pg',
    version=VERSION,
    description='A message queue that lives inside PostgreSQL: thin client for the q4pg extension',
    long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='MIT',
    packages=['q4pg'],
    python_requires='>=3.9',
    install_requires=['psycopg2-binary>=2.8'],
    extras_require={
        'test': ['pytest>=7', 'testing.postgresql>=1.3', 'hypothesis>=6'],
        'bench': ['matplotlib>=3.5'],
    },
    entry_points={'console_scripts': ['q4pg = q4pg.cli:main']},
    classifiers=[
        'License :: OSI Approved :: MIT License',
        'Programming Language :: Python :: 3',
        'Topic :: Database',
    ],
)
