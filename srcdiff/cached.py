"""numba's `register_jitable` with its compiled code cached on disk.

The runtime kernels (top-level functions of arrays, scalars and tuples) are compiled once
per installation and signature, not once in every process that compiles a new gradient:
they were a third of a gradient's first compile. numba keys each cached kernel by its
argument types and its source file's time stamp, so an edited kernel is compiled again.
Overloads are not cached: their implementations are closures made at typing time, which
numba's cache does not tell apart reliably. Nor is a kernel taking a function as an
argument (numba cannot store that signature): it uses `register_jitable_in_memory`.
"""
import functools

from numba.extending import overload as numba_overload
from numba.extending import register_jitable as register_jitable_in_memory


def register_jitable(fn=None, **options):
    decorate = register_jitable_in_memory(cache=True, **options)
    return decorate if fn is None else decorate(fn)


def overload(fn, **options):
    """numba's `overload`, each implementation named after `fn` as well.

    numba names compiled code by qualified name and a counter that restarts in every process,
    and a gradient cached on disk carries the code of the implementations it calls. The
    implementations a factory makes (`_reduction_ol("sum_over", ...)`) share a qualified
    name, so two of them compiled in two processes could get the same name; a process that
    then loaded both gradients from the cache ran one implementation in place of the other.
    """
    def register(typer):
        @functools.wraps(typer)
        def named(*args, **kwargs):
            impl = typer(*args, **kwargs)
            prefix = f"{fn.__name__}."
            if impl is not None and "<locals>" in impl.__qualname__ \
                    and not impl.__qualname__.startswith(prefix):
                impl.__qualname__ = prefix + impl.__qualname__
            return impl
        numba_overload(fn, **options)(named)
        return typer
    return register
