"""The systems that are compared, behind one small interface.

A *system* is anything that can produce the gradient of a workload:

.. code-block:: python

    class System:
        name = "mysystem"          # short name used in tables, JSON and plots
        measure_startup = False    # True: also time a new process with warm caches
        memory_traced = True       # False: its allocator is invisible to tracemalloc

        def available(self):       # -> (bool, note); note says why it is skipped
            return True, ""

        def version(self):         # -> str shown in the machine info
            return ""

        def prepare(self, workload, inputs):
            # -> grad_fn: a zero-argument callable returning one array per
            #    name in workload.wrt (same order and shapes as the inputs),
            #    or None if the system does not support this workload.
            #    Everything done here (tracing, compiling, converting inputs)
            #    counts towards the "first call" time, not the median.
            ...

        def prepare_forward(self, workload, inputs):
            # -> zero-argument callable returning the objective as a scalar
            #    (anything float() accepts), or None (forward columns left empty).
            ...

``inputs`` is the dict from ``workload.make_inputs``; ``workload.args(inputs)``
gives the positional arguments of ``workload.source``, and
``workload.wrt_index()`` the positions of the differentiated ones.

The first system in :data:`SYSTEMS` is the reference every other gradient is
checked against: the hand-written numba gradients.
"""

import numpy as np

from . import peers


class System:
    name = "system"
    measure_startup = False
    memory_traced = True

    def available(self):
        return True, ""

    def version(self):
        return ""

    def prepare(self, workload, inputs):
        raise NotImplementedError

    def prepare_forward(self, workload, inputs):
        return None


class HandwrittenSystem(System):
    """Hand-written numba forward and gradient (``benchmarks/handwritten.py``)."""

    name = "handwritten"
    measure_startup = True

    def version(self):
        import numba
        return f"numba {numba.__version__}"

    def prepare(self, workload, inputs):
        from . import handwritten     # here, so that importing the systems does not import numba
        fn = workload.gradient or handwritten.GRAD.get(workload.name)
        if fn is None:
            return None
        args = workload.args(inputs)
        return lambda: fn(*args)

    def prepare_forward(self, workload, inputs):
        from . import handwritten
        fn = workload.forward or handwritten.FORWARD.get(workload.name)
        if fn is None:
            return None
        args = workload.args(inputs)
        return lambda: fn(*args)


class PeerSystem(System):
    """Adapter from a loader in ``benchmarks/peers.py`` to the System interface."""

    def __init__(self, name, loader, memory_traced):
        self.name = name
        self._loader = loader
        self._peer = None
        self._note = None
        self.memory_traced = memory_traced

    def _load(self):
        if self._peer is None and self._note is None:
            self._peer, self._note = self._loader()
        return self._peer

    def available(self):
        peer = self._load()
        return peer is not None, self._note or ""

    def version(self):
        peer = self._load()
        return peer.version if peer is not None else ""

    def prepare(self, workload, inputs):
        peer = self._load()
        if peer is None or not peer.supports(workload):
            return None
        return peer.grad(workload, inputs)

    def prepare_forward(self, workload, inputs):
        peer = self._load()
        if peer is None or not peer.supports(workload):
            return None
        return peer.forward(workload, inputs)


# ===========================================================================
class SrcdiffSystem(System):
    """srcdiff: the workload's plain source, differentiated and compiled (or run as NumPy)."""

    measure_startup = True
    memory_traced = True

    def __init__(self, compiled=True, aot=False):
        self.compiled = compiled
        self.aot = aot
        self.name = "srcdiff (aot)" if aot else "srcdiff" if compiled else "srcdiff (compile=False)"
        self.measure_startup = compiled and not aot

    def available(self):
        try:
            import srcdiff  # noqa: F401
        except Exception as exc:
            return False, f"srcdiff not importable ({exc})"
        return True, ""

    def version(self):
        import srcdiff
        return srcdiff.__version__

    def prepare(self, workload, inputs):
        import srcdiff
        g = srcdiff.grad(workload.source, wrt=tuple(workload.wrt), compile=self.compiled,
                         aot=self.aot)
        args = workload.args(inputs)
        return lambda: g(*args)

    def prepare_forward(self, workload, inputs):
        import srcdiff
        g = srcdiff.grad(workload.source, wrt=tuple(workload.wrt), compile=self.compiled)
        args = workload.args(inputs)
        return lambda: g.forward(*args)


# ===========================================================================
# THE LIST OF SYSTEMS.  The first one is the reference all others are checked
# against.  Order here is the order of rows in the tables.
# ===========================================================================

SYSTEMS = [
    HandwrittenSystem(),
    SrcdiffSystem(),
    SrcdiffSystem(compiled=False),
    PeerSystem("pytorch", peers.torch_peer, memory_traced=False),
    PeerSystem("autograd", peers.autograd_peer, memory_traced=True),
    PeerSystem("jax", peers.jax_peer, memory_traced=False),
]

# Start-up only: srcdiff loading the native module built ahead of time (aot=True), in a
# process that does not import numba.
AOT = SrcdiffSystem(aot=True)

BY_NAME = {s.name: s for s in SYSTEMS + [AOT]}


def get_system(name):
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown system {name!r}; known: {', '.join(BY_NAME)}") from None


def as_grad_tuple(result, n):
    """Normalize a gradient result to a tuple of n float64 NumPy arrays."""
    if n == 1 and not isinstance(result, (tuple, list)):
        result = (result,)
    if not isinstance(result, (tuple, list)) or len(result) != n:
        raise ValueError(f"expected {n} gradient arrays, got {type(result).__name__}"
                         f"{'' if not isinstance(result, (tuple, list)) else ' of length %d' % len(result)}")
    return tuple(np.asarray(r, dtype=np.float64) for r in result)
