"""Teachers and students trained many replicas at once, sweeps, and the results store.

This ``__init__`` stays torch-free (``compare`` may read result folders through ``simulate.store``);
import the torch modules (``simulate.train``, ``simulate.models`` ...) explicitly.
"""
