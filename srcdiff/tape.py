"""Tape and router helpers called by generated code (plain NumPy, compiled by numba when jitted).

The tape is one growable float64 array with a cursor `k`: scalars are stored
inline by the generated code; arrays are stored as their flat data followed by
their dimensions, so a pop reads the dimensions first, then the data. A popped
array is a view of the tape: the backward never writes into the tape or into
the forward values it reads, so nothing needs copying.
"""
import numpy as np

from .cached import overload, register_jitable


@register_jitable
def wins(x, y):
    """Router weight of x in max(x, y): 1 where x > y, 1/2 on a tie, 0 where x < y."""
    return (x > y) * 1.0 + (x == y) * 0.5


def push_array(tape, k, a):
    """Store array `a` (flat data, then its dims) at tape[k:]; return the new cursor."""
    flat = np.ascontiguousarray(a).ravel()
    n = flat.shape[0]
    tape[k:k + n] = flat
    tape[k + n:k + n + a.ndim] = a.shape
    return k + n + a.ndim


def push_extremes(tape, k, x, m):
    """Store where 1-D `x` equals its extreme `m`, as the record [x.size, count, positions...,
    count + 2] (`pop_extremes` finds its start); return the new cursor. The reverse sweep
    shares the extreme's adjoint among these positions without the whole of `x` on the tape."""
    positions = np.flatnonzero(x == m)
    count = positions.size
    tape[k] = x.size
    tape[k + 1] = count
    tape[k + 2:k + 2 + count] = positions
    tape[k + 2 + count] = count + 2
    return k + count + 3


@overload(push_extremes)
def _push_extremes_ol(tape, k, x, m):
    def impl(tape, k, x, m):
        tape[k] = x.size
        i = k + 2
        for p in range(x.size):
            if x[p] == m:
                tape[i] = p
                i += 1
        tape[k + 1] = i - k - 2
        tape[i] = i - k
        return i + 1
    return impl


@register_jitable
def pop_extremes(tape, k):
    """(where the record `push_extremes` stored last before cursor k starts, the cursor
    below it): the same position, as the record stays on the tape for `tie_share_at`."""
    start = k - 1 - int(tape[k - 1])
    return start, start


@overload(push_array, inline="always")
def _push_array_ol(tape, k, a):
    def impl(tape, k, a):
        for i, v in enumerate(a.flat):      # a loop: cheaper than a flat copy and a slice
            tape[k + i] = v
        end = k + a.size
        for d in range(a.ndim):
            tape[end + d] = a.shape[d]
        return end + a.ndim
    return impl


@register_jitable
def _pop_dims(tape, k, ndim):
    k -= ndim
    size = 1
    for d in range(ndim):
        size *= int(tape[k + d])
    return k, k - size


@register_jitable
def pop_array1(tape, k):
    """The 1-D array stored last before cursor k, and the cursor below it."""
    dims_at, start = _pop_dims(tape, k, 1)
    return tape[start:dims_at], start


@register_jitable
def pop_array2(tape, k):
    """The 2-D array stored last before cursor k, and the cursor below it."""
    dims_at, start = _pop_dims(tape, k, 2)
    shape = (int(tape[dims_at]), int(tape[dims_at + 1]))
    return tape[start:dims_at].reshape(shape), start


@register_jitable
def pop_array3(tape, k):
    """The 3-D array stored last before cursor k, and the cursor below it."""
    dims_at, start = _pop_dims(tape, k, 3)
    shape = (int(tape[dims_at]), int(tape[dims_at + 1]), int(tape[dims_at + 2]))
    return tape[start:dims_at].reshape(shape), start


@register_jitable
def all_finite(value):
    """True if a scalar or every entry of an array is finite (the `debug_nans` check)."""
    return np.all(np.isfinite(np.asarray(value)))
