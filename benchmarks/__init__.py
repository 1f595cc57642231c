"""Benchmark suite: srcdiff against hand-written numba gradients and AD peers.

Run from the project root with ``python -m benchmarks`` (``--quick`` for a
short run, ``--help`` for options).

Importing this package pins every numeric library to one thread, and the process to
one core.  That must
happen before NumPy (OpenBLAS/MKL), numba, PyTorch or JAX/XLA is first
imported, which is why it is done here, at package import time, and not
in the modules that import those libraries.
"""

import os

THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


def pin_threads():
    """Force one thread everywhere (overrides any value already in the environment), and
    bind the process to one core: XLA's CPU runtime starts threads of its own whatever
    its flags say, and a process on one core gives every system one core's time."""
    for key, value in THREAD_ENV.items():
        os.environ[key] = value
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(USABLE_CORES)})


USABLE_CORES = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
pin_threads()
