"""``python -m benchmarks``: see :mod:`benchmarks.run`."""

import sys

import benchmarks  # noqa: F401  (pins every library to one thread before anything numeric is imported)

from benchmarks.run import main

if __name__ == "__main__":
    sys.exit(main())
