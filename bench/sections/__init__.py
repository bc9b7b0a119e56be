"""The benchmark's sections, one module each with run(bench), in the order they run."""

import importlib

ALL = ['enqueue', 'dequeue', 'lease', 'scheduled', 'notify', 'python', 'python_async', 'batch', 'listen',
       'metrics', 'soak', 'horizon', 'versions', 'anatomy']
DEFAULT = [s for s in ALL if s != 'anatomy']     # anatomy runs only when asked for


def run(name, bench):
    importlib.import_module('bench.sections.' + name).run(bench)
