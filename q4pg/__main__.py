"""python -m q4pg: the q4pg command line (see q4pg/cli.py)."""

import sys

from .cli import main

sys.exit(main())
