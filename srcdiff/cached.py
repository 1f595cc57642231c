"""numba's `register_jitable` with its compiled code cached on disk.

The runtime kernels (top-level functions of arrays, scalars and tuples) are compiled once
per installation and signature, not once in every process that compiles a new gradient:
they were a third of a gradient's first compile. numba keys each cached kernel by its
argument types and its source file's time stamp, so an edited kernel is compiled again.
Overloads are not cached: their implementations are closures made at typing time, which
numba's cache does not tell apart reliably. Nor is a kernel taking a function as an
argument (numba cannot store that signature): it uses `register_jitable_in_memory`.
"""
from numba.extending import register_jitable as register_jitable_in_memory


def register_jitable(fn=None, **options):
    decorate = register_jitable_in_memory(cache=True, **options)
    return decorate if fn is None else decorate(fn)
